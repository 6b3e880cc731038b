// The GPU half of deterministic training (layers/exact_grad_cuda.h) against the CPU kernels, bit
// for bit: the dense weight gradient's int64 sums (chunks, a short last chunk, written and added),
// the scaled transpose, the fold of a float chunk and the rounding back to float. The same
// integers on both: a chunk's contribution does not depend on the device that computed it. Then
// the CUDA layers in deterministic mode: dense gives the CPU's integers, convolution and
// BatchNorm the CPU's values within fp32 tolerance, and a batch split into two calls (two ranks'
// slices, or two micro-steps) gives the whole batch's outputs and integers bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "gpu_test_util.h"
#include "layers/exact_grad.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/exact_grad_cuda.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

TEST(GpuExact, DenseWeightGradientIsTheCpusIntegers) {
  MD_REQUIRE_GPU();
  CudaContext& cuda = *gpu_context(nullptr);
  struct Case { int n, out, in; };
  for (const Case c : {Case{128, 20, 588}, Case{37, 13, 45}, Case{120, 10, 840}}) {
    const std::vector<float> dy = random_vector(static_cast<size_t>(c.n) * c.out, 3, -0.01, 0.01);
    const std::vector<float> x = random_vector(static_cast<size_t>(c.n) * c.in, 4, -2.0, 2.0);
    std::vector<float> dyt(dy.size());  // the CPU's scaled transpose
    for (int o = 0; o < c.out; ++o)
      for (int s = 0; s < c.n; ++s) dyt[static_cast<size_t>(o) * c.n + s] = dy[static_cast<size_t>(s) * c.out + o];
    exact::scale_to_fixed(dyt.data(), dyt.size());
    const size_t w = static_cast<size_t>(c.out) * c.in;
    std::vector<int64_t> dw(w, 0), db(c.out, 0);
    exact::dense_weight_grad(false, dyt.data(), x.data(), c.n, c.out, c.in, 16, 0, c.out, false, dw.data(), db.data());
    exact::dense_weight_grad(false, dyt.data(), x.data(), c.n, c.out, c.in, 16, 0, c.out, true, dw.data(), db.data());

    Buffer<float> d_dy = to_device(dy), d_x = to_device(x), d_dyt(Backend::kCuda, dy.size());
    Buffer<int64_t> d_dw(Backend::kCuda, w), d_db(Backend::kCuda, static_cast<size_t>(c.out));
    exact::scale_transpose_cuda(d_dy.data(), c.n, c.out, d_dyt.data(), cuda);
    EXPECT_EQ(to_host(d_dyt, dy.size()), dyt) << "scaled transpose";
    exact::dense_weight_grad_cuda(d_dyt.data(), d_x.data(), c.n, c.out, c.in, 16, false, d_dw.data(), d_db.data(), cuda);
    exact::dense_weight_grad_cuda(d_dyt.data(), d_x.data(), c.n, c.out, c.in, 16, true, d_dw.data(), d_db.data(), cuda);
    EXPECT_EQ(to_host(d_dw, w), dw) << "n " << c.n << ", in " << c.in;
    EXPECT_EQ(to_host(d_db, static_cast<size_t>(c.out)), db);
  }
}

TEST(GpuExact, FoldAndUnfoldAreTheCpus) {
  MD_REQUIRE_GPU();
  CudaContext& cuda = *gpu_context(nullptr);
  std::vector<float> v = random_vector(10007, 8, -3.0, 3.0);
  for (size_t i = 0; i < v.size(); i += 7) v[i] = std::ldexp(v[i], -30);  // small values round too
  std::vector<int64_t> acc(v.size(), 0);
  exact::fold(v.data(), v.size(), acc.data());
  exact::fold(v.data(), v.size(), acc.data());
  Buffer<float> d_v = to_device(v);
  Buffer<int64_t> d_acc(Backend::kCuda, v.size());
  exact::fold_cuda(d_v.data(), v.size(), false, d_acc.data(), cuda);
  exact::fold_cuda(d_v.data(), v.size(), true, d_acc.data(), cuda);
  EXPECT_EQ(to_host(d_acc, v.size()), acc);
  std::vector<float> back(v.size());
  exact::unfold(false, acc.data(), acc.size(), back.data());
  Buffer<float> d_back(Backend::kCuda, v.size());
  exact::unfold_cuda(d_acc.data(), v.size(), d_back.data(), cuda);
  EXPECT_EQ(to_host(d_back, v.size()), back);
}

