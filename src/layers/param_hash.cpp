// FNV-1a hashes of an arena's host bytes.
#include "layers/param_hash.h"

namespace mnist_dist {

uint64_t hash_bytes(const void* data, size_t bytes, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

uint64_t hash_arena(const ParamArena& arena, bool with_state) {
  const uint64_t h = hash_bytes(arena.host_params(), arena.param_count() * sizeof(float));
  return with_state ? hash_bytes(arena.host_state(), arena.state_count() * sizeof(float), h) : h;
}

}  // namespace mnist_dist
