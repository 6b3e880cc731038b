// Dense (CPU): y = x·Wᵀ + b with W (out, in); forward/backward against the double reference
// and finite differences, input from a 4-D activation (flattened per sample), partial batches.
#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gradcheck.h"
#include "layers/cpu_simd.h"
#include "layers/dense.h"
#include "reference.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

struct DenseFixture {
  DenseFixture(int in, int out, Shape xs, int reserve_n = 0)
      : in(in), out(out),
        h(make_dense(Backend::kCpu, {in, out}), reserve_n > 0 ? xs.with_batch(reserve_n) : xs) {
    Rng rng(3);
    fill_uniform(h.arena.param(h.id("bias")), out, rng, -0.5, 0.5);
  }
  std::vector<double> get(const char* s) {
    const int id = h.id(s);
    return to_double(h.arena.param(id), h.arena.info(id).count);
  }
  const float* grad(const char* s) { return h.arena.grad(h.id(s)); }
  int in, out;
  LayerHarness h;
};

void check_against_reference(DenseFixture& f, Shape xs, uint64_t seed) {
  std::vector<float> x = random_vector(xs.size(), seed), y, dx;
  f.h.forward(x, xs, y, true);
  const Shape ys{xs.n, f.out, 1, 1};
  EXPECT_EQ(f.h.layer->output_shape(xs), ys);
  const auto w = f.get("weight"), b = f.get("bias");
  const auto ry = ref::dense_forward(to_double(x), xs.n, w, b, f.in, f.out);
  EXPECT_TRUE(all_close("dense y", y, ry, 1e-5 * max_abs(ry), 1e-5, &ys));

  std::vector<float> dy = random_vector(ys.size(), seed + 1);
  std::fill_n(f.h.arena.grads(), f.h.arena.param_count(), -3.0f);  // must be overwritten
  f.h.backward(x, xs, y, dy, dx);
  const auto g = ref::dense_backward(to_double(x), xs.n, w, to_double(dy), f.in, f.out);
  EXPECT_TRUE(all_close("dense dx", dx, g.dx, 1e-5 * max_abs(g.dx), 1e-5, &xs));
  EXPECT_TRUE(all_close("dense dW", f.grad("weight"), g.dw, 1e-5 * max_abs(g.dw), 1e-5));
  EXPECT_TRUE(all_close("dense db", f.grad("bias"), g.db, 1e-5 * max_abs(g.db), 1e-5));
  // Without dx, the parameter gradients are still written (the model's first layer).
  std::fill_n(f.h.arena.grads(), f.h.arena.param_count(), -3.0f);
  f.h.backward(x, xs, y, dy, dx, /*want_dx=*/false);
  EXPECT_TRUE(all_close("dense dW (no dx)", f.grad("weight"), g.dw, 1e-5 * max_abs(g.dw), 1e-5));
  EXPECT_TRUE(all_close("dense db (no dx)", f.grad("bias"), g.db, 1e-5 * max_abs(g.db), 1e-5));
}

TEST(DenseCpu, ShapesAndInit) {
  DenseFixture f(7, 4, Shape{5, 7, 1, 1});
  EXPECT_EQ(f.h.arena.info(f.h.id("weight")).shape, (std::vector<int>{4, 7}));
  EXPECT_EQ(f.h.arena.info(f.h.id("bias")).shape, (std::vector<int>{4}));
  EXPECT_EQ(f.h.arena.trainable_scalars(), 4u * 7 + 4);
}

TEST(DenseCpu, ForwardBackwardMatchReference) {
  DenseFixture f(7, 4, Shape{5, 7, 1, 1});
  check_against_reference(f, Shape{5, 7, 1, 1}, 10);
}

TEST(DenseCpu, TakesAFourDimensionalInput) {
  DenseFixture f(2 * 3 * 3, 5, Shape{3, 2, 3, 3});
  check_against_reference(f, Shape{3, 2, 3, 3}, 20);
}

TEST(DenseCpu, BatchSmallerThanReserved) {
  DenseFixture f(6, 3, Shape{2, 6, 1, 1}, /*reserve_n=*/9);
  check_against_reference(f, Shape{2, 6, 1, 1}, 30);
}

