// Dense on CPU (forward and backward of DenseBase): SGEMMs (oneDNN or OpenBLAS,
// layers/cpu_gemm.h) split by hand over the ctx.threads OpenMP threads along an output
// dimension, each call single-threaded inside the parallel region: the forward pass by output
// features, the weight gradient by rows of dW, the input gradient by input features. No thread
// waits on another inside a GEMM and no partial sums are reduced across threads (each output
// element is summed by one GEMM call, in its library's order). Deterministic training
// (ctx.exact_grads) takes the weight gradient per chunk of samples into fixed point instead
// (layers/exact_grad.h), or, with the exchange's gather (one node), the part of dW it updates
// over the whole step, rounded to float once; the forward pass and the input gradient are per
// sample either way.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/aligned.h"
#include "core/error.h"
#include "layers/backend_cpu.h"
#include "layers/cpu_context.h"
#include "layers/cpu_gemm.h"
#include "layers/cpu_simd.h"
#include "layers/dense.h"
#include "layers/exact_grad.h"

namespace mnist_dist {
namespace {

// Part [begin, end) of `n` for thread t of `threads`, in multiples of `unit`.
inline void split(int n, int unit, int t, int threads, int& begin, int& end) {
  const int blocks = (n + unit - 1) / unit;
  begin = std::min(n, static_cast<int>(static_cast<long>(blocks) * t / threads) * unit);
  end = std::min(n, static_cast<int>(static_cast<long>(blocks) * (t + 1) / threads) * unit);
}
// Rows of W, dW and yᵀ, columns of dx: GEMM operands at any offset; units of 4 floats balance
// the threads (1200 = 2 × 600, 840 = 2 × 420; units of 16 left 38 against 37 blocks).
inline void split4(int n, int t, int threads, int& begin, int& end) { split(n, 4, t, threads, begin, end); }

constexpr int kFwdBatch = 256;          // samples per forward chunk (bounds the xᵀ, yᵀ buffers)
constexpr int kMinTransposedOut = 64;   // narrower layers compute x·Wᵀ directly,
constexpr long kMinTransposedMacs = 1 << 17;  // and so do small ones (transposes would dominate)
constexpr int kFwdRows = 608;           // rows of W per forward GEMM call
// Deterministic training: every OpenBLAS call has a fixed shape at a fixed place, whatever the
// thread count or world size (OpenBLAS sums an element differently at another shape: the
// same row of x·Wᵀ differs between 64 and 128 rows): one chunk of samples × a block of
// det_block(features) output features (W's rows, dx's columns) at a multiple of it. A block is
// a quarter of the features rounded up to 16, so that 1, 2 or 4 threads share the blocks
// evenly. oneDNN's NN products sum every element in one order whatever the shape
// (DenseExact.ForwardRowsDoNotDependOnTheBatchOrThreads checks both): their calls stay as they are.
inline int det_block(int features) { return ((features + 3) / 4 + 15) / 16 * 16; }

class DenseCpu final : public DenseBase {
 public:
  explicit DenseCpu(const DenseConfig& c) : DenseBase(c) {}

  void reserve(const Shape& in) override {
    if (!transposed_forward()) return;
    const int batch = std::min(std::max(in.n, 1), kFwdBatch);
    xt_.assign(static_cast<size_t>(cfg_.in_features) * batch, 0.0f);
    yt_.assign(static_cast<size_t>(cfg_.out_features) * batch, 0.0f);
  }

