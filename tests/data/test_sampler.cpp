// EpochSampler: global-batch semantics independent of the number of ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "data_pipeline/sampler.h"

namespace mnist_dist::data {
namespace {

TEST(Sampler, EveryRankSliceIsDisjointAndTheirUnionIsTheSingleRankBatch) {
  const size_t n = 1003, batch = 64;  // 15 full batches + one of 43: does not divide evenly
  EpochSampler one(n, batch, 5);
  one.set_epoch(2);
  ASSERT_EQ(one.steps_per_epoch(), 16u);
  EXPECT_EQ(one.batch_size(15), 43u);
  for (int world = 1; world <= 4; ++world) {
    EpochSampler s(n, batch, 5);
    s.set_epoch(2);
    std::vector<int> used(n, 0);
    for (size_t step = 0; step < s.steps_per_epoch(); ++step) {
      const auto [ref, ref_n] = one.slice(step, 0, 1);
      std::vector<uint32_t> joined;
      for (int r = 0; r < world; ++r) {
        const auto [idx, cnt] = s.slice(step, r, world);
        // Contiguous, ordered slices of the same global batch.
        joined.insert(joined.end(), idx, idx + cnt);
        for (size_t i = 0; i < cnt; ++i) ++used[idx[i]];
        const size_t b = s.batch_size(step);
        EXPECT_LE(cnt, (b + world - 1) / world);
        EXPECT_GE(cnt, b / world);
      }
      ASSERT_EQ(joined, std::vector<uint32_t>(ref, ref + ref_n)) << "world " << world << " step " << step;
    }
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(used[i], 1) << "sample " << i << " world " << world;
  }
}

TEST(Sampler, OrderDependsOnlyOnSeedAndEpoch) {
  EpochSampler a(500, 32, 9), b(500, 32, 9), c(500, 32, 10);
  a.set_epoch(3);
  b.set_epoch(0);
  b.set_epoch(3);
  c.set_epoch(3);
  const auto [pa, na] = a.slice(0, 0, 1);
  const auto [pb, nb] = b.slice(0, 0, 1);
  const auto [pc, nc] = c.slice(0, 0, 1);
  EXPECT_TRUE(std::equal(pa, pa + na, pb));
  EXPECT_FALSE(std::equal(pa, pa + na, pc));
  EpochSampler d(500, 32, 9);
  d.set_epoch(4);
  const auto [pd, nd] = d.slice(0, 0, 1);
  EXPECT_FALSE(std::equal(pa, pa + na, pd)) << "a new epoch reshuffles";
  (void)nb; (void)nc; (void)nd;
}

TEST(Sampler, DropLastDropsThePartialBatch) {
  EpochSampler keep(100, 32, 1), drop(100, 32, 1, true);
  EXPECT_EQ(keep.steps_per_epoch(), 4u);
  EXPECT_EQ(drop.steps_per_epoch(), 3u);
  EXPECT_EQ(keep.batch_size(3), 4u);
}

TEST(Sampler, MoreRanksThanSamplesInTheLastBatchGivesEmptySlices) {
  EpochSampler s(65, 64, 1);
  s.set_epoch(0);
  size_t total = 0;
  for (int r = 0; r < 4; ++r) total += s.slice(1, r, 4).second;
  EXPECT_EQ(total, 1u);
}

}  // namespace
}  // namespace mnist_dist::data