// Wide layers take yᵀ = W·xᵀ with the transposes around it (when oneDNN is the GEMM library),
// in chunks of 256 samples, the rows split over the threads: batches that are not multiples
// of 16 (the transpose tiles) or span several chunks, outputs not a multiple of 4 or 16.
TEST(DenseCpu, WideLayersMatchReference) {
  for (const auto& [in, out, n] : {std::tuple{588, 260, 37}, std::tuple{300, 1000, 300},
                                   std::tuple{257, 1030, 1}, std::tuple{130, 1201, 16}}) {
    SCOPED_TRACE(std::to_string(in) + " -> " + std::to_string(out) + ", batch " + std::to_string(n));
    const Shape xs{n, in, 1, 1};
    DenseFixture f(in, out, xs);
    check_against_reference(f, xs, 50 + n);
  }
}

// The transposes (AVX-512 tiles where the CPU has them, plain loops otherwise) against the
// definition, bit for bit: every element is a copy, or one addition of the bias.
TEST(CpuSimd, TransposeWithAndWithoutBias) {
  for (const auto& [rows, cols] : {std::pair{1, 1}, std::pair{16, 16}, std::pair{17, 33},
                                   std::pair{128, 588}, std::pair{5, 40}, std::pair{40, 5}}) {
    SCOPED_TRACE(std::to_string(rows) + " x " + std::to_string(cols));
    const int ld_src = cols + 3, ld_dst = rows + 5;
    const std::vector<float> src = random_vector(static_cast<size_t>(rows) * ld_src, 60 + rows);
    const std::vector<float> bias = random_vector(static_cast<size_t>(rows), 61 + cols);
    for (const bool with_bias : {false, true}) {
      std::vector<float> dst(static_cast<size_t>(cols) * ld_dst, -7.0f);
      cpu_simd::transpose(src.data(), rows, cols, ld_src, dst.data(), ld_dst,
                          with_bias ? bias.data() : nullptr);
      for (int j = 0; j < cols; ++j)
        for (int i = 0; i < ld_dst; ++i) {
          const float got = dst[static_cast<size_t>(j) * ld_dst + i];
          if (i >= rows) {
            ASSERT_EQ(got, -7.0f) << "wrote past the rows at (" << j << ", " << i << ")";
            continue;
          }
          const float s = src[static_cast<size_t>(i) * ld_src + j];
          ASSERT_EQ(got, with_bias ? s + bias[i] : s) << "at (" << j << ", " << i << ")";
        }
    }
  }
}

TEST(DenseCpu, GradientsMatchFiniteDifferences) {
  const Shape xs{4, 9, 1, 1};
  DenseFixture f(9, 5, xs);
  std::vector<float> x = random_vector(xs.size(), 40), dy = random_vector(4 * 5, 41);
  Tensor tx{x.data(), xs}, tdy{dy.data(), Shape{4, 5, 1, 1}};
  GradCheckOptions o;
  o.skip_kinks = false;
  const GradCheckReport r = check_layer_gradients(*f.h.layer, f.h.arena, f.h.ctx, tx, tdy, o);
  EXPECT_TRUE(r.result());
  EXPECT_EQ(r.checked, 4u * 9 + 5u * 9 + 5u);
}

// Hand-checkable: W = [[1, 2], [−1, 0.5]], b = [0.5, −1], x = [3, −2].
TEST(DenseCpu, HandComputed) {
  const Shape xs{1, 2, 1, 1};
  DenseFixture f(2, 2, xs);
  float* w = f.h.arena.param(f.h.id("weight"));
  float* b = f.h.arena.param(f.h.id("bias"));
  w[0] = 1; w[1] = 2; w[2] = -1; w[3] = 0.5f;
  b[0] = 0.5f; b[1] = -1;
  std::vector<float> x{3, -2}, y, dx, dy{1, 2};
  f.h.forward(x, xs, y, true);
  EXPECT_EQ(y, (std::vector<float>{3 - 4 + 0.5f, -3 - 1 - 1}));  // −0.5, −5
  f.h.backward(x, xs, y, dy, dx);
  EXPECT_EQ(dx, (std::vector<float>{1 * 1 + 2 * -1, 1 * 2 + 2 * 0.5f}));  // −1, 3
  EXPECT_EQ(std::vector<float>(f.grad("weight"), f.grad("weight") + 4),
            (std::vector<float>{3, -2, 6, -4}));
  EXPECT_EQ(std::vector<float>(f.grad("bias"), f.grad("bias") + 2), (std::vector<float>{1, 2}));
}

}  // namespace
}  // namespace mnist_dist::test
