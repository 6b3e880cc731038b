// Softmax cross-entropy (CPU): hand-computed 3-class values, stability at logits ~1000, loss,
// accuracy, predictions and (softmax − onehot)·scale against the reference, first arg-max on
// ties, and dL/dlogits against finite differences of the loss through the one checker.
#include <gtest/gtest.h>

#include <cmath>

#include "gradcheck.h"
#include "layers/softmax_xent.h"
#include "reference.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

struct XentRun {
  LossStats stats;
  std::vector<float> dlogits;
  std::vector<int32_t> pred;
};

XentRun run_xent(std::vector<float>& logits, int n, int k, const std::vector<uint8_t>& labels,
             float scale, bool want_grad = true) {
  auto xent = make_softmax_xent(Backend::kCpu);
  Context ctx;
  XentRun r;
  r.dlogits.assign(want_grad ? static_cast<size_t>(n) * k : 0, 123.0f);
  r.pred.assign(n, -1);
  r.stats = xent->run(ctx, Tensor{logits.data(), Shape{n, k, 1, 1}}, labels.data(), scale,
                      want_grad ? r.dlogits.data() : nullptr, r.pred.data());
  return r;
}

// logits (1, 2, 3): softmax = e^(j−3) / (e^−2 + e^−1 + 1) = 0.0900306, 0.2447285, 0.6652410.
constexpr double kP0 = 0.09003057317038046, kP1 = 0.24472847105479764, kP2 = 0.6652409557748219;

TEST(SoftmaxXentCpu, HandComputedThreeClasses) {
  std::vector<float> logits{1, 2, 3, 1, 2, 3};
  const XentRun r = run_xent(logits, 2, 3, {0, 2}, 0.5f);
  EXPECT_NEAR(r.stats.loss_sum, -std::log(kP0) - std::log(kP2), 1e-5);  // 2.4076060 + 0.4076060
  EXPECT_EQ(r.stats.correct, 1);
  EXPECT_EQ(r.stats.count, 2);
  EXPECT_EQ(r.pred, (std::vector<int32_t>{2, 2}));
  EXPECT_TRUE(all_close("dlogits", r.dlogits,
                        {(kP0 - 1) * 0.5, kP1 * 0.5, kP2 * 0.5, kP0 * 0.5, kP1 * 0.5, (kP2 - 1) * 0.5},
                        1e-7, 1e-6));
}

TEST(SoftmaxXentCpu, StableForLargeLogits) {
  // Shifted by 1000: the same probabilities as (1, 2, 3).
  std::vector<float> logits{1001, 1002, 1003, 1000, -1000, 0};
  const XentRun r = run_xent(logits, 2, 3, {0, 1}, 1.0f);
  ASSERT_TRUE(std::isfinite(r.stats.loss_sum));
  // Row 2: −log softmax[1] = 2000 + log(1 + e^−1000 + e^−1000) = 2000.
  EXPECT_NEAR(r.stats.loss_sum, -std::log(kP0) + 2000.0, 1e-3);
  EXPECT_TRUE(all_close("dlogits", r.dlogits, {kP0 - 1, kP1, kP2, 1.0, -1.0, 0.0}, 1e-6, 1e-6));
  EXPECT_EQ(r.pred, (std::vector<int32_t>{2, 0}));
  std::vector<float> neg{-1000, -1001, -1002};
  const XentRun rn = run_xent(neg, 1, 3, {2}, 1.0f);
  EXPECT_NEAR(rn.stats.loss_sum, -std::log(kP0), 1e-5);
}

TEST(SoftmaxXentCpu, TiesPredictTheFirstMaximum) {
  std::vector<float> logits{0.5f, 0.5f, 0.5f, -1, 2, 2};
  const XentRun r = run_xent(logits, 2, 3, {1, 2}, 1.0f);
  EXPECT_EQ(r.pred, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(r.stats.correct, 0);
  EXPECT_NEAR(r.stats.loss_sum, std::log(3.0) + std::log(2.0 + std::exp(-3.0)), 1e-5);
}

TEST(SoftmaxXentCpu, MatchesReferenceAndEvaluationModeWithoutGradient) {
  const int n = 7, k = 10;
  std::vector<float> logits = random_vector(n * k, 5, -4.0, 4.0);
  std::vector<uint8_t> labels{3, 0, 9, 9, 1, 5, 2};
  const XentRun r = run_xent(logits, n, k, labels, 1.0f / n);
  const auto ref = ref::softmax_xent(to_double(logits), n, k, labels, 1.0 / n);
  EXPECT_NEAR(r.stats.loss_sum, ref.loss_sum, 1e-5 * ref.loss_sum);
  EXPECT_EQ(r.stats.correct, ref.correct);
  EXPECT_EQ(std::vector<int>(r.pred.begin(), r.pred.end()), ref.predicted);
  EXPECT_TRUE(all_close("dlogits", r.dlogits, ref.dlogits, 1e-7, 1e-5));
  // Each row of the gradient sums to 0.
  for (int i = 0; i < n; ++i) {
    double s = 0;
    for (int j = 0; j < k; ++j) s += r.dlogits[i * k + j];
    EXPECT_NEAR(s, 0.0, 1e-7) << "row " << i;
  }
  // Evaluation: no gradient buffer, same loss and accuracy; predictions optional.
  const XentRun e = run_xent(logits, n, k, labels, 1.0f / n, /*want_grad=*/false);
  EXPECT_EQ(e.stats.loss_sum, r.stats.loss_sum);
  EXPECT_EQ(e.stats.correct, r.stats.correct);
  auto xent = make_softmax_xent(Backend::kCpu);
  Context ctx;
  const LossStats s = xent->run(ctx, Tensor{logits.data(), Shape{n, k, 1, 1}}, labels.data(), 1.0f,
                                nullptr, nullptr);
  EXPECT_EQ(s.correct, r.stats.correct);
}

TEST(SoftmaxXentCpu, GradientMatchesFiniteDifferences) {
  const int n = 5, k = 4;
  const float scale = 1.0f / n;
  std::vector<float> logits = random_vector(n * k, 8, -2.0, 2.0);
  const std::vector<uint8_t> labels{0, 3, 1, 1, 2};
  const XentRun r = run_xent(logits, n, k, labels, scale);
  std::vector<GradTarget> targets{GradTarget{"dlogits", logits.data(),
                                             to_double(r.dlogits), {n, k}}};
  auto xent = make_softmax_xent(Backend::kCpu);
  Context ctx;
  auto loss = [&]() {
    const LossStats s = xent->run(ctx, Tensor{logits.data(), Shape{n, k, 1, 1}}, labels.data(),
                                  scale, nullptr, nullptr);
    return s.loss_sum * scale;
  };
  GradCheckOptions o;
  o.atol = 1e-4;  // gradients are O(0.2)
  o.skip_kinks = false;
  const GradCheckReport rep = finite_difference_check(loss, targets, o);
  EXPECT_TRUE(rep.result());
  EXPECT_EQ(rep.checked, static_cast<size_t>(n * k));
}

}  // namespace
}  // namespace mnist_dist::test
