// Max-pooling 2×2/2, ReLU and Flatten (CPU): forward/backward against the reference, ties
// (first maximum in scan order wins), odd sizes (last row/column dropped, zero gradient), zero
// input to ReLU, finite differences with inputs kept away from kinks and ties by construction,
// and the checker's kink detection itself.
#include <gtest/gtest.h>

#include <algorithm>

#include "gradcheck.h"
#include "layers/elementwise.h"
#include "reference.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

// Distinct values on a 0.02 grid (a shuffled ramp), far from ties at the scale of h = 1e-3.
std::vector<float> distinct_values(size_t n, uint64_t seed) {
  const auto perm = seeded_permutation(n, seed, 3);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(0.02 * perm[i] - 0.01 * n);
  return x;
}

TEST(MaxPool2Cpu, OddSizesForwardBackwardMatchReference) {
  const Shape xs{3, 2, 7, 9};
  LayerHarness h(make_maxpool2(Backend::kCpu), xs);
  EXPECT_EQ(h.out, (Shape{3, 2, 3, 4}));
  std::vector<float> x = random_vector(xs.size(), 1), y, dx, dy = random_vector(h.out.size(), 2);
  h.forward(x, xs, y, true);
  EXPECT_TRUE(all_close("pool y", y, ref::maxpool2_forward(to_double(x), xs), 0, 0, &h.out));
  h.backward(x, xs, y, dy, dx);
  const auto ref_dx = ref::maxpool2_backward(to_double(x), xs, to_double(dy));
  EXPECT_TRUE(all_close("pool dx", dx, ref_dx, 0, 0, &xs));
  // The dropped last row and column get exactly zero.
  for (int n = 0; n < xs.n; ++n)
    for (int c = 0; c < xs.c; ++c) {
      const float* p = dx.data() + (n * xs.c + c) * xs.h * xs.w;
      for (int w = 0; w < xs.w; ++w) EXPECT_EQ(p[6 * xs.w + w], 0.0f) << "row 6, col " << w;
      for (int hh = 0; hh < xs.h; ++hh) EXPECT_EQ(p[hh * xs.w + 8], 0.0f) << "col 8, row " << hh;
    }
  // Exactly one gradient entry per window.
  EXPECT_EQ(std::count_if(dx.begin(), dx.end(), [](float v) { return v != 0.0f; }),
            static_cast<long>(h.out.size()));
}

// Planes wider than one vector of pooled outputs and taller than one row of them: the model's
// 28×28 and 14×14 planes, an odd 13×37 (two vectors per pooled row, the second partial), so the
// SIMD kernels' full-row, partial-row and last-row paths all run.
TEST(MaxPool2Cpu, ModelSizedPlanesForwardBackwardMatchReference) {
  for (const Shape xs : {Shape{2, 3, 28, 28}, Shape{3, 2, 14, 14}, Shape{2, 2, 13, 37}}) {
    LayerHarness h(make_maxpool2(Backend::kCpu), xs);
    std::vector<float> x = random_vector(xs.size(), 5), y, dx, dy = random_vector(h.out.size(), 6);
    h.forward(x, xs, y, true);
    EXPECT_TRUE(all_close("pool y", y, ref::maxpool2_forward(to_double(x), xs), 0, 0, &h.out)) << xs.str();
    h.backward(x, xs, y, dy, dx);
    EXPECT_TRUE(all_close("pool dx", dx, ref::maxpool2_backward(to_double(x), xs, to_double(dy)), 0, 0, &xs))
        << xs.str();
  }
}

