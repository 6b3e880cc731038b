// Golden values of the RNG (core/rng.h) and of the seeded train/validation split
// (data_pipeline/split.*): an edit that changes the stream, the permutation or the split (and so
// re-splits and re-shuffles every prepared data set) fails here. How the values were obtained: by
// tests/data/golden_rng.py, a naive Python re-implementation written from rng.h/split.cpp, whose
// output equals this code's; mix64(0) is SplitMix64's published first output for state 0.
// If a change is intended, regenerate with `python3 tests/data/golden_rng.py` and say so.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "data_pipeline/split.h"

namespace mnist_dist::data {
namespace {

uint64_t fnv1a(const std::vector<uint32_t>& values) {  // over the little-endian uint32 bytes
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint32_t v : values)
    for (int b = 0; b < 4; ++b) h = (h ^ ((v >> (8 * b)) & 0xFFu)) * 0x100000001B3ull;
  return h;
}

TEST(Golden, SplitMix64MatchesThePublishedVector) {
  EXPECT_EQ(mix64(0), 0xE220A8397B1DCDAFull);  // SplitMix64, state 0, first output
}

TEST(Golden, RngFirstOutputs) {
  const std::vector<uint64_t> want1 = {0xF1CFF23F35D54B72ull, 0x80D9FCF7413A8BFDull,
                                       0xB244441196E7D75Aull, 0xF2F0E57BB59A12E2ull};
  const std::vector<uint64_t> want42 = {0xAB7E463A54B0BD49ull, 0xF9F4413267DA868Cull,
                                        0x37E6EA5B49D690E1ull, 0xF6A7BAD0B9EF91D0ull};
  Rng a(1, 0), b(42, 7);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(a.next_u64(), want1[i]) << "Rng(1, 0) output " << i;
    EXPECT_EQ(b.next_u64(), want42[i]) << "Rng(42, 7) output " << i;
  }
  Rng c(1, 0);
  std::vector<uint64_t> below;
  for (int i = 0; i < 10; ++i) below.push_back(c.below(10));
  EXPECT_EQ(below, (std::vector<uint64_t>{8, 9, 2, 8, 3, 0, 9, 7, 8, 4}));
  EXPECT_EQ(seeded_permutation(10, 1, 0), (std::vector<uint32_t>{7, 4, 1, 3, 9, 6, 5, 2, 0, 8}));
}

TEST(Golden, SmallSplitAssignment) {
  const TrainValSplit s = split_train_val(20, 0.3, 1);
  EXPECT_EQ(s.val, (std::vector<uint32_t>{0, 4, 9, 16, 18, 19}));
  EXPECT_EQ(s.train, (std::vector<uint32_t>{1, 2, 3, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 17}));
}

// mnist_prepare's defaults (--val-fraction 0.3, --split-seed 1) on the 60,000 MNIST training images.
TEST(Golden, DefaultSplitOfSixtyThousand) {
  const TrainValSplit s = split_train_val(60000, 0.3, 1);
  ASSERT_EQ(s.train.size(), 42000u);
  ASSERT_EQ(s.val.size(), 18000u);
  const std::vector<uint32_t> first(s.val.begin(), s.val.begin() + 20);
  EXPECT_EQ(first, (std::vector<uint32_t>{0, 1, 2, 5, 6, 21, 23, 27, 31, 40, 41, 47, 48, 49, 50,
                                          53, 55, 57, 60, 61}));
  EXPECT_EQ(fnv1a(s.val), 0xAA80E2FDE4789EB7ull);
  EXPECT_EQ(fnv1a(s.train), 0x5F170A4B52F3E423ull);
}

}  // namespace
}  // namespace mnist_dist::data
