// A 64-bit hash of an arena's bytes: the replica check (train/replica_check.h) compares it across
// ranks; checkpoints record it (io/checkpoint.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "layers/param_arena.h"

namespace mnist_dist {

// Hashes read the arena's host copies: call arena.sync_to_host() first on a GPU backend.
// FNV-1a over the bytes (order-sensitive, so bitwise equality is what it checks).
uint64_t hash_bytes(const void* data, size_t bytes, uint64_t h = 1469598103934665603ull);
// Parameters, and the non-trainable state (BatchNorm running statistics) when with_state:
// with --bn local each replica keeps its own running statistics (rank 0's are used, as in DDP).
uint64_t hash_arena(const ParamArena& arena, bool with_state = true);

}  // namespace mnist_dist