// Deterministic mode for both layers of a pair: chunks of 16, the fixed-point buffers, the range flag.
struct ExactBuffers {
  ExactBuffers(LayerPair& p, int n) : cpu(p.cpu_arena.param_count(), 0), gpu(Backend::kCuda, cpu.size()), flag(Backend::kCuda, 1) {
    for (Context* c : {&p.cpu_ctx, &p.gpu_ctx}) {
      c->chunk = 16;
      c->first_chunk = 0;
      c->total_chunks = (n + 15) / 16;
      c->exact_add = false;
    }
    p.cpu_ctx.exact_grads = cpu.data();
    p.gpu_ctx.exact_grads = gpu.data();
    p.gpu_ctx.exact_diverged = flag.data();
  }
  std::vector<float> unfolded(const std::vector<int64_t>& q) const {
    std::vector<float> f(q.size());
    exact::unfold(false, q.data(), q.size(), f.data());
    return f;
  }
  std::vector<int64_t> cpu;
  Buffer<int64_t> gpu;
  Buffer<unsigned> flag;
};

TEST(GpuExact, LayersSumTheirChunksAsTheCpuDoes) {
  MD_REQUIRE_GPU();
  const int n = 40;  // chunks 16, 16 and a short 8
  struct Case {
    const char* name;
    LayerPtr cpu, gpu;
    Shape in;
    bool same_integers;  // dense: the same kernel math; cuDNN and BatchNorm: fp32 tolerance
  };
  Case cases[] = {
      {"dense", make_dense(Backend::kCpu, {588, 20}), make_dense(Backend::kCuda, {588, 20}), {n, 588, 1, 1}, true},
      {"conv", make_conv2d(Backend::kCpu, {3, 6, 5, Padding::kSame}), make_conv2d(Backend::kCuda, {3, 6, 5, Padding::kSame}),
       {n, 3, 12, 12}, false},
      {"batchnorm", make_batchnorm(Backend::kCpu, {6}), make_batchnorm(Backend::kCuda, {6}), {n, 6, 7, 7}, false},
  };
  for (Case& c : cases) {
    LayerPair p(std::move(c.cpu), std::move(c.gpu), c.in);
    ExactBuffers q(p, n);
    const std::vector<float> y = p.forward(random_vector(c.in.size(), 90, -1.0, 1.0), c.in, true);
    EXPECT_TRUE(close_to_cpu(std::string(c.name) + " forward", y, p.cpu_y.data(), y.size()));
    const std::vector<float> dx = p.backward(random_vector(p.ys.size(), 91, -0.01, 0.01));
    EXPECT_TRUE(close_to_cpu(std::string(c.name) + " dx", dx, p.cpu_dx.data(), dx.size()));
    const std::vector<int64_t> got = to_host(q.gpu, q.cpu.size());
    if (c.same_integers) {
      EXPECT_EQ(got, q.cpu) << c.name;
    } else {
      EXPECT_TRUE(close_to_cpu(std::string(c.name) + " fixed-point gradient", q.unfolded(got), q.unfolded(q.cpu).data(),
                               got.size()));
    }
    EXPECT_EQ(to_host(q.flag, 1)[0], 0u) << c.name << ": range flag set";
  }
}

