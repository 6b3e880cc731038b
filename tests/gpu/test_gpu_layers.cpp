// Every CUDA layer against its CPU implementation on the same inputs and initial weights:
// forward, backward (dx and parameter gradients), running statistics, partial and empty
// batches, ties in max-pooling, the ReLU kink. TF32 off; |gpu − cpu| ≤ 1e-5·max + 1e-4·|cpu|.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "gpu_test_util.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/elementwise.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

// x with a different mean and spread per channel (so BatchNorm's normalisation matters).
std::vector<float> channel_data(const Shape& s, uint64_t seed) {
  std::vector<float> x = random_vector(s.size(), seed);
  for (size_t i = 0; i < x.size(); ++i) {
    const int c = static_cast<int>(i / (static_cast<size_t>(s.h) * s.w) % s.c);
    x[i] = static_cast<float>(0.5 * c - 1.0 + (1.0 + 0.5 * c) * x[i]);
  }
  return x;
}

void check_layer(LayerPair& p, Shape xs, bool training, uint64_t seed) {
  const std::vector<float> x = channel_data(xs, seed);
  const std::vector<float> y = p.forward(x, xs, training);
  EXPECT_TRUE(close_to_cpu("y", y, p.cpu_y.data(), p.cpu_y.size(), &p.ys));
  const std::vector<float> dy = random_vector(p.ys.size(), seed + 1);
  const std::vector<float> dx = p.backward(dy);
  EXPECT_TRUE(close_to_cpu("dx", dx, p.cpu_dx.data(), p.cpu_dx.size(), &p.xs));
  EXPECT_TRUE(p.grads_match());
}

struct ConvCase {
  Conv2dConfig cfg;
  Shape in;
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << c.cfg.in_channels << "->" << c.cfg.out_channels << " k" << c.cfg.kernel << " on "
      << c.in.str();
}

class GpuConv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(GpuConv2d, ForwardBackwardMatchCpu) {
  MD_REQUIRE_GPU();
  const ConvCase& c = GetParam();
  LayerPair p(make_conv2d(Backend::kCpu, c.cfg), make_conv2d(Backend::kCuda, c.cfg), c.in);
  EXPECT_TRUE(p.params_and_state_match()) << "initial weights differ";
  check_layer(p, c.in, true, 11);
  // A partial batch (another cuDNN plan) and the input gradient skipped.
  const Shape partial = c.in.with_batch(std::max(1, c.in.n / 3));
  check_layer(p, partial, true, 12);
  p.forward(channel_data(partial, 13), partial, true);
  EXPECT_TRUE(p.backward(random_vector(p.ys.size(), 14), false).empty());
  EXPECT_TRUE(p.grads_match());
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuConv2d,
    ::testing::Values(ConvCase{{1, 6, 5, Padding::kSame}, {16, 1, 28, 28}},
                      ConvCase{{6, 12, 5, Padding::kSame}, {16, 6, 14, 14}},
                      ConvCase{{6, 16, 5, Padding::kValid}, {7, 6, 14, 14}},
                      ConvCase{{3, 4, 3, Padding::kSame}, {5, 3, 9, 11}}),
    [](const ::testing::TestParamInfo<ConvCase>& i) {
      const ConvCase& c = i.param;
      return "c" + std::to_string(c.cfg.in_channels) + "to" + std::to_string(c.cfg.out_channels) +
             "k" + std::to_string(c.cfg.kernel) +
             (c.cfg.padding == Padding::kSame ? "same" : "valid") + "_n" + std::to_string(c.in.n) +
             "_" + std::to_string(c.in.h) + "x" + std::to_string(c.in.w);
    });

TEST(GpuConv2d, EmptyBatchGivesZeroGradients) {
  MD_REQUIRE_GPU();
  const Conv2dConfig cfg{1, 6, 5, Padding::kSame};
  LayerPair p(make_conv2d(Backend::kCpu, cfg), make_conv2d(Backend::kCuda, cfg), {4, 1, 28, 28});
  check_layer(p, {4, 1, 28, 28}, true, 3);  // non-zero gradients first
  p.forward({}, {0, 1, 28, 28}, true);
  p.backward({});
  EXPECT_TRUE(p.grads_match());
}

TEST(GpuBatchNorm, TrainingStepsAndRunningStatisticsMatchCpu) {
  MD_REQUIRE_GPU();
  const Shape xs{16, 6, 28, 28};
  LayerPair p(make_batchnorm(Backend::kCpu, {6}), make_batchnorm(Backend::kCuda, {6}), xs);
  for (int step = 0; step < 3; ++step) {  // running statistics after several updates
    check_layer(p, xs, true, 20 + step);
    EXPECT_TRUE(p.params_and_state_match()) << "after step " << step;
  }
  // Evaluation with the running statistics.
  const std::vector<float> x = channel_data(xs, 30);
  const std::vector<float> y = p.forward(x, xs, false);
  EXPECT_TRUE(close_to_cpu("eval y", y, p.cpu_y.data(), p.cpu_y.size(), &p.ys));
}

TEST(GpuBatchNorm, PartialBatchWithoutInputGradientAndTinyReductions) {
  MD_REQUIRE_GPU();
  LayerPair p(make_batchnorm(Backend::kCpu, {12}), make_batchnorm(Backend::kCuda, {12}),
              {100, 12, 7, 7});
  check_layer(p, {100, 12, 7, 7}, true, 40);  // more samples than partial sums (kMaxParts)
  check_layer(p, {3, 12, 7, 7}, true, 41);
  p.forward(channel_data({5, 12, 7, 7}, 42), {5, 12, 7, 7}, true);
  EXPECT_TRUE(p.backward(random_vector(p.ys.size(), 43), false).empty());
  EXPECT_TRUE(p.grads_match());
  check_layer(p, {2, 12, 1, 1}, true, 44);  // N·H·W = 2
  EXPECT_TRUE(p.params_and_state_match());
}

