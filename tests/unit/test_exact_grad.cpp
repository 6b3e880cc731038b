// Deterministic training's exact gradient sums (layers/exact_grad.h) and the layers' chunked
// paths: fixed-point rounding by hand, sums that no order or grouping can change (unlike
// float sums of the same values), the AVX-512 and portable kernels bit for bit, a batch's chunks
// split over calls (ranks) or threads giving the same int64 sums, the sums against a double
// reference, and the range check. The chunked sampler split is here too.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "core/error.h"
#include "data_pipeline/sampler.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/exact_grad.h"
#include "layers/exact_grad_avx512.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

using exact::from_fixed;
using exact::to_fixed;

TEST(ExactGrad, FixedPointRoundsOnceToNearestEven) {
  EXPECT_EQ(to_fixed(1.0f), int64_t{1} << 40);
  EXPECT_EQ(to_fixed(-0.75f), -(int64_t{3} << 38));
  EXPECT_EQ(to_fixed(std::ldexp(1.0f, -41)), 0);        // 0.5 counts: to the even 0
  EXPECT_EQ(to_fixed(std::ldexp(3.0f, -41)), 2);        // 1.5 counts: to the even 2
  EXPECT_EQ(to_fixed(std::ldexp(-3.0f, -41)), -2);
  EXPECT_EQ(to_fixed(std::ldexp(5.0f, -42)), 1);        // 1.25 counts
  EXPECT_EQ(to_fixed(1e-13f), 0);                       // below the resolution
  EXPECT_EQ(from_fixed(int64_t{1} << 40), 1.0f);
  EXPECT_EQ(from_fixed(3), std::ldexp(3.0f, -40));
  EXPECT_EQ(from_fixed(-(int64_t{5} << 37)), -0.625f);
  // One rounding from int64 to float, to nearest even: 2^24 + 1 counts of 2^-40 is a tie.
  EXPECT_EQ(from_fixed((int64_t{1} << 24) + 1), std::ldexp(1.0f, -16));
}

// Values over many magnitudes, as gradients of a whole model are.
std::vector<float> mixed_values(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> e(-30.0, 6.0), s(-1.0, 1.0);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(s(g) * std::exp2(e(g)));
  return v;
}

TEST(ExactGrad, SumsDoNotDependOnOrderOrGrouping) {
  const std::vector<float> v = mixed_values(4000, 5);
  __int128 reference = 0;  // Σ round(v·2^40), independently of fold()
  for (float x : v) reference += static_cast<__int128>(std::nearbyint(std::ldexp(static_cast<double>(x), 40)));
  auto folded = [&](const std::vector<size_t>& order, int groups) {
    std::vector<int64_t> acc(static_cast<size_t>(groups), 0);
    for (size_t k = 0; k < order.size(); ++k) exact::fold(&v[order[k]], 1, &acc[k % static_cast<size_t>(groups)]);
    int64_t total = 0;
    for (int64_t a : acc) total += a;
    return total;
  };
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const int64_t forward = folded(order, 1);
  EXPECT_EQ(static_cast<__int128>(forward), reference);
  float f_forward = 0.0f, f_backward = 0.0f;
  for (size_t i : order) f_forward += v[i];
  std::reverse(order.begin(), order.end());
  for (size_t i : order) f_backward += v[i];
  EXPECT_NE(f_forward, f_backward) << "the float sums should show that order matters";
  EXPECT_EQ(folded(order, 1), forward);
  EXPECT_EQ(folded(order, 7), forward);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(9));
  EXPECT_EQ(folded(order, 3), forward);
}

struct DenseCase {
  int n, out, in, chunk;
};

void random_dense(const DenseCase& c, uint64_t seed, std::vector<float>& dyt, std::vector<float>& x) {
  dyt = random_vector(static_cast<size_t>(c.out) * c.n, seed, -0.01, 0.01);
  x = random_vector(static_cast<size_t>(c.n) * c.in, seed + 1, -2.0, 2.0);
  exact::scale_to_fixed(dyt.data(), dyt.size());
}

