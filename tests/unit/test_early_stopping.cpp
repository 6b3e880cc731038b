// Early stopping (train/early_stopping.h) on scripted metric sequences, against Keras'
// EarlyStopping worked by hand: improvement beyond min_delta resets the wait, patience ends it,
// val_accuracy counts upwards, the first epoch is always the best so far.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "train/early_stopping.h"

namespace mnist_dist {
namespace {

// The epoch (1-based) at which training stops, or 0 when it runs through the sequence.
int stop_epoch(EarlyStopping& s, const std::vector<double>& values, bool loss = true) {
  for (size_t i = 0; i < values.size(); ++i) {
    s.observe(static_cast<int>(i) + 1, loss ? values[i] : 0.0, loss ? 0.0 : values[i]);
    if (s.should_stop()) return static_cast<int>(i) + 1;
  }
  return 0;
}

TEST(EarlyStopping, ValLossPatienceTwo) {
  EarlyStopping s({2, "val_loss", 0.0});
  // best 0.50 at epoch 3; 0.55 and 0.51 are no better: stop after epoch 5.
  EXPECT_EQ(stop_epoch(s, {0.9, 0.6, 0.5, 0.55, 0.51, 0.3}), 5);
  EXPECT_EQ(s.best_epoch(), 3);
  EXPECT_DOUBLE_EQ(s.best(), 0.5);
}

TEST(EarlyStopping, MinDeltaDecidesWhatCountsAsBetter) {
  EarlyStopping s({2, "val_loss", 0.05});
  // 0.58 is better than 0.6 but not by more than 0.05: no improvement; 0.54 is.
  EXPECT_EQ(stop_epoch(s, {0.6, 0.58, 0.54, 0.53, 0.52, 0.51}), 5);
  EXPECT_EQ(s.best_epoch(), 3);
}

TEST(EarlyStopping, ValAccuracyCountsUpAndTiesAreNoImprovement) {
  EarlyStopping s({3, "val_accuracy", 0.0});
  EXPECT_EQ(stop_epoch(s, {0.80, 0.85, 0.85, 0.84, 0.85, 0.90}, false), 5);
  EXPECT_EQ(s.best_epoch(), 2);
}

TEST(EarlyStopping, NeverStopsWhenImprovingOrOff) {
  EarlyStopping s({1, "val_loss", 0.0});
  EXPECT_EQ(stop_epoch(s, {0.9, 0.8, 0.7, 0.6}), 0);
  EXPECT_EQ(s.best_epoch(), 4);
  EarlyStopping off({0, "val_loss", 0.0});  // tracks the best (--save-best) but never stops
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(stop_epoch(off, {0.5, 0.9, 0.9, 0.9}), 0);
  EXPECT_EQ(off.best_epoch(), 1);
}

TEST(EarlyStopping, RefusesAnUnknownMetric) {
  EXPECT_THROW(EarlyStopping({2, "accuracy", 0.0}), UserError);
}

}  // namespace
}  // namespace mnist_dist