TEST(GpuBatchNorm, EmptySliceKeepsRunningStatistics) {
  MD_REQUIRE_GPU();
  LayerPair p(make_batchnorm(Backend::kCpu, {6}), make_batchnorm(Backend::kCuda, {6}),
              {4, 6, 5, 5});
  check_layer(p, {4, 6, 5, 5}, true, 50);
  p.forward({}, {0, 6, 5, 5}, true);
  p.backward({});
  EXPECT_TRUE(p.grads_match());
  EXPECT_TRUE(p.params_and_state_match());
}

struct DenseCase {
  DenseConfig cfg;
  int n;
};
void PrintTo(const DenseCase& c, std::ostream* os) {
  *os << c.cfg.in_features << "->" << c.cfg.out_features << " n " << c.n;
}
class GpuDense : public ::testing::TestWithParam<DenseCase> {};

TEST_P(GpuDense, ForwardBackwardMatchCpu) {
  MD_REQUIRE_GPU();
  const DenseCase& c = GetParam();
  const Shape xs{c.n, c.cfg.in_features, 1, 1};
  LayerPair p(make_dense(Backend::kCpu, c.cfg), make_dense(Backend::kCuda, c.cfg), xs);
  EXPECT_TRUE(p.params_and_state_match()) << "initial weights differ";
  check_layer(p, xs, true, 60);
  check_layer(p, xs.with_batch(1), true, 61);
  p.forward(random_vector(xs.size(), 62), xs, true);
  EXPECT_TRUE(p.backward(random_vector(p.ys.size(), 63), false).empty());
  EXPECT_TRUE(p.grads_match());
  p.forward({}, xs.with_batch(0), true);  // an empty slice: zero gradients
  p.backward({});
  EXPECT_TRUE(p.grads_match());
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuDense,
                         ::testing::Values(DenseCase{{588, 1200}, 64}, DenseCase{{1200, 840}, 33},
                                           DenseCase{{840, 10}, 128}, DenseCase{{7, 3}, 5}),
                         [](const ::testing::TestParamInfo<DenseCase>& i) {
                           return std::to_string(i.param.cfg.in_features) + "to" +
                                  std::to_string(i.param.cfg.out_features) + "_n" +
                                  std::to_string(i.param.n);
                         });

TEST(GpuReLU, MatchesCpuIncludingTheKink) {
  MD_REQUIRE_GPU();
  const Shape xs{6, 6, 14, 14};
  LayerPair p(make_relu(Backend::kCpu), make_relu(Backend::kCuda), xs);
  std::vector<float> x = random_vector(xs.size(), 70);
  for (size_t i = 0; i < x.size(); i += 7) x[i] = 0.0f;  // exact zeros: derivative 0
  const std::vector<float> y = p.forward(x, xs, true);
  EXPECT_EQ(y, p.cpu_y);
  const std::vector<float> dx = p.backward(random_vector(xs.size(), 71));
  EXPECT_EQ(dx, p.cpu_dx);
}

TEST(GpuMaxPool, TiesGoToTheFirstMaximumLikeTheCpu) {
  MD_REQUIRE_GPU();
  for (const Shape& xs : {Shape{4, 6, 28, 28}, Shape{3, 2, 7, 9}}) {
    LayerPair p(make_maxpool2(Backend::kCpu), make_maxpool2(Backend::kCuda), xs);
    // Values on a coarse grid: most windows hold ties.
    std::vector<float> x = random_vector(xs.size(), 80);
    for (float& v : x) v = std::round(v * 2.0f) / 2.0f;
    const std::vector<float> y = p.forward(x, xs, true);
    EXPECT_EQ(y, p.cpu_y);
    const std::vector<float> dx = p.backward(random_vector(p.ys.size(), 81));
    EXPECT_EQ(dx, p.cpu_dx) << "gradient routed differently on ties, shape " << xs.str();
  }
}

TEST(GpuFlatten, CopiesForwardAndBackward) {
  MD_REQUIRE_GPU();
  const Shape xs{5, 12, 7, 7};
  LayerPair p(make_flatten(Backend::kCpu), make_flatten(Backend::kCuda), xs);
  const std::vector<float> y = p.forward(random_vector(xs.size(), 90), xs, true);
  EXPECT_EQ(y, p.cpu_y);
  EXPECT_EQ(p.backward(random_vector(xs.size(), 91)), p.cpu_dx);
}

// The same hash on both sides (layers/dropout_mask.h) and one float multiply: the same bits, in
// training (with a slice that starts at global row 64) and in evaluation (the identity).
TEST(GpuDropout, SameMaskAndScalingAsCpuBitForBit) {
  MD_REQUIRE_GPU();
  const Shape xs{64, 1200, 1, 1};
  LayerPair p(make_dropout(Backend::kCpu, {0.3f, 1}), make_dropout(Backend::kCuda, {0.3f, 1}), xs);
  for (Context* c : {&p.cpu_ctx, &p.gpu_ctx}) c->noise_key = 0x5EED, c->noise_first_row = 64;
  const std::vector<float> x = random_vector(xs.size(), 95);
  const std::vector<float> y = p.forward(x, xs, true);
  EXPECT_EQ(y, p.cpu_y);
  EXPECT_NE(y, x) << "training dropped nothing";
  EXPECT_EQ(p.backward(random_vector(xs.size(), 96)), p.cpu_dx);
  EXPECT_EQ(p.forward(x, xs, false), x) << "evaluation is the identity";
}

}  // namespace
}  // namespace mnist_dist::test
