// Adam (Keras semantics): three steps on a few scalars against values computed by hand in
// double, ε scaled as in Keras (not PyTorch), zero gradients, the bias-corrected step size,
// and resuming from saved moments and step count.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "core/aligned.h"
#include "optim/adam.h"

namespace mnist_dist {
namespace {

// Keras: m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; θ ← θ − lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε).
// lr 0.1, β1 0.9, β2 0.999, ε 1e-7.
//
// Step 1 from zero moments: m = 0.1 g, v = 0.001 g², lr_1 = 0.1·√0.001/0.1 = 0.0316227766, so
// θ moves by lr·sign(g)·|g| / (|g| + ε/√0.001) = 0.1·sign(g)·|g| / (|g| + 3.16227766e-6).
//   a (g = 1):     1.0 − 0.1/(1 + 3.162e-6)          = 0.900000316226766
//   b (g = −2):   −0.5 + 0.1·2/(2 + 3.162e-6)        = −0.400000158113633
//   c (g = 1e-6):  2.0 − 0.1·1e-6/(1e-6 + 3.162e-6)  = 1.975974692664796
//     (PyTorch's ε would give 2.0 − 0.1·1e-6/(1.1e-6) = 1.909: c pins the Keras ε.)
// Step 2: a gets g = −2: m = 0.09 − 0.2 = −0.11, v = 0.000999 + 0.004 = 0.004999,
//   lr_2 = 0.1·√0.001999/0.19 = 0.023531672532745;
//   a = 0.900000316 + 0.0235316725·0.11/(√0.004999 + 1e-7) = 0.936610617150388
// Step 3: a gets g = 0.5: m = −0.099 + 0.05 = −0.049, v = 0.004994001 + 0.00025 = 0.005244001,
//   lr_3 = 0.1·√0.002997001/0.271 = 0.020201059743897;
//   a = 0.936610617 + 0.0202010597·0.049/(√0.005244001 + 1e-7) = 0.950279664579605
// b (constant g = −2) and c (constant g = 1e-6) after steps 2 and 3 likewise (m_t = (1−β1^t) g,
// v_t = (1−β2^t) g²): the step is lr·sign(g)·|g|/(|g| + ε/√(1−β2^t)).
// d (g = 0 always, zero moments) never moves.
struct Expect {
  double a, b, c, d;
};
constexpr Expect kAfter[3] = {
    {0.900000316226766, -0.400000158113633, 1.9759746926647959, 0.3},
    {0.936610617150388, -0.30000026994486884, 1.9450783324445533, 0.3},
    {0.9502796645796052, -0.20000036127754095, 1.9097008293120235, 0.3},
};
constexpr double kM[3][3] = {{0.1, -0.2, 1e-7}, {-0.11, -0.38, 1.9e-7}, {-0.049, -0.542, 2.71e-7}};
constexpr double kV[3][3] = {{0.001, 0.004, 1e-15},
                             {0.004999, 0.007996, 1.999e-15},
                             {0.005244001, 0.011988004, 2.997001e-15}};

TEST(AdamKeras, ThreeStepsByHand) {
  AdamConfig cfg;
  cfg.lr = 0.1f;
  Adam adam(cfg, 4);
  std::vector<float> p{1.0f, -0.5f, 2.0f, 0.3f};
  const float grads[3][4] = {{1.0f, -2.0f, 1e-6f, 0.0f},
                             {-2.0f, -2.0f, 1e-6f, 0.0f},
                             {0.5f, -2.0f, 1e-6f, 0.0f}};
  for (int t = 0; t < 3; ++t) {
    adam.step(p.data(), grads[t]);
    EXPECT_EQ(adam.steps(), t + 1);
    EXPECT_NEAR(p[0], kAfter[t].a, 2e-6) << "step " << t + 1;
    EXPECT_NEAR(p[1], kAfter[t].b, 2e-6) << "step " << t + 1;
    EXPECT_NEAR(p[2], kAfter[t].c, 2e-6) << "step " << t + 1;
    EXPECT_EQ(p[3], 0.3f) << "zero gradient, zero moments: unchanged";
    // β2 = 0.999f is 0.99900001 in float, so 1 − β2 is off by 1.3e-5 relative: v to 1e-4.
    for (int i = 0; i < 3; ++i) {
      EXPECT_NEAR(adam.m()[i], kM[t][i], 1e-6 * std::fabs(kM[t][i])) << "m, step " << t + 1;
      EXPECT_NEAR(adam.v()[i], kV[t][i], 1e-4 * std::fabs(kV[t][i])) << "v, step " << t + 1;
    }
    EXPECT_EQ(adam.m()[3], 0.0f);
    EXPECT_EQ(adam.v()[3], 0.0f);
  }
}

TEST(AdamKeras, BiasCorrectedStepSize) {
  AdamConfig cfg;  // Keras defaults: lr 1e-3, β1 0.9, β2 0.999, ε 1e-7
  Adam adam(cfg, 1);
  EXPECT_FLOAT_EQ(cfg.lr, 1e-3f);
  EXPECT_FLOAT_EQ(cfg.beta1, 0.9f);
  EXPECT_FLOAT_EQ(cfg.beta2, 0.999f);
  EXPECT_FLOAT_EQ(cfg.epsilon, 1e-7f);
  const double b1 = 0.9f, b2 = 0.999f;  // as the float config holds them
  for (int t : {1, 2, 3, 10, 1000}) {
    const double expect = 1e-3 * std::sqrt(1 - std::pow(b2, t)) / (1 - std::pow(b1, t));
    EXPECT_NEAR(adam.coeffs(t).lr_t, expect, 1e-6 * expect) << "t = " << t;
  }
  const double lr1 = 1e-3 * std::sqrt(0.001) / 0.1;  // 3.1623e-4 (float β2: 1e-5 relative)
  EXPECT_NEAR(adam.coeffs(1).lr_t, lr1, 2e-5 * lr1);
}

// A zero gradient leaves a parameter with zero moments unchanged; with non-zero moments the
// parameter keeps moving (momentum) — both as Keras does.
TEST(AdamKeras, ZeroGradient) {
  AdamConfig cfg;
  cfg.lr = 0.1f;
  Adam adam(cfg, 2);
  std::vector<float> p{0.7f, 0.7f};
  const float g1[2] = {0.0f, 1.0f}, g0[2] = {0.0f, 0.0f};
  adam.step(p.data(), g1);
  EXPECT_EQ(p[0], 0.7f);
  const float after1 = p[1];
  adam.step(p.data(), g0);
  EXPECT_EQ(p[0], 0.7f);
  // Step 2 with g = 0: m = 0.09, v = 0.000999, lr_2 = 0.1·√0.001999/0.19.
  const double lr2 = 0.1 * std::sqrt(1 - 0.999 * 0.999) / (1 - 0.81);
  EXPECT_NEAR(p[1], after1 - lr2 * 0.09 / (std::sqrt(0.000999) + 1e-7), 2e-6);
}

// Resuming from saved moments and step count continues exactly as an uninterrupted run.
TEST(AdamKeras, ResumeFromSavedState) {
  AdamConfig cfg;
  cfg.lr = 0.05f;
  Adam a(cfg, 3), b(cfg, 3);
  std::vector<float> pa{0.1f, -0.2f, 0.3f};
  const float g[3][3] = {{0.5f, -1.0f, 2.0f}, {0.1f, 0.2f, -0.3f}, {-1.0f, 0.0f, 0.7f}};
  a.step(pa.data(), g[0]);
  a.step(pa.data(), g[1]);
  std::vector<float> pb = pa;
  std::copy_n(a.m(), 3, b.m());
  std::copy_n(a.v(), 3, b.v());
  b.set_steps(a.steps());
  a.step(pa.data(), g[2]);
  b.step(pb.data(), g[2]);
  EXPECT_EQ(pa, pb);
  EXPECT_EQ(b.steps(), 3);
}

// The sharded exchange's forms: a step over [begin, end) touches nothing outside it and
// equals the whole-arena step inside; a step over the sum of n buffers equals the step over
// the pre-summed gradient ((g0 + g1) + g2 ..., the same float additions) bit for bit.
TEST(AdamKeras, RangeAndSummedStepsEqualTheWholeStep) {
  const size_t n = 1000, b = 160, e = 737;
  std::vector<float> g[3];
  for (int r = 0; r < 3; ++r)
    for (size_t i = 0; i < n; ++i) g[r].push_back(std::sin(0.37f * static_cast<float>(i) + static_cast<float>(r)));
  for (int bufs = 1; bufs <= 3; ++bufs) {
    std::vector<float> sum(n), p_ref(n, 0.5f), p_range(n, 0.5f), p_sum(n, 0.5f);
    for (size_t i = 0; i < n; ++i) {
      float s = g[0][i];
      for (int r = 1; r < bufs; ++r) s += g[r][i];
      sum[i] = s;
    }
    const float* ptrs[3] = {g[0].data(), g[1].data(), g[2].data()};
    Adam whole(AdamConfig{}, n), range(AdamConfig{}, n), summed(AdamConfig{}, n);
    for (int step = 0; step < 3; ++step) {
      whole.step(p_ref.data(), sum.data());
      range.step(p_range.data(), sum.data(), b, e);
      summed.step_sum(p_sum.data(), ptrs, bufs, b, e);
    }
    EXPECT_EQ(range.steps(), 3);
    EXPECT_EQ(summed.steps(), 3);
    for (size_t i = 0; i < n; ++i) {
      const bool inside = i >= b && i < e;
      ASSERT_EQ(p_range[i], inside ? p_ref[i] : 0.5f) << "buffers " << bufs << " index " << i;
      ASSERT_EQ(p_sum[i], p_range[i]) << "buffers " << bufs << " index " << i;
      ASSERT_EQ(range.m()[i], inside ? whole.m()[i] : 0.0f);
      ASSERT_EQ(summed.v()[i], range.v()[i]);
    }
  }
}

// The vector loop (AVX-512 where the CPU has it) against adam::update, the per-element
// definition the CUDA kernel shares, bit for bit: several 4096-float chunks, a range starting
// and ending off a 16-float boundary, gradients from tiny to large, moments growing over steps.
// Streaming the parameter stores (the default) changes nothing: the same loop with
// stream_params, from an aligned and from an unaligned begin.
class AdamVectorLoop : public ::testing::TestWithParam<std::tuple<bool, size_t, float>> {};

TEST_P(AdamVectorLoop, MatchesTheElementDefinition) {
  const auto [stream, b, weight_decay] = GetParam();
  const size_t n = 3 * 4096 + 1234, e = n - 3;
  AlignedVector<float> p(n);
  std::vector<float> g(n), p_def(n), m_def(n, 0.0f), v_def(n, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    g[i] = std::sin(0.11f * static_cast<float>(i)) * std::pow(10.0f, static_cast<float>(i % 9) - 5.0f);
    p[i] = p_def[i] = std::cos(0.07f * static_cast<float>(i));
  }
  AdamConfig cfg;
  cfg.weight_decay = weight_decay;
  Adam adam(cfg, n);
  adam.set_stream_params(stream);
  for (int step = 1; step <= 4; ++step) {
    adam.step(p.data(), g.data(), b, e);
    const adam::Coeffs c = adam.coeffs(step);
    for (size_t i = b; i < e; ++i) adam::update(p_def[i], m_def[i], v_def[i], g[i], c);
  }
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(p[i], p_def[i]) << "index " << i;
    ASSERT_EQ(adam.m()[i], m_def[i]) << "index " << i;
    ASSERT_EQ(adam.v()[i], v_def[i]) << "index " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AdamKeras, AdamVectorLoop,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(size_t{5}, size_t{16}),
                                            ::testing::Values(0.0f, 0.05f)));

// AdamW against torch.optim.AdamW (float32), five steps with a different LR each (a schedule):
// decoupled decay θ·(1 − lr·wd) before the Adam step. ε is tiny in both, so that PyTorch's ε
// placement (on √v̂) and Keras' (on √v) agree to float rounding.
#include "adamw_golden.inc"

TEST(AdamW, FiveStepsMatchPyTorchAdamW) {
  AdamConfig cfg;
  cfg.epsilon = 1e-10f;
  cfg.weight_decay = static_cast<float>(kAdamWDecay);
  Adam adam(cfg, kAdamWN);
  std::vector<float> p(kAdamWP0, kAdamWP0 + kAdamWN);
  for (int s = 0; s < kAdamWSteps; ++s) {
    adam.set_lr(kAdamWLr[s]);
    adam.step(p.data(), kAdamWGrad[s]);
    for (int i = 0; i < kAdamWN; ++i) EXPECT_NEAR(p[i], kAdamWAfter[s][i], 2e-6) << "step " << s + 1 << " index " << i;
  }
}

TEST(AdamW, NoWeightDecayIsPlainAdamBitForBit) {
  AdamConfig with_zero;
  with_zero.weight_decay = 0.0f;
  EXPECT_EQ(Adam(with_zero, 1).coeffs(3).decay, 1.0f);
  AdamConfig decayed;
  decayed.lr = 0.01f;
  decayed.weight_decay = 0.1f;
  EXPECT_FLOAT_EQ(Adam(decayed, 1).coeffs(1).decay, 0.999f);
}

}  // namespace
}  // namespace mnist_dist
