// Exact, order-free gradient sums for deterministic training (DESIGN.md "Deterministic
// training"). Each chunk's contribution to a parameter gradient is computed in float by one
// fixed sequence of operations, then rounded once to fixed point: an int64 count of 2^-40
// (to_fixed). Integer sums are associative, so adding the chunks' values over threads, ranks
// and any all-reduce algorithm gives the same bits; from_fixed rounds the total back to float
// once. Resolution 2^-40 ≈ 9.1e-13 (below it a gradient element is noise to Adam, whose ε is
// 1e-7); range: a chunk's value must stay within chunk_limit(total chunks), which keeps every
// partial sum of a step inside int64 (check_range throws otherwise: training has diverged).
//
// The portable and AVX-512 paths give identical bits: fused multiply-adds in the same order
// (std::fma / vfmadd), conversions that round to nearest even (llrint / vcvtps2qq, and
// int64 → float by cvtsi2ss / vcvtqq2ps).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace mnist_dist::exact {

constexpr int kFractionBits = 40;
constexpr float kToFixed = 1099511627776.0f;  // 2^40
constexpr float kFromFixed = 1.0f / kToFixed;  // 2^-40, exact

inline int64_t to_fixed(float v) { return std::llrint(static_cast<double>(v * kToFixed)); }
inline float from_fixed(int64_t q) { return static_cast<float>(q) * kFromFixed; }

// The largest magnitude a chunk's value may have when a step sums `total_chunks` of them:
// 2^22 / total_chunks (the sum of any subset then stays below 2^62 counts).
inline float chunk_limit(int total_chunks) {
  return 4194304.0f / static_cast<float>(total_chunks < 1 ? 1 : total_chunks);
}
// Throws TrainingDiverged (core/error.h: no checkpoint of these weights is written) naming
// `what` when max_abs is beyond the limit or not a number.
void check_range(float max_abs, int total_chunks, const char* what);

// acc[i] += to_fixed(v[i]) for i < n (acc: this call's own sums); returns max |v[i]|.
float fold(const float* v, size_t n, int64_t* acc);
// out[i] = from_fixed(acc[i]) for i < n.
void unfold(bool avx512, const int64_t* acc, size_t n, float* out);
// out[i] = from_fixed(Σ_k bufs[k][i]) for i in [begin, end) (integer sums: any order).
void unfold_sum(bool avx512, const int64_t* const* bufs, int nbufs, size_t begin, size_t end, float* out);

// A dense layer's weight and bias gradients over a batch of n samples in chunks of `chunk`
// (the last may be shorter), rows [r0, r1) of dW: for each chunk c and element (o, i),
// f = Σ_{s in c} dyᵀ[o, s]·x[s, i] by fused multiply-adds in sample order from 0, then
// dw[o, i] = Σ_c to_fixed(f) (added to dw[o, i] when `add`); the bias the same with
// f = Σ dyᵀ[o, s] by plain adds. dyt is dL/dy transposed and scaled by 2^40 (out, n; see
// transpose_scaled), so that f arrives in fixed-point units; x is (n, in), dw (out, in).
void dense_weight_grad(bool avx512, const float* dyt, const float* x, int n, int out, int in, int chunk,
                       int r0, int r1, bool add, int64_t* dw, int64_t* db);
// dense_weight_grad over every chunk of a step, rounded back to float once (from_fixed, as unfold)
// and stored instead of kept in fixed point: dw rows [r0, r1) and db rows [b0, b1) (written,
// nothing added). For a caller that holds all of the step's chunks (Gather); the same bits as
// unfold of the summed fixed-point values, however the chunks were split over calls or ranks.
void dense_weight_grad_rounded(bool avx512, const float* dyt, const float* x, int n, int in, int chunk, int r0,
                               int r1, float* dw, int b0, int b1, float* db);
// v[i] *= 2^40 for i < n (dense_weight_grad's dyᵀ): exact (a power of two), so each f of
// dense_weight_grad is 2^40 times what it would be on dy itself (also where that would have
// been subnormal).
void scale_to_fixed(float* v, size_t n);
// A bound on every |f| of dense_weight_grad, before the 2^40: chunk · max |dy| · max(1, |x|)
// over the batch, on `threads` OpenMP threads; NaN when an input is not finite. dy is (n, out).
float dense_bound(bool avx512, int threads, const float* dy, const float* x, int n, int out, int in, int chunk);

// The one-node gather of deterministic training (implemented by the exchange, train/exact_sync.cpp;
// ctx.exact_gather while a step's only micro-step runs backward). Without it every rank writes
// fixed-point sums for all of a dense layer's dW, and each rank then reads every rank's sums for
// the part it updates: 8 bytes per weight written and read again per rank and step. With it a
// dense layer stages its slice's x and 2^40·dyᵀ (a few hundred KB) where the node's ranks can read
// them, and each rank computes the part of dW it updates over every chunk of the step,
// rounded to float once (dense_weight_grad_rounded): the same bits, far less memory traffic.
class Gather {
 public:
  virtual ~Gather() = default;
  // The node's ranks, whose slices in local-rank order are the global batch in order. One: the
  // caller holds every chunk and stages nothing.
  virtual int ranks() const = 0;
  // This rank's stage for the layer's weight gradient at arena offset `offset` (64-byte
  // aligned; as many bytes as the weight's fixed-point sums, which the gather leaves unused),
  // and rank k's (after exchange).
  virtual float* stage(size_t offset) = 0;
  virtual const float* stage_of(size_t offset, int k) const = 0;
  // This rank's stage is written: publishes it, waits until every rank of the node has
  // published theirs (when this rank owns a part of the layer) and returns that part, arena
  // offsets [begin, end) (empty: nothing to compute here).
  virtual std::pair<size_t, size_t> exchange(size_t offset) = 0;
};

}  // namespace mnist_dist::exact
