// The cuDNN algorithm rules of layers/conv_algo_choice.h on scripted heuristic results (host
// logic only: runs without a GPU).
#include "layers/conv_algo_choice.h"

#include <gtest/gtest.h>

#include <vector>

namespace mnist_dist::conv_algo {
namespace {

cudnnConvolutionFwdAlgoPerf_t fwd(cudnnConvolutionFwdAlgo_t algo, cudnnMathType_t math,
                                  size_t memory = 0, cudnnStatus_t status = CUDNN_STATUS_SUCCESS) {
  cudnnConvolutionFwdAlgoPerf_t p{};
  p.algo = algo;
  p.status = status;
  p.memory = memory;
  p.mathType = math;
  p.determinism = CUDNN_DETERMINISTIC;
  return p;
}

TEST(ConvAlgoChoice, NeverAcceptsConversionToHalfPrecision) {
  EXPECT_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, true));
  EXPECT_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, false));
  EXPECT_TRUE(math_allowed(CUDNN_TENSOR_OP_MATH, true));
  EXPECT_FALSE(math_allowed(CUDNN_TENSOR_OP_MATH, false));
  EXPECT_TRUE(math_allowed(CUDNN_FMA_MATH, false));
  EXPECT_TRUE(math_allowed(CUDNN_DEFAULT_MATH, false));

  const std::vector<cudnnConvolutionFwdAlgoPerf_t> perf = {
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_TENSOR_OP_MATH),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_FMA_MATH)};
  EXPECT_EQ(choose(perf.data(), 3, 1 << 20, true, false), &perf[1]);   // TF32: tensor ops
  EXPECT_EQ(choose(perf.data(), 3, 1 << 20, false, false), &perf[2]);  // fp32: FMA only
}

TEST(ConvAlgoChoice, Fp32SkipsFftAndWinogradTf32KeepsThem) {
  const std::vector<cudnnConvolutionFwdAlgoPerf_t> perf = {
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT, CUDNN_FMA_MATH),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED, CUDNN_FMA_MATH),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING, CUDNN_FMA_MATH),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD, CUDNN_FMA_MATH),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_FMA_MATH)};
  EXPECT_EQ(choose(perf.data(), 5, 1 << 20, false, false), &perf[4]);
  EXPECT_EQ(choose(perf.data(), 5, 1 << 20, true, false), &perf[0]);
  EXPECT_EQ(choose(perf.data(), 4, 1 << 20, false, false), nullptr);
  EXPECT_TRUE(transform_based(CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD));
  EXPECT_TRUE(transform_based(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING));
  EXPECT_FALSE(transform_based(CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1));
}

TEST(ConvAlgoChoice, SkipsFailuresAndOversizedWorkspacesPrefersDeterministic) {
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf = {
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_GEMM, CUDNN_FMA_MATH, 0, CUDNN_STATUS_NOT_SUPPORTED),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, CUDNN_FMA_MATH, 2 << 20),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_FMA_MATH, 1 << 10),
      fwd(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_FMA_MATH, 1 << 10)};
  perf[2].determinism = CUDNN_NON_DETERMINISTIC;
  EXPECT_EQ(choose(perf.data(), 4, 1 << 20, false, false), &perf[2]);
  EXPECT_EQ(choose(perf.data(), 4, 1 << 20, false, true), &perf[3]);
  perf[3].determinism = CUDNN_NON_DETERMINISTIC;
  EXPECT_EQ(choose(perf.data(), 4, 1 << 20, false, true), &perf[2]);  // falls back to any
}

}  // namespace
}  // namespace mnist_dist::conv_algo