// What makes ranks agree: the 40 samples as one call, and as two slices (32 = chunks 0-1, then
// 8 = chunk 2, added), give the same outputs and the same integers.
TEST(GpuExact, ASplitBatchGivesTheWholeBatchsBits) {
  MD_REQUIRE_GPU();
  const int n = 40;
  struct Case {
    const char* name;
    LayerPtr cpu, gpu;
    Shape in;
  };
  Case cases[] = {
      {"dense", make_dense(Backend::kCpu, {300, 24}), make_dense(Backend::kCuda, {300, 24}), {n, 300, 1, 1}},
      {"conv", make_conv2d(Backend::kCpu, {6, 16, 5, Padding::kValid}),
       make_conv2d(Backend::kCuda, {6, 16, 5, Padding::kValid}), {n, 6, 14, 14}},
  };
  for (Case& c : cases) {
    LayerPair p(std::move(c.cpu), std::move(c.gpu), c.in);
    ExactBuffers q(p, n);
    const std::vector<float> y = p.forward(random_vector(c.in.size(), 92, -1.0, 1.0), c.in, true);
    const std::vector<float> dx = p.backward(random_vector(p.ys.size(), 93, -0.01, 0.01));
    const std::vector<int64_t> whole = to_host(q.gpu, q.cpu.size());
    Context& ctx = p.gpu_ctx;
    Buffer<float> y2(Backend::kCuda, p.ys.size()), dx2(Backend::kCuda, p.xs.size());
    const size_t xi = p.xs.size() / n, yi = p.ys.size() / n;
    for (const auto [first, count] : {std::pair{0, 32}, std::pair{32, 8}}) {
      ctx.first_chunk = first / 16;
      ctx.exact_add = first > 0;
      const Shape xs = p.xs.with_batch(count), ys = p.ys.with_batch(count);
      Tensor tx{p.gpu_x.data() + first * xi, xs}, ty{y2.data() + first * yi, ys};
      Tensor tdy{p.gpu_dy.data() + first * yi, ys}, tdx{dx2.data() + first * xi, xs};
      p.gpu->forward(ctx, p.gpu_arena, tx, ty, true);
      p.gpu->backward(ctx, p.gpu_arena, tx, ty, tdy, tdx);
    }
    EXPECT_EQ(to_host(y2, y.size()), y) << c.name << " forward";
    EXPECT_EQ(to_host(dx2, dx.size()), dx) << c.name << " dx";
    EXPECT_EQ(to_host(q.gpu, whole.size()), whole) << c.name << " fixed-point gradient";
  }
}

TEST(GpuExact, AChunkBeyondTheRangeSetsTheFlag) {
  MD_REQUIRE_GPU();
  LayerPair p(make_dense(Backend::kCpu, {8, 4}), make_dense(Backend::kCuda, {8, 4}), {16, 8, 1, 1});
  ExactBuffers q(p, 16);
  const Shape xs{16, 8, 1, 1};
  p.gpu_x.upload(random_vector(xs.size(), 94, -1.0, 1.0).data(), xs.size());
  std::vector<float> dy = random_vector(16 * 4, 95, -0.01, 0.01);
  Tensor tx{p.gpu_x.data(), xs}, ty{p.gpu_y.data(), {16, 4, 1, 1}}, tdx{nullptr, xs};
  p.gpu->forward(p.gpu_ctx, p.gpu_arena, tx, ty, true);
  p.gpu_dy.upload(dy.data(), dy.size());
  Tensor tdy{p.gpu_dy.data(), {16, 4, 1, 1}};
  p.gpu->backward(p.gpu_ctx, p.gpu_arena, tx, ty, tdy, tdx);
  EXPECT_EQ(to_host(q.flag, 1)[0], 0u) << "in range";
  dy[5] = 1e12f;  // times |x| up to 1: far beyond 2^22 (one chunk per step)
  p.gpu_dy.upload(dy.data(), dy.size());
  p.gpu->backward(p.gpu_ctx, p.gpu_arena, tx, ty, tdy, tdx);
  EXPECT_EQ(to_host(q.flag, 1)[0], 1u) << "a chunk value of ~1e12 is beyond 2^22";
}

}  // namespace
}  // namespace mnist_dist::test
