// Which cuDNN convolution algorithm a plan takes (layers/conv2d_cuda.cu), as plain host logic
// over the cudnnGet*_v7 heuristics' ranked results so that it is tested without a GPU
// (tests/gpu/test_conv_algo_choice.cpp):
//   - the best-ranked result that succeeded and fits the workspace cap;
//   - math: FMA always; TENSOR_OP (TF32 on fp32 data) only with TF32 on;
//     TENSOR_OP_MATH_ALLOW_CONVERSION never (it may convert fp32 operands to fp16);
//   - TF32 off means "fp32 results": FFT and Winograd are skipped too (their transforms round
//     differently from a direct sum, by more than the CPU comparison tolerates);
//   - backward passes ask for a deterministic algorithm first and fall back to any.
// Include from CUDA code only (needs cudnn.h).
#pragma once

#include <cudnn.h>

#include <cstddef>

namespace mnist_dist::conv_algo {

inline bool math_allowed(cudnnMathType_t m, bool tf32) {
  if (m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return tf32 || m != CUDNN_TENSOR_OP_MATH;
}

inline bool transform_based(cudnnConvolutionFwdAlgo_t a) {
  return a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
}
inline bool transform_based(cudnnConvolutionBwdDataAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD ||
         a == CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
}
inline bool transform_based(cudnnConvolutionBwdFilterAlgo_t a) {
  return a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT || a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING ||
         a == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
}

// The chosen entry of perf[0, count), or nullptr when none qualifies.
template <typename Perf>
const Perf* choose(const Perf* perf, int count, size_t cap, bool tf32, bool want_deterministic) {
  for (int pass = want_deterministic ? 0 : 1; pass < 2; ++pass)
    for (int i = 0; i < count; ++i) {
      const Perf& p = perf[i];
      if (p.status != CUDNN_STATUS_SUCCESS || p.memory > cap || !math_allowed(p.mathType, tf32))
        continue;
      if (!tf32 && transform_based(p.algo)) continue;
      if (pass == 0 && p.determinism != CUDNN_DETERMINISTIC) continue;
      return &p;
    }
  return nullptr;
}

}  // namespace mnist_dist::conv_algo
