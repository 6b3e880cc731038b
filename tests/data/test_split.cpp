// Train/validation split tests: determinism, seed dependence, the partition property, sizes,
// and agreement with its definition through seeded_permutation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/rng.h"
#include "data_pipeline/split.h"
#include "data_test_util.h"

namespace mnist_dist::data {
namespace {

void expect_partition(const TrainValSplit& s, size_t n) {
  EXPECT_TRUE(std::is_sorted(s.train.begin(), s.train.end()));
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  std::vector<uint32_t> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), n) << "train and val must together cover 0..n-1";
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(all[i], i) << "missing or duplicated index";
}

TEST(Split, DeterministicForASeedAndDifferentForAnother) {
  const TrainValSplit a = split_train_val(1000, 0.3, 1), b = split_train_val(1000, 0.3, 1);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  const TrainValSplit c = split_train_val(1000, 0.3, 2);
  EXPECT_NE(a.val, c.val);
  expect_partition(a, 1000);
  expect_partition(c, 1000);
}

TEST(Split, MatchesItsDefinition) {
  const size_t n = 777;
  const TrainValSplit s = split_train_val(n, 0.25, 42);
  std::vector<uint32_t> perm = seeded_permutation(n, 42, kSplitStream);
  std::vector<uint32_t> val(perm.begin(), perm.begin() + std::llround(n * 0.25));
  std::sort(val.begin(), val.end());
  EXPECT_EQ(s.val, val);
}

TEST(Split, SizesFollowTheFraction) {
  EXPECT_EQ(split_train_val(60000, 0.3, 1).val.size(), 18000u);
  EXPECT_EQ(split_train_val(60000, 0.3, 1).train.size(), 42000u);
  EXPECT_EQ(split_train_val(1000, 0.3, 1).val.size(), 300u);
  EXPECT_EQ(split_train_val(10, 0.25, 1).val.size(), 3u);  // llround(2.5) = 3

  const TrainValSplit none = split_train_val(100, 0.0, 1);
  EXPECT_TRUE(none.val.empty());
  expect_partition(none, 100);
  const TrainValSplit all = split_train_val(100, 1.0, 1);
  EXPECT_TRUE(all.train.empty());
  expect_partition(all, 100);

  const TrainValSplit empty = split_train_val(0, 0.3, 1);
  EXPECT_TRUE(empty.train.empty() && empty.val.empty());
  EXPECT_EQ(split_train_val(1, 0.3, 1).val.size(), 0u);
  EXPECT_EQ(split_train_val(1, 0.5, 1).val.size(), 1u);
  expect_partition(split_train_val(1, 0.5, 1), 1);
}

TEST(Split, RejectsBadFractions) {
  for (double f : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    EXPECT_TRUE(test::ThrowsUserError([&] { split_train_val(10, f, 1); }, {"out of range"})) << f;
  }
}

}  // namespace
}  // namespace mnist_dist::data
