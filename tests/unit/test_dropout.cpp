// Inverted dropout (CPU) against its definition: the kept fraction is Binomial(1 − p) overall,
// per unit and for pairs of units (independence); kept values are x / (1 − p) (PyTorch's
// scaling), dropped ones 0; evaluation is the identity; backward applies the forward's mask;
// the mask follows the sample's row in the global batch (two slices = the whole batch, any
// thread count) and changes with the pass's key and the layer's salt. The model inserts the two
// layers only when asked.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "layers/dropout.h"
#include "model/model.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

constexpr int kRows = 256, kUnits = 1200;

std::vector<float> ones(size_t n) { return std::vector<float>(n, 1.0f); }

// Forward of a fresh dropout layer on x (rows × units) with the given pass.
std::vector<float> drop(float rate, uint64_t salt, const std::vector<float>& x, int rows, uint64_t key,
                        uint64_t first_row, int threads = 1, bool training = true) {
  const Shape xs{rows, kUnits, 1, 1};
  LayerHarness h(make_dropout(Backend::kCpu, {rate, salt}), xs);
  h.ctx.threads = threads;
  h.ctx.noise_key = key;
  h.ctx.noise_first_row = first_row;
  std::vector<float> xx = x, y;
  h.forward(xx, xs, y, training);
  return y;
}

// |count − n·q| within k standard deviations of Binomial(n, q).
::testing::AssertionResult binomial(const char* what, double count, double n, double q, double k) {
  const double sd = std::sqrt(n * q * (1.0 - q)), dev = std::fabs(count - n * q);
  if (dev <= k * sd) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << count << " of " << n << ", expected " << n * q
                                       << " ± " << k << " sd (sd " << sd << ")";
}

TEST(DropoutCpu, KeptFractionIsBinomialOverallPerUnitAndForPairs) {
  for (float p : {0.1f, 0.3f, 0.5f, 0.9f}) {
    SCOPED_TRACE(p);
    const std::vector<float> y = drop(p, 1, ones(size_t{kRows} * kUnits), kRows, 42, 0);
    const double q = 1.0 - p;
    double kept = 0, pairs = 0;
    std::vector<double> per_unit(kUnits, 0.0);
    for (int i = 0; i < kRows; ++i)
      for (int j = 0; j < kUnits; ++j) {
        const bool k = y[size_t{i} * kUnits + j] != 0.0f;
        kept += k, per_unit[j] += k;
        if (j + 1 < kUnits) pairs += k && y[size_t{i} * kUnits + j + 1] != 0.0f;
      }
    EXPECT_TRUE(binomial("kept", kept, double{kRows} * kUnits, q, 5));
    EXPECT_TRUE(binomial("neighbours both kept", pairs, double{kRows} * (kUnits - 1), q * q, 5));
    // Per unit over the rows: no unit always or never kept (6 sd each, 1200 units).
    int off = 0;
    for (double c : per_unit) off += !binomial("unit", c, kRows, q, 6);
    EXPECT_EQ(off, 0) << "units whose keep count is off by more than 6 sd";
  }
}

TEST(DropoutCpu, KeptValuesAreScaledByOneOverOneMinusPDroppedAreZero) {
  const float p = 0.3f;
  const std::vector<float> x = random_vector(size_t{64} * kUnits, 5);
  const std::vector<float> y = drop(p, 1, x, 64, 7, 0);
  for (size_t i = 0; i < x.size(); ++i) {
    if (y[i] == 0.0f) continue;
    const double want = static_cast<double>(x[i]) / (1.0 - static_cast<double>(p));
    ASSERT_NEAR(y[i], want, 2.5e-7 * std::fabs(want)) << "element " << i;
  }
}

TEST(DropoutCpu, EvaluationIsTheIdentity) {
  const std::vector<float> x = random_vector(size_t{32} * kUnits, 6);
  EXPECT_EQ(drop(0.5f, 1, x, 32, 7, 0, 1, /*training=*/false), x);
}

TEST(DropoutCpu, BackwardAppliesTheForwardsMaskAndScale) {
  const Shape xs{64, kUnits, 1, 1};
  LayerHarness h(make_dropout(Backend::kCpu, {0.4f, 2}), xs);
  h.ctx.noise_key = 99;
  h.ctx.noise_first_row = 128;
  std::vector<float> x = random_vector(xs.size(), 8, 0.5, 1.5), y, dy = random_vector(xs.size(), 9), dx;
  h.forward(x, xs, y, true);
  h.ctx.noise_key = 1;  // a later pass's key must not change this pass's backward
  h.backward(x, xs, y, dy, dx);
  // The reference: the mask and scale read off the forward (x is nonzero): dx = dy · y / x.
  std::vector<double> ref(xs.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = static_cast<double>(dy[i]) * y[i] / x[i];
  EXPECT_TRUE(all_close("dx", dx, ref, 1e-7, 1e-6));
}

TEST(DropoutCpu, MaskFollowsTheGlobalRowNotTheSliceOrThreads) {
  const std::vector<float> x = random_vector(size_t{128} * kUnits, 10);
  const std::vector<float> whole = drop(0.3f, 1, x, 128, 77, 0, 1);
  EXPECT_EQ(drop(0.3f, 1, x, 128, 77, 0, 2), whole) << "2 threads";
  const std::vector<float> a(x.begin(), x.begin() + 64 * kUnits), b(x.begin() + 64 * kUnits, x.end());
  std::vector<float> halves = drop(0.3f, 1, a, 64, 77, 0);
  const std::vector<float> second = drop(0.3f, 1, b, 64, 77, 64);
  halves.insert(halves.end(), second.begin(), second.end());
  EXPECT_EQ(halves, whole) << "rows 0-63 and 64-127 as two ranks' slices";
}

TEST(DropoutCpu, MasksChangeWithThePassKeyTheLayerAndTheRow) {
  const size_t n = size_t{64} * kUnits;
  const std::vector<float> base = drop(0.5f, 1, ones(n), 64, 1, 0);
  for (const auto& [what, other] : {std::pair{"key", drop(0.5f, 1, ones(n), 64, 2, 0)},
                                    std::pair{"salt", drop(0.5f, 2, ones(n), 64, 1, 0)},
                                    std::pair{"row", drop(0.5f, 1, ones(n), 64, 1, 64)}}) {
    double both = 0;
    for (size_t i = 0; i < n; ++i) both += base[i] != 0.0f && other[i] != 0.0f;
    EXPECT_TRUE(binomial(what, both, static_cast<double>(n), 0.25, 5)) << "masks of another " << what
                                                                       << " are not independent";
  }
}

TEST(DropoutModel, LayersOnlyWhenAskedAfterTheHiddenDenseReLUs) {
  for (const char* arch : {"seed", "lenet5"}) {
    const Model plain(arch, Backend::kCpu, {1, 1, 28, 28}, 10, 8), with(arch, Backend::kCpu, {1, 1, 28, 28}, 10, 8, 0.3f);
    ASSERT_EQ(with.num_layers(), plain.num_layers() + 2) << arch;
    std::vector<std::string> after;
    for (size_t i = 0; i < with.num_layers(); ++i) {
      EXPECT_NE(plain.layer(std::min(i, plain.num_layers() - 1)).type(), LayerKind::kDropout);
      if (with.layer(i).type() == LayerKind::kDropout) after.push_back(with.layer(i - 1).name());
    }
    EXPECT_EQ(after, (std::vector<std::string>{"relu3", "relu4"})) << arch;
    EXPECT_EQ(with.arena().trainable_scalars(), plain.arena().trainable_scalars());
  }
}

}  // namespace
}  // namespace mnist_dist::test