TEST(ExactGrad, DenseKernelPathsAgreeBitForBit) {
  if (!exact::avx512_path_available()) GTEST_SKIP() << "this CPU lacks AVX-512F/DQ: one path only";
  for (const DenseCase c : {DenseCase{37, 13, 45, 16}, DenseCase{128, 20, 588, 16}, DenseCase{8, 3, 31, 16},
                            DenseCase{64, 10, 840, 16}}) {
    std::vector<float> dyt, x;
    random_dense(c, static_cast<uint64_t>(c.n * 31 + c.in), dyt, x);
    const size_t w = static_cast<size_t>(c.out) * c.in;
    std::vector<int64_t> dw_v(w, 0), db_v(c.out, 0), dw_p(w, 0), db_p(c.out, 0);
    exact::dense_weight_grad(true, dyt.data(), x.data(), c.n, c.out, c.in, c.chunk, 0, c.out, false, dw_v.data(), db_v.data());
    exact::dense_weight_grad(false, dyt.data(), x.data(), c.n, c.out, c.in, c.chunk, 0, c.out, false, dw_p.data(), db_p.data());
    EXPECT_EQ(dw_v, dw_p) << "n " << c.n << ", in " << c.in;
    EXPECT_EQ(db_v, db_p);
  }
}

TEST(ExactGrad, DenseSumsAreTheSameForAnySplitOfTheChunks) {
  const DenseCase c{128, 22, 70, 16};
  std::vector<float> dyt, x;
  random_dense(c, 11, dyt, x);
  const size_t w = static_cast<size_t>(c.out) * c.in;
  for (const bool avx : {false, true}) {
    std::vector<int64_t> dw(w, -1), db(c.out, -1);  // overwritten (add = false)
    exact::dense_weight_grad(avx, dyt.data(), x.data(), c.n, c.out, c.in, c.chunk, 0, c.out, false, dw.data(), db.data());
    // The same chunks as two "ranks" (48 + 80 samples) and the rows over three "threads".
    std::vector<int64_t> dw2(w, 0), db2(c.out, 0);
    std::vector<float> dyt_a(static_cast<size_t>(c.out) * 48), dyt_b(static_cast<size_t>(c.out) * 80);
    for (int o = 0; o < c.out; ++o)
      for (int s = 0; s < c.n; ++s)
        (s < 48 ? dyt_a[static_cast<size_t>(o) * 48 + s] : dyt_b[static_cast<size_t>(o) * 80 + s - 48]) =
            dyt[static_cast<size_t>(o) * c.n + s];
    for (const auto& [r0, r1] : {std::pair{0, 5}, std::pair{5, 13}, std::pair{13, 22}}) {
      exact::dense_weight_grad(avx, dyt_a.data(), x.data(), 48, c.out, c.in, c.chunk, r0, r1, false, dw2.data(), db2.data());
      exact::dense_weight_grad(avx, dyt_b.data(), x.data() + 48 * c.in, 80, c.out, c.in, c.chunk, r0, r1, true,
                               dw2.data(), db2.data());
    }
    EXPECT_EQ(dw, dw2) << (avx ? "AVX-512" : "portable");
    EXPECT_EQ(db, db2);
    // Against double sums: each chunk's float sum is within a few roundings of the exact one.
    double worst = 0.0, scale = 0.0;
    for (int o = 0; o < c.out; ++o)
      for (int i = 0; i < c.in; ++i) {
        double ref = 0.0;
        for (int s = 0; s < c.n; ++s)
          ref += std::ldexp(static_cast<double>(dyt[static_cast<size_t>(o) * c.n + s]), -40) *
                 x[static_cast<size_t>(s) * c.in + i];
        const double got = static_cast<double>(from_fixed(dw[static_cast<size_t>(o) * c.in + i]));
        worst = std::max(worst, std::fabs(got - ref));
        scale = std::max(scale, std::fabs(ref));
      }
    EXPECT_LT(worst, 1e-6 * scale) << "worst |exact − double| " << worst << " of " << scale;
  }
}

