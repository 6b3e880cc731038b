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
// v[i] *= 2^40 for i < n (dense_weight_grad's dyᵀ): exact (a power of two), so each f of
// dense_weight_grad is 2^40 times what it would be on dy itself (also where that would have
// been subnormal).
void scale_to_fixed(float* v, size_t n);
// A bound on every |f| of dense_weight_grad, before the 2^40: chunk · max |dy| · max(1, |x|)
// over the batch, on `threads` OpenMP threads; NaN when an input is not finite. dy is (n, out).
float dense_bound(bool avx512, int threads, const float* dy, const float* x, int n, int out, int in, int chunk);

}  // namespace mnist_dist::exact
