// The seeded train/validation split: validation is held out of the IDX training set by a
// permutation that depends only on (n, fraction, seed), so every run and rank agrees on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mnist_dist::data {

// Indices into the source training set; each list sorted ascending, disjoint, union = 0..n-1.
struct TrainValSplit {
  std::vector<uint32_t> train, val;
};

// The RNG stream of mnist_dist::seeded_permutation reserved for this split.
inline constexpr uint64_t kSplitStream = 0x5e11;

// n_val = llround(n * val_fraction); val = the first n_val entries of
// seeded_permutation(n, seed, kSplitStream), sorted; train = the rest, ascending.
// UserError unless 0 <= val_fraction <= 1 (and finite) and n fits in uint32.
TrainValSplit split_train_val(size_t n, double val_fraction, uint64_t seed);

}  // namespace mnist_dist::data