// The one-node gather's kernel: dW and db over the whole step rounded to float at once equal
// the rounding of the fixed-point sums, on either path, for any rows (a rank's part) and for
// ragged edges (in not a multiple of the 32-column strip, a short last chunk).
TEST(ExactGrad, RoundedDenseSumsEqualTheRoundedFixedPointSums) {
  for (const DenseCase c : {DenseCase{128, 22, 70, 16}, DenseCase{120, 9, 45, 16}}) {
    std::vector<float> dyt, x;
    random_dense(c, 12, dyt, x);
    const size_t w = static_cast<size_t>(c.out) * c.in;
    std::vector<int64_t> dw(w, 0), db(c.out, 0);
    exact::dense_weight_grad(false, dyt.data(), x.data(), c.n, c.out, c.in, c.chunk, 0, c.out, false, dw.data(), db.data());
    std::vector<float> want(w), want_b(c.out);
    exact::unfold(false, dw.data(), w, want.data());
    exact::unfold(false, db.data(), db.size(), want_b.data());
    for (const bool avx : {false, true}) {
      std::vector<float> got(w, -1.0f), got_b(c.out, -1.0f);
      const int mid = c.out / 3;  // two "ranks": rows [0, mid) with the bias, then the rest
      exact::dense_weight_grad_rounded(avx, dyt.data(), x.data(), c.n, c.in, c.chunk, 0, mid, got.data(), 0, c.out,
                                       got_b.data());
      exact::dense_weight_grad_rounded(avx, dyt.data(), x.data(), c.n, c.in, c.chunk, mid, c.out, got.data(), 0, 0,
                                       nullptr);
      EXPECT_EQ(got, want) << (avx ? "AVX-512" : "portable") << ", n " << c.n;
      EXPECT_EQ(got_b, want_b);
    }
  }
}

TEST(ExactGrad, RangeCheckStopsADivergedStep) {
  const float limit = exact::chunk_limit(8);
  EXPECT_EQ(limit, 524288.0f);
  EXPECT_NO_THROW(exact::check_range(limit, 8, "t"));
  EXPECT_THROW(exact::check_range(limit * 2.0f, 8, "t"), TrainingDiverged);
  EXPECT_THROW(exact::check_range(std::numeric_limits<float>::quiet_NaN(), 8, "t"), TrainingDiverged);
  EXPECT_THROW(exact::check_range(std::numeric_limits<float>::infinity(), 8, "t"), TrainingDiverged);
  std::vector<float> dy(6 * 4, 0.5f), x(6 * 3, -2.0f);
  for (const bool avx : {false, true}) {
    EXPECT_EQ(exact::dense_bound(avx, 1, dy.data(), x.data(), 6, 4, 3, 16), 6.0f);  // 6 samples · 0.5 · 2
    x[7] = std::numeric_limits<float>::infinity();
    EXPECT_TRUE(std::isnan(exact::dense_bound(avx, 2, dy.data(), x.data(), 6, 4, 3, 16)));
    x[7] = -2.0f;
  }
}

// A layer's backward with exact gradients on `threads` threads over samples [s0, s1) of x/dy
// (whole chunks), adding to `q` when `add`.
void exact_backward(LayerHarness& h, int threads, std::vector<int64_t>& q, bool add, std::vector<float>& x,
                    std::vector<float>& dy, int s0, int s1, std::vector<float>* dx_out = nullptr) {
  const Shape xs = h.in.with_batch(s1 - s0), ys = h.out.with_batch(s1 - s0);
  std::vector<float> xp(x.begin() + static_cast<long>(s0 * xs.per_sample()), x.begin() + static_cast<long>(s1 * xs.per_sample()));
  std::vector<float> dyp(dy.begin() + static_cast<long>(s0 * ys.per_sample()),
                         dy.begin() + static_cast<long>(s1 * ys.per_sample()));
  std::vector<float> y, dx;
  h.ctx.threads = threads;
  h.ctx.exact_grads = q.data();
  h.ctx.exact_add = add;
  h.ctx.chunk = 16;
  h.ctx.total_chunks = 8;
  h.forward(xp, xs, y, true);
  h.backward(xp, xs, y, dyp, dx);
  if (dx_out != nullptr) dx_out->insert(dx_out->end(), dx.begin(), dx.end());
}