TEST(MaxPool2Cpu, TiesGoToTheFirstMaximum) {
  // One 4×6 plane, six windows (row-major: w0 w1 w2 / w3 w4 w5), hand-written:
  //  w0: all equal             → (0,0)     w1: (0,1) = (1,1) max → (0,1)
  //  w2: (1,0) = (1,1) max     → (1,0)     w3: all −3 (negative) → (0,0)
  //  w4: only (1,1) max        → (1,1)     w5: (0,0) = (1,1) max → (0,0)
  const Shape xs{1, 1, 4, 6};
  std::vector<float> x{
      2, 2, /**/ 0, 5, /**/ 1, 1,   //
      2, 2, /**/ 4, 5, /**/ 7, 7,   //
      -3, -3, /**/ 1, 2, /**/ 6, 0, //
      -3, -3, /**/ 3, 9, /**/ 0, 6};
  LayerHarness h(make_maxpool2(Backend::kCpu), xs);
  std::vector<float> y, dx, dy{1, 2, 3, 4, 5, 6};
  h.forward(x, xs, y, true);
  EXPECT_EQ(y, (std::vector<float>{2, 5, 7, -3, 9, 6}));
  h.backward(x, xs, y, dy, dx);
  const std::vector<float> expect{
      1, 0, /**/ 0, 2, /**/ 0, 0,  //
      0, 0, /**/ 0, 0, /**/ 3, 0,  //
      4, 0, /**/ 0, 0, /**/ 6, 0,  //
      0, 0, /**/ 0, 5, /**/ 0, 0};
  EXPECT_EQ(dx, expect);
  EXPECT_TRUE(all_close("pool dx vs reference", dx,
                        ref::maxpool2_backward(to_double(x), xs, to_double(dy)), 0, 0, &xs));
}

TEST(MaxPool2Cpu, GradientsMatchFiniteDifferences) {
  const Shape xs{2, 3, 5, 7};  // odd: the last row and column must get zero
  LayerHarness h(make_maxpool2(Backend::kCpu), xs);
  std::vector<float> x = distinct_values(xs.size(), 4), dy = random_vector(h.out.size(), 5);
  Tensor tx{x.data(), xs}, tdy{dy.data(), h.out};
  const GradCheckReport r = check_layer_gradients(*h.layer, h.arena, h.ctx, tx, tdy, {});
  EXPECT_TRUE(r.result());
  EXPECT_EQ(r.skipped, 0u) << "no arg-max can change by construction";
}

TEST(ReluCpu, ForwardBackwardMatchReferenceZeroGetsZeroGradient) {
  const Shape xs{2, 3, 4, 5};
  LayerHarness h(make_relu(Backend::kCpu), xs);
  std::vector<float> x = random_vector(xs.size(), 6), y, dx, dy = random_vector(xs.size(), 7);
  for (size_t i = 0; i < x.size(); i += 7) x[i] = 0.0f;
  x[3] = -0.0f;
  h.forward(x, xs, y, true);
  EXPECT_TRUE(all_close("relu y", y, ref::relu_forward(to_double(x)), 0, 0, &xs));
  h.backward(x, xs, y, dy, dx);
  EXPECT_TRUE(all_close("relu dx", dx, ref::relu_backward(to_double(x), to_double(dy)), 0, 0, &xs));
  for (size_t i = 0; i < x.size(); i += 7) {
    EXPECT_EQ(y[i], 0.0f);
    EXPECT_EQ(dx[i], 0.0f) << "zero input must get zero gradient at " << i;
  }
  EXPECT_EQ(dx[3], 0.0f);
}

TEST(ReluCpu, GradientsMatchFiniteDifferences) {
  const Shape xs{2, 2, 3, 5};
  LayerHarness h(make_relu(Backend::kCpu), xs);
  std::vector<float> x = random_vector(xs.size(), 8), dy = random_vector(xs.size(), 9);
  for (float& v : x) v = v < 0 ? v - 0.05f : v + 0.05f;  // |x| ≥ 0.05 ≫ h: no kink crossed
  Tensor tx{x.data(), xs}, tdy{dy.data(), xs};
  const GradCheckReport r = check_layer_gradients(*h.layer, h.arena, h.ctx, tx, tdy, {});
  EXPECT_TRUE(r.result());
  EXPECT_EQ(r.skipped, 0u);
}

