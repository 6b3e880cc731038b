// The GPU half of deterministic training (layers/exact_grad_cuda.h) against the CPU kernels, bit
// for bit: the dense weight gradient's int64 sums (chunks, a short last chunk, written and added),
// the scaled transpose, the fold of a float chunk and the rounding back to float. The same
// integers on both: a chunk's contribution does not depend on the device that computed it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "gpu_test_util.h"
#include "layers/exact_grad.h"
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

}  // namespace
}  // namespace mnist_dist::test