void expect_split_invariant(LayerHarness& h, int n) {
  std::vector<float> x = random_vector(h.in.with_batch(n).size(), 21);
  std::vector<float> dy = random_vector(h.out.with_batch(n).size(), 22, -0.01, 0.01);
  const size_t count = h.arena.param_count();
  std::vector<int64_t> one(count, 0), two(count, 0), threads(count, 0);
  std::vector<float> dx_one, dx_two;
  exact_backward(h, 1, one, false, x, dy, 0, n);
  exact_backward(h, 1, one, false, x, dy, 0, n, &dx_one);  // overwrites: the same again
  exact_backward(h, 2, threads, false, x, dy, 0, n);
  exact_backward(h, 1, two, false, x, dy, 0, 32, &dx_two);  // as rank 0 (two chunks) ...
  exact_backward(h, 2, two, true, x, dy, 32, n, &dx_two);   // ... and the rest, added
  EXPECT_EQ(one, threads) << "1 thread vs 2";
  EXPECT_EQ(one, two) << "one call vs the chunks split over two";
  EXPECT_EQ(0, std::memcmp(dx_one.data(), dx_two.data(), dx_one.size() * sizeof(float))) << "dx per sample";
  // The sums are the layer's ordinary gradient, rounded (against the float path).
  h.ctx.exact_grads = nullptr;
  h.ctx.chunk = 0;
  std::vector<float> y, dx;
  const Shape xs = h.in.with_batch(n);
  h.forward(x, xs, y, true);
  h.backward(x, xs, y, dy, dx);
  std::vector<double> from_exact(count);
  for (size_t i = 0; i < count; ++i) from_exact[i] = from_fixed(one[i]);
  EXPECT_TRUE(all_close("exact vs float gradients", h.arena.grads(), from_exact, 1e-6 * max_abs(from_exact), 1e-4));
}

TEST(DenseExact, ChunksSplitOverRanksOrThreadsGiveTheSameSums) {
  LayerHarness h(make_dense(Backend::kCpu, {70, 44}), Shape{80, 70, 1, 1});
  expect_split_invariant(h, 80);
}

TEST(Conv2dExact, ChunksSplitOverRanksOrThreadsGiveTheSameSums) {
  LayerHarness h(make_conv2d(Backend::kCpu, {2, 5, 5, Padding::kSame}), Shape{48, 2, 12, 12});
  expect_split_invariant(h, 48);
}

TEST(DenseExact, ForwardRowsDoNotDependOnTheBatchOrThreads) {
  // The logits layer (narrow: OpenBLAS's x·Wᵀ, called in fixed shapes) and a wide one (oneDNN).
  for (const auto& [in, out] : {std::pair{84, 10}, std::pair{588, 1200}}) {
    LayerHarness h(make_dense(Backend::kCpu, {in, out}), Shape{128, in, 1, 1});
    h.ctx.chunk = 16;
    std::vector<float> x = random_vector(static_cast<size_t>(128) * in, 31), y_all, y_part;
    h.ctx.threads = 1;
    h.forward(x, Shape{128, in, 1, 1}, y_all, true);
    h.ctx.threads = 2;
    for (int s0 = 0; s0 < 128; s0 += 48) {  // 48 = three chunks, then 32
      const int m = std::min(48, 128 - s0);
      std::vector<float> xp(x.begin() + static_cast<long>(s0) * in, x.begin() + static_cast<long>(s0 + m) * in), y;
      h.forward(xp, Shape{m, in, 1, 1}, y, true);
      y_part.insert(y_part.end(), y.begin(), y.end());
    }
    EXPECT_EQ(0, std::memcmp(y_all.data(), y_part.data(), y_all.size() * sizeof(float))) << in << " -> " << out;
  }
}

TEST(EpochSampler, ChunkedBoundsHoldWholeChunks) {
  data::EpochSampler s(1000, 128, 1);
  s.set_chunk(16);
  using B = std::pair<size_t, size_t>;
  EXPECT_EQ(s.bounds(128, 0, 3), (B{0, 32}));  // 8 chunks over 3 ranks: 2, 3, 3
  EXPECT_EQ(s.bounds(128, 1, 3), (B{32, 80}));
  EXPECT_EQ(s.bounds(128, 2, 3), (B{80, 128}));
  EXPECT_EQ(s.bounds(120, 2, 3), (B{80, 120}));  // the last chunk is short
  EXPECT_EQ(s.bounds(40, 0, 4), (B{0, 0}));      // 3 chunks over 4 ranks: one rank idles
  EXPECT_EQ(s.bounds(40, 1, 4), (B{0, 16}));
  EXPECT_EQ(s.bounds(40, 3, 4), (B{32, 40}));
  s.set_chunk(0);
  EXPECT_EQ(s.bounds(128, 1, 3), (B{42, 85}));  // the plain split
}

}  // namespace
}  // namespace mnist_dist::test
