// Conv2d (CPU): forward and backward against the naive double reference and against finite
// differences, 'same' and 'valid', 1 and 3 input channels, kernels 5 and 3, odd image sizes.
#include <gtest/gtest.h>

#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "gradcheck.h"
#include "layers/conv2d.h"
#include "reference.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

struct ConvCase {
  int cin, cout, k;
  Padding padding;
  int n, h, w;
};

std::string case_name(const ::testing::TestParamInfo<ConvCase>& i) {
  const ConvCase& c = i.param;
  return "in" + std::to_string(c.cin) + "_out" + std::to_string(c.cout) + "_k" +
         std::to_string(c.k) + (c.padding == Padding::kSame ? "_same_" : "_valid_") +
         std::to_string(c.n) + "x" + std::to_string(c.h) + "x" + std::to_string(c.w);
}

class Conv2dTest : public ::testing::TestWithParam<ConvCase> {
 protected:
  void SetUp() override {
    const ConvCase& c = GetParam();
    cfg = Conv2dConfig{c.cin, c.cout, c.k, c.padding};
    xs = Shape{c.n, c.cin, c.h, c.w};
    h = std::make_unique<LayerHarness>(make_conv2d(Backend::kCpu, cfg), xs);
    // Non-zero biases so that the bias path is exercised (init sets them to zero).
    Rng rng(11);
    fill_uniform(h->arena.param(h->id("bias")), c.cout, rng, -0.5, 0.5);
    x = random_vector(xs.size(), 21);
    ys = h->out;
    dy = random_vector(ys.size(), 22);
  }
  std::vector<double> param(const char* s) {
    const int id = h->id(s);
    return to_double(h->arena.param(id), h->arena.info(id).count);
  }
  std::vector<float> grad(const char* s) {
    const int id = h->id(s);
    const float* g = h->arena.grad(id);
    return std::vector<float>(g, g + h->arena.info(id).count);
  }
  int pad() const { return conv_pad(cfg); }

  Conv2dConfig cfg;
  Shape xs, ys;
  std::unique_ptr<LayerHarness> h;
  std::vector<float> x, dy;
};

TEST_P(Conv2dTest, OutputShape) {
  const ConvCase& c = GetParam();
  const int expect_h = c.padding == Padding::kSame ? c.h : c.h - c.k + 1;
  const int expect_w = c.padding == Padding::kSame ? c.w : c.w - c.k + 1;
  EXPECT_EQ(ys, (Shape{c.n, c.cout, expect_h, expect_w}));
  EXPECT_EQ(h->arena.info(h->id("weight")).shape, (std::vector<int>{c.cout, c.cin, c.k, c.k}));
  EXPECT_EQ(h->arena.info(h->id("bias")).shape, (std::vector<int>{c.cout}));
}

TEST_P(Conv2dTest, ForwardMatchesReference) {
  std::vector<float> y;
  h->forward(x, xs, y, true);
  const auto ref = ref::conv2d_forward(to_double(x), xs, param("weight"), param("bias"),
                                       cfg.out_channels, cfg.kernel, pad());
  EXPECT_TRUE(all_close("conv2d y", y, ref, 1e-5 * max_abs(ref), 1e-5, &ys));
}

TEST_P(Conv2dTest, BackwardMatchesReference) {
  std::vector<float> y, dx;
  h->forward(x, xs, y, true);
  std::fill_n(h->arena.grads(), h->arena.param_count(), 77.0f);  // must be overwritten
  h->backward(x, xs, y, dy, dx);
  const auto g = ref::conv2d_backward(to_double(x), xs, param("weight"), to_double(dy),
                                      cfg.out_channels, cfg.kernel, pad());
  EXPECT_TRUE(all_close("conv2d dx", dx, g.dx, 1e-5 * max_abs(g.dx), 1e-5, &xs));
  EXPECT_TRUE(all_close("conv2d dW", grad("weight"), g.dw, 1e-5 * max_abs(g.dw), 1e-5));
  EXPECT_TRUE(all_close("conv2d db", grad("bias"), g.db, 1e-5 * max_abs(g.db), 1e-5));

  // A second backward overwrites (does not accumulate); without dx the parameter gradients
  // are still written.
  h->backward(x, xs, y, dy, dx, /*want_dx=*/false);
  EXPECT_TRUE(all_close("conv2d dW (2nd, no dx)", grad("weight"), g.dw, 1e-5 * max_abs(g.dw), 1e-5));
  EXPECT_TRUE(all_close("conv2d db (2nd, no dx)", grad("bias"), g.db, 1e-5 * max_abs(g.db), 1e-5));
}

TEST_P(Conv2dTest, GradientsMatchFiniteDifferences) {
  Tensor tx{x.data(), xs}, tdy{dy.data(), ys};
  GradCheckOptions o;
  o.skip_kinks = false;  // linear in x and in the parameters: nothing to skip
  const GradCheckReport r = check_layer_gradients(*h->layer, h->arena, h->ctx, tx, tdy, o);
  EXPECT_TRUE(r.result());
  EXPECT_GT(r.significant, r.checked / 2);
}