// The checker itself: inputs within h of the ReLU kink are detected and skipped; without the
// detection the same coordinates fail.
TEST(GradCheck, SkipsCoordinatesThatCrossAReluKink) {
  const Shape xs{1, 1, 2, 6};
  LayerHarness h(make_relu(Backend::kCpu), xs);
  std::vector<float> x{0.5f, -0.5f, 2e-4f, -3e-4f, 0.8f, -0.9f, 4e-4f, 0.3f, -1e-4f, -0.2f, 0.6f, 1.0f};
  std::vector<float> dy{0.7f, -0.6f, 0.9f, -0.8f, 0.5f, 0.6f, -0.75f, 0.4f, 0.55f, -0.9f, 0.8f, -0.5f};
  Tensor tx{x.data(), xs}, tdy{dy.data(), xs};
  GradCheckOptions o;
  o.max_skipped_fraction = 0.5;
  const GradCheckReport r = check_layer_gradients(*h.layer, h.arena, h.ctx, tx, tdy, o);
  EXPECT_TRUE(r.result());
  EXPECT_EQ(r.skipped, 4u) << r.summary();  // 2e-4, -3e-4, 4e-4, -1e-4
  EXPECT_EQ(r.checked, 8u);

  o.skip_kinks = false;
  const GradCheckReport raw = check_layer_gradients(*h.layer, h.arena, h.ctx, tx, tdy, o);
  EXPECT_FALSE(raw.ok());
  EXPECT_EQ(raw.failed, 4u) << raw.summary();
  // The report says where.
  EXPECT_NE(raw.summary().find("dx[2] (0, 0, 0, 2)"), std::string::npos) << raw.summary();
}

// The checker catches a wrong analytic gradient and reports it (a layer with a 5% error).
TEST(GradCheck, ReportsAWrongGradient) {
  class ScaledWrong final : public Layer {
   public:
    std::string kind() const override { return "test"; }
    std::string describe() const override { return "y = a·x², dx off by 5% at x[5]"; }
    Shape output_shape(const Shape& in) const override { return in; }
    void declare(ParamArena& a) override { a_ = a.declare(name() + "/a", {1}, true); }
    void init(ParamArena& a, Rng&) override { a.param(a_)[0] = 1.5f; }
    void forward(Context&, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
      for (size_t i = 0; i < x.size(); ++i) y.data[i] = a.param(a_)[0] * x.data[i] * x.data[i];
    }
    void backward(Context&, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                  Tensor& dx) override {
      double da = 0.0;
      for (size_t i = 0; i < x.size(); ++i) {
        da += dy.data[i] * x.data[i] * x.data[i];
        dx.data[i] = 2.0f * a.param(a_)[0] * x.data[i] * dy.data[i] * (i == 5 ? 1.05f : 1.0f);
      }
      a.grad(a_)[0] = static_cast<float>(da);
    }
   private:
    int a_ = -1;
  };
  const Shape xs{1, 1, 2, 4};
  LayerHarness h(std::make_unique<ScaledWrong>(), xs);
  std::vector<float> x{1.0f, -2.0f, 1.5f, 0.5f, 2.5f, 3.0f, -1.0f, 0.8f};
  std::vector<float> dy{1.0f, 0.5f, -1.0f, 2.0f, 1.0f, 1.0f, -0.5f, 0.25f};
  Tensor tx{x.data(), xs}, tdy{dy.data(), xs};
  const GradCheckReport r = check_layer_gradients(*h.layer, h.arena, h.ctx, tx, tdy, {});
  EXPECT_EQ(r.failed, 1u) << r.summary();
  EXPECT_EQ(r.checked, 9u);
  EXPECT_NE(r.max_where.find("dx[5]"), std::string::npos) << r.summary();
  EXPECT_FALSE(r.result());
}

TEST(FlattenCpu, CopiesBothWays) {
  const Shape xs{2, 3, 2, 2};
  LayerHarness h(make_flatten(Backend::kCpu), xs);
  EXPECT_EQ(h.out, (Shape{2, 12, 1, 1}));
  std::vector<float> x = random_vector(xs.size(), 1), y, dx, dy = random_vector(xs.size(), 2);
  h.forward(x, xs, y, true);
  EXPECT_EQ(y, x);
  h.backward(x, xs, y, dy, dx);
  EXPECT_EQ(dx, dy);
}

}  // namespace
}  // namespace mnist_dist::test