  // y = x·Wᵀ + b. With oneDNN, for layers wide and large enough, it is computed as
  // yᵀ = W·xᵀ, a plain NN product, the kind oneDNN's SGEMM runs at ~98 % of an AVX-512 core
  // (x·Wᵀ, a transposed-B product, runs at 75–90 % in either library): per chunk of samples the
  // threads transpose x together, then each multiplies its block of W's rows and transposes its
  // block of yᵀ into y, adding the bias on the way. Narrow or small layers (the logits, the
  // LeNet-5 dense layers) take x·Wᵀ directly with OpenBLAS, split over the threads by columns.
  void forward(Context& ctx, ParamArena& a, const Tensor& x, Tensor& y, bool) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    const float* b = a.param(b_);
    const float* w = a.param(w_);
    const int threads = team_size(ctx);
    const bool avx = use_avx512(ctx);
    if (n == 0) return;
    const bool det = ctx.chunk > 0;  // fixed shapes (the narrow path is OpenBLAS's)
    const int rows = det ? ctx.chunk : n;
    if (!transposed_forward()) {
#pragma omp parallel num_threads(threads)
      {
        int j0 = 0, j1 = 0;
        split(out, det ? det_block(out) : 16, omp_get_thread_num(), omp_get_num_threads(), j0, j1);
        if (j1 > j0) {
          // y[:, j0:j1] = b[j0:j1] + x · W[j0:j1, :]ᵀ
          for (int i = 0; i < n; ++i)
            std::copy(b + j0, b + j1, y.data + static_cast<size_t>(i) * out + j0);
          const int cols = det ? det_block(out) : j1 - j0;
          for (int c = j0; c < j1; c += cols)
            for (int r = 0; r < n; r += rows)
              cpu_gemm::sgemm(cpu_gemm::Lib::kOpenBlas, false, true, std::min(rows, n - r), std::min(cols, j1 - c), in,
                              1.0f, x.data + static_cast<size_t>(r) * in, in, w + static_cast<size_t>(c) * in, in,
                              1.0f, y.data + static_cast<size_t>(r) * out + c, out);
        }
      }
      return;
    }
    const int chunk = static_cast<int>(std::min<size_t>(kFwdBatch, xt_.size() / in));
    MD_CHECK(chunk > 0, "dense forward before reserve()");
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      int j0 = 0, j1 = 0, k0 = 0, k1 = 0;
      split4(out, t, team, j0, j1);
      split4(in, t, team, k0, k1);
      for (int s0 = 0; s0 < n; s0 += chunk) {
        const int m = std::min(chunk, n - s0);
        const float* xs = x.data + static_cast<size_t>(s0) * in;
        // xᵀ[k0:k1, 0:m] = x[s0:s0+m, k0:k1]ᵀ
        if (k1 > k0) cpu_simd::transpose(avx, xs + k0, m, k1 - k0, in, xt_.data() + static_cast<size_t>(k0) * m, m, nullptr);
#pragma omp barrier
        if (j1 > j0) {
          float* yt = yt_.data() + static_cast<size_t>(j0) * m;
          // yᵀ[j0:j1, :] = W[j0:j1, :] · xᵀ;  y[s0:s0+m, j0:j1] = yᵀ[j0:j1, :]ᵀ + b[j0:j1]
          for (int r0 = j0; r0 < j1; r0 += kFwdRows)  // row blocks: W's block stays in L2
            cpu_gemm::sgemm(cpu_gemm::Lib::kDnnl, false, false, std::min(j1, r0 + kFwdRows) - r0, m,
                            in, 1.0f, w + static_cast<size_t>(r0) * in, in, xt_.data(), m, 0.0f,
                            yt + static_cast<size_t>(r0 - j0) * m, m);
          cpu_simd::transpose(avx, yt, j1 - j0, m, m, y.data + static_cast<size_t>(s0) * out + j0, out, b + j0);
        }
#pragma omp barrier  // xᵀ is rewritten by the next chunk
      }
    }
  }

