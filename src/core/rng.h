// Deterministic, platform-independent random numbers: SplitMix64 seeding a xoshiro256** stream.
// std:: distributions are implementation-defined, so uniform floats, bounded integers and
// permutations are defined here once; the same (seed, stream) gives the same numbers everywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace mnist_dist {

// Mixes a 64-bit value (SplitMix64 finaliser); used to derive seeds for independent streams.
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  // `stream` separates independent uses of one seed (e.g. init vs. epoch e's shuffle).
  explicit Rng(uint64_t seed, uint64_t stream = 0) {
    uint64_t x = mix64(seed) ^ mix64(stream + 0x632BE59BD9B4E019ull);
    for (auto& w : s_) w = x = mix64(x);
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // Uniform integer in [0, n), unbiased (rejection on the top of the range). n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = next_u64(); while (r >= limit);
    return r % n;
  }

  // The full state, for checkpoints.
  const uint64_t* state() const { return s_; }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// A permutation of 0..n-1 (Fisher-Yates) that depends only on (seed, stream).
inline std::vector<uint32_t> seeded_permutation(size_t n, uint64_t seed, uint64_t stream) {
  std::vector<uint32_t> p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint32_t>(i);
  Rng rng(seed, stream);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(rng.below(i));
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

}  // namespace mnist_dist
