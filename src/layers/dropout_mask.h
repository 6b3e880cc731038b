// Which units inverted dropout keeps: a pure function of (the pass's key, the layer's salt, the
// sample's row in the global batch, the unit), shared by the CPU loop and the CUDA kernel, so
// that a sample's mask does not depend on the rank that holds it, the world size, the thread
// count or the backend (DESIGN.md contract 7: per-element math in one place).
#pragma once

#include <cstdint>

#include "core/hostdev.h"

namespace mnist_dist {

// The splitmix64 finaliser (Stafford's mix 13): a bijection whose output bits each depend on
// every input bit.
MD_HD uint64_t dropout_mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// keep_below = round((1 − rate) · 2^32): unit kept when the top 32 bits of its hash are below it.
MD_HD uint64_t dropout_keep_below(float rate) {
  return static_cast<uint64_t>((1.0 - static_cast<double>(rate)) * 4294967296.0 + 0.5);
}

// key: the pass (run seed, epoch, micro-step) and the layer's salt; row: the sample's position
// in the global batch; unit: the feature.
MD_HD bool dropout_keeps(uint64_t key, uint64_t row, uint64_t unit, uint64_t keep_below) {
  const uint64_t h = dropout_mix(key ^ dropout_mix(row * 0x9E3779B97F4A7C15ull + unit));
  return (h >> 32) < keep_below;
}

}  // namespace mnist_dist