  void backward(Context& ctx, ParamArena& a, const Tensor& x, const Tensor&, const Tensor& dy,
                Tensor& dx) override {
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    const float* w = a.param(w_);
    float* dw = a.grad(w_);
    float* db = a.grad(b_);
    const bool want_dx = dx.data != nullptr;
    int64_t* exact_dw = ctx.exact_grads == nullptr ? nullptr : ctx.exact_grads + (dw - a.grads());
    int64_t* exact_db = ctx.exact_grads == nullptr ? nullptr : ctx.exact_grads + (db - a.grads());
    const bool avx = use_avx512(ctx);
    bool gathered = false;  // dW and db done by the gather
    if (exact_dw != nullptr) {  // checked before anything is added or staged: no sum can leave int64
      exact::check_range(exact::dense_bound(avx, team_size(ctx), dy.data, x.data, n, out, in, ctx.chunk), ctx.total_chunks, "a dense layer");
      if (dyt_.size() < static_cast<size_t>(n) * out) dyt_.assign(static_cast<size_t>(n) * out, 0.0f);
      gathered = gathered_weight_grad(ctx, a, x, dy);
      if (gathered) exact_dw = nullptr;
    }
#pragma omp parallel num_threads(team_size(ctx))
    {
      const int t = omp_get_thread_num(), threads = omp_get_num_threads();
      int r0 = 0, r1 = 0;
      split4(out, t, threads, r0, r1);
      if (exact_dw != nullptr) {  // deterministic: per chunk, into the fixed-point sums
        if (r1 > r0 && n > 0) {  // this thread's rows of dyᵀ, then of dW
          scaled_transpose_rows(avx, dy.data, n, r0, r1, dyt_.data());
          exact::dense_weight_grad(avx, dyt_.data(), x.data, n, out, in, ctx.chunk, r0, r1, ctx.exact_add, exact_dw,
                                   exact_db);
        } else if (r1 > r0 && !ctx.exact_add) {  // an empty slice contributes zeros
          std::fill(exact_dw + static_cast<size_t>(r0) * in, exact_dw + static_cast<size_t>(r1) * in, 0);
          std::fill(exact_db + r0, exact_db + r1, 0);
        }
      } else if (r1 > r0 && !gathered) {
        // dW[r0:r1, :] = dy[:, r0:r1]ᵀ · x;  db[r0:r1] = Σ_i dy[i, r0:r1]
        if (n > 0) {
          cpu_gemm::sgemm(cpu_gemm::preferred(), true, false, r1 - r0, in, n, 1.0f, dy.data + r0,
                          out, x.data, in, 0.0f, dw + static_cast<size_t>(r0) * in, in);
        } else {
          std::fill(dw + static_cast<size_t>(r0) * in, dw + static_cast<size_t>(r1) * in, 0.0f);
        }
        std::fill(db + r0, db + r1, 0.0f);
        for (int i = 0; i < n; ++i) {
          const float* row = dy.data + static_cast<size_t>(i) * out;
          for (int j = r0; j < r1; ++j) db[j] += row[j];
        }
      }
      int c0 = 0, c1 = 0;
      const bool det = ctx.exact_grads != nullptr && cpu_gemm::preferred() == cpu_gemm::Lib::kOpenBlas;
      split(in, det ? det_block(in) : 4, t, threads, c0, c1);
      // dx[:, c0:c1] = dy · W[:, c0:c1] (deterministic: per chunk and block of det_block(in) columns)
      const int rows = det ? ctx.chunk : std::max(n, 1), cols = det ? det_block(in) : std::max(c1 - c0, 1);
      for (int c = c0; want_dx && c < c1; c += cols)
        for (int r = 0; r < n; r += rows)
          cpu_gemm::sgemm(cpu_gemm::preferred(), false, false, std::min(rows, n - r), std::min(cols, c1 - c), out,
                          1.0f, dy.data + static_cast<size_t>(r) * out, out, w + c, in, 0.0f,
                          dx.data + static_cast<size_t>(r) * in + c, in);
    }
  }

 private:
  static constexpr size_t kStageHeader = 16;  // floats before a stage's x: the sample count

  // dyt rows [r0, r1) (out × n) = 2^40 · dy[:, r0:r1]ᵀ: exact_grad.h's dense_weight_grad input.
  void scaled_transpose_rows(bool avx, const float* dy, int n, int r0, int r1, float* dyt) const {
    float* rows = dyt + static_cast<size_t>(r0) * n;
    cpu_simd::transpose(avx, dy + r0, n, r1 - r0, cfg_.out_features, rows, n, nullptr);
    exact::scale_to_fixed(rows, static_cast<size_t>(r1 - r0) * n);
  }