INSTANTIATE_TEST_SUITE_P(
    Cpu, Conv2dTest,
    ::testing::Values(ConvCase{1, 2, 5, Padding::kSame, 3, 7, 9},
                      ConvCase{3, 4, 5, Padding::kSame, 3, 7, 9},
                      ConvCase{1, 3, 5, Padding::kValid, 3, 7, 9},
                      ConvCase{3, 2, 5, Padding::kValid, 3, 9, 7},
                      ConvCase{3, 4, 3, Padding::kSame, 3, 7, 9},
                      ConvCase{2, 3, 3, Padding::kValid, 3, 5, 6},
                      ConvCase{1, 2, 5, Padding::kValid, 2, 5, 5}),  // 1×1 output
    case_name);

// A batch smaller than the one reserved (the model's last, partial batch).
TEST(Conv2dCpu, BatchSmallerThanReserved) {
  const Conv2dConfig cfg{2, 3, 5, Padding::kSame};
  LayerHarness h(make_conv2d(Backend::kCpu, cfg), Shape{6, 2, 7, 9});
  const Shape xs{2, 2, 7, 9};
  std::vector<float> x = random_vector(xs.size(), 5), y, dx;
  h.forward(x, xs, y, true);
  const int w = h.id("weight"), b = h.id("bias");
  const auto wd = to_double(h.arena.param(w), h.arena.info(w).count);
  const auto bd = to_double(h.arena.param(b), h.arena.info(b).count);
  const Shape ys{2, 3, 7, 9};
  const auto ref = ref::conv2d_forward(to_double(x), xs, wd, bd, 3, 5, 2);
  EXPECT_TRUE(all_close("conv2d y", y, ref, 1e-5 * max_abs(ref), 1e-5, &ys));
  std::vector<float> dy = random_vector(ys.size(), 6);
  h.backward(x, xs, y, dy, dx);
  const auto g = ref::conv2d_backward(to_double(x), xs, wd, to_double(dy), 3, 5, 2);
  EXPECT_TRUE(all_close("conv2d dx", dx, g.dx, 1e-5 * max_abs(g.dx), 1e-5, &xs));
  EXPECT_TRUE(all_close("conv2d dW", h.arena.grad(w), g.dw, 1e-5 * max_abs(g.dw), 1e-5));
}

// Hand-checkable: a 3×3 'same' box filter on a 1-channel 3×3 image of ones counts neighbours.
TEST(Conv2dCpu, HandComputedBoxFilter) {
  LayerHarness h(make_conv2d(Backend::kCpu, {1, 1, 3, Padding::kSame}), Shape{1, 1, 3, 3});
  std::fill_n(h.arena.param(h.id("weight")), 9, 1.0f);
  h.arena.param(h.id("bias"))[0] = 0.5f;
  std::vector<float> x(9, 1.0f), y;
  h.forward(x, Shape{1, 1, 3, 3}, y, true);
  const std::vector<float> expect{4.5f, 6.5f, 4.5f, 6.5f, 9.5f, 6.5f, 4.5f, 6.5f, 4.5f};
  EXPECT_EQ(y, expect);
}

}  // namespace
}  // namespace mnist_dist::test

namespace mnist_dist::test {
namespace {
// More OpenMP threads at forward/backward time than when the scratch was reserved (e.g. a
// model built before set_threads(), or used from a thread whose OpenMP default is larger).
// Runs in a child process: the failure mode is a heap overflow of the per-thread scratch, which
// corrupts libgomp's state and hangs, so the child has an alarm.
[[noreturn]] void run_conv_with_more_threads_than_reserved() {
  alarm(3);
  omp_set_num_threads(1);
  const Conv2dConfig cfg{2, 3, 5, Padding::kSame};
  const Shape xs{8, 2, 7, 9}, ys{8, 3, 7, 9};
  LayerHarness h(make_conv2d(Backend::kCpu, cfg), xs);
  omp_set_num_threads(8);
  std::vector<float> x = random_vector(xs.size(), 5), y, dx, dy = random_vector(ys.size(), 6);
  h.forward(x, xs, y, true);
  h.backward(x, xs, y, dy, dx);
  const int w = h.id("weight");
  const auto wd = to_double(h.arena.param(w), h.arena.info(w).count);
  const auto g = ref::conv2d_backward(to_double(x), xs, wd, to_double(dy), 3, 5, 2);
  const bool ok = all_close("dx", dx, g.dx, 1e-4, 1e-4) &&
                  all_close("dW", h.arena.grad(w), g.dw, 1e-4 * max_abs(g.dw), 1e-4);
  std::_Exit(ok ? 0 : 3);
}

TEST(Conv2dCpuDeathTest, MoreThreadsThanAtReserve) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(run_conv_with_more_threads_than_reserved(), ::testing::ExitedWithCode(0), "");
}
}  // namespace
}  // namespace mnist_dist::test