  // Deterministic training on one node (exact::Gather, layers/exact_grad.h), after the range
  // check and with dyt_ sized: stages this slice's x and 2^40·dyᵀ (a rank alone stages nothing), then computes the
  // part of dW and db this rank updates over the whole step's chunks, rounded to float, into
  // the arena's gradients. False (nothing done) where the gather does not apply: no gather this
  // step, a later micro-step (its sums add to the earlier ones'), or stages that would not fit
  // in the weight's fixed-point sums (decided alike on every rank: by the global batch).
  bool gathered_weight_grad(Context& ctx, ParamArena& a, const Tensor& x, const Tensor& dy) {
    exact::Gather* g = ctx.exact_gather;
    if (g == nullptr || ctx.exact_add) return false;
    const int n = x.shape.n, in = cfg_.in_features, out = cfg_.out_features;
    const size_t wo = static_cast<size_t>(a.grad(w_) - a.grads()), bo = static_cast<size_t>(a.grad(b_) - a.grads());
    const size_t global = static_cast<size_t>(ctx.total_chunks) * ctx.chunk;
    const size_t capacity = static_cast<size_t>(out) * in * (sizeof(int64_t) / sizeof(float));
    if (g->ranks() > 1 && kStageHeader + global * (static_cast<size_t>(in) + out) > capacity) return false;
    const bool avx = use_avx512(ctx);
    const int threads = team_size(ctx);
    const bool alone = g->ranks() == 1;  // every chunk is here: nothing to stage or gather
    float* st = alone ? nullptr : g->stage(wo);
    float* dyt = alone ? dyt_.data() : st + kStageHeader + static_cast<size_t>(n) * in;
    if (!alone) {
      std::memcpy(st, &n, sizeof n);
      std::copy(x.data, x.data + static_cast<size_t>(n) * in, st + kStageHeader);
    }
#pragma omp parallel num_threads(threads)
    {
      int r0 = 0, r1 = 0;
      split4(out, omp_get_thread_num(), omp_get_num_threads(), r0, r1);
      if (r1 > r0 && n > 0) scaled_transpose_rows(avx, dy.data, n, r0, r1, dyt);
    }
    const auto [pb, pe] = g->exchange(wo);
    if (pe <= pb) return true;
    const float* xs = x.data;
    const float* ds = dyt;
    int total = n;
    if (!alone) {  // every rank's slice in order: x (total × in) and 2^40·dyᵀ (out × total) of the step
      std::vector<int> counts(static_cast<size_t>(g->ranks()));
      total = 0;
      for (int k = 0; k < g->ranks(); ++k) {
        std::memcpy(&counts[static_cast<size_t>(k)], g->stage_of(wo, k), sizeof(int));
        total += counts[static_cast<size_t>(k)];
      }
      if (all_x_.size() < static_cast<size_t>(total) * in) all_x_.assign(static_cast<size_t>(total) * in, 0.0f);
      if (all_dyt_.size() < static_cast<size_t>(total) * out) all_dyt_.assign(static_cast<size_t>(total) * out, 0.0f);
      for (int k = 0, at = 0; k < g->ranks(); at += counts[static_cast<size_t>(k)], ++k) {
        const int nk = counts[static_cast<size_t>(k)];
        const float* sk = g->stage_of(wo, k);
        std::copy(sk + kStageHeader, sk + kStageHeader + static_cast<size_t>(nk) * in,
                  all_x_.data() + static_cast<size_t>(at) * in);
        const float* dk = sk + kStageHeader + static_cast<size_t>(nk) * in;
        for (int o = 0; o < out; ++o)
          std::copy(dk + static_cast<size_t>(o) * nk, dk + static_cast<size_t>(o + 1) * nk,
                    all_dyt_.data() + static_cast<size_t>(o) * total + at);
      }
      xs = all_x_.data();
      ds = all_dyt_.data();
    }
    // This rank's part: whole rows of dW covering it (rows that straddle a boundary are written
    // whole into this rank's own gradient buffer; only the part is read), and its bias entries.
    const size_t wend = wo + static_cast<size_t>(out) * in;
    const size_t lo = std::max(pb, wo), hi = std::min(pe, wend);
    const int rr0 = hi > lo ? static_cast<int>((lo - wo) / in) : 0;
    const int rr1 = hi > lo ? static_cast<int>((hi - wo + in - 1) / in) : 0;
    const int b0 = static_cast<int>(std::clamp(pb, bo, bo + out) - bo);
    const int b1 = static_cast<int>(std::clamp(pe, bo, bo + out) - bo);
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      int r0 = 0, r1 = 0;
      split4(rr1 - rr0, t, omp_get_num_threads(), r0, r1);
      exact::dense_weight_grad_rounded(avx, ds, xs, total, in, ctx.chunk, rr0 + r0, rr0 + r1,
                                       a.grad(w_), t == 0 ? b0 : 0, t == 0 ? b1 : 0, a.grad(b_));
    }
    return true;
  }

  bool transposed_forward() const {
    return cpu_gemm::preferred() == cpu_gemm::Lib::kDnnl && cfg_.out_features >= kMinTransposedOut &&
           static_cast<long>(cfg_.in_features) * cfg_.out_features >= kMinTransposedMacs;
  }

  AlignedVector<float> xt_, yt_;  // xᵀ (in × chunk) and yᵀ (out × chunk) of a forward chunk
  AlignedVector<float> dyt_;      // deterministic training: dL/dyᵀ (out × n)
  AlignedVector<float> all_x_, all_dyt_;  // gathered: the step's x and 2^40·dyᵀ over the node
};

}  // namespace

LayerPtr make_dense_cpu(const DenseConfig& config) { return std::make_unique<DenseCpu>(config); }

}  // namespace mnist_dist
