// Row-major SGEMM for the CPU layers, called inside their OpenMP parallel regions (each call
// then runs on the calling thread only): oneDNN's dnnl_sgemm when the build found oneDNN
// (MD_HAVE_DNNL), OpenBLAS's cblas_sgemm otherwise or when asked for.
// C (m×n) = alpha·op(A)·op(B) + beta·C with op(X) = Xᵀ when the flag is set.
// For md_engine's sources only: MD_HAVE_DNNL is md_engine's private definition.
#pragma once

#include <cblas.h>

#include <string>

#include "core/error.h"

#if MD_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

namespace mnist_dist::cpu_gemm {

enum class Lib { kOpenBlas, kDnnl };

// The library used for a GEMM that prefers oneDNN (its kernels reach ~98 % of an AVX-512 core
// on the dense layers' NN and TN products, OpenBLAS 0.3.21 ~87 %).
inline Lib preferred() {
#if MD_HAVE_DNNL
  return Lib::kDnnl;
#else
  return Lib::kOpenBlas;
#endif
}

inline void sgemm(Lib lib, bool trans_a, bool trans_b, int m, int n, int k, float alpha,
                  const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  if (m <= 0 || n <= 0) return;
#if MD_HAVE_DNNL
  if (lib == Lib::kDnnl) {
    const dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha,
                                        a, lda, b, ldb, beta, c, ldc);
    if (st != dnnl_success)
      fatal("dnnl_sgemm failed with status " + std::to_string(static_cast<int>(st)), __FILE__,
            __LINE__);
    return;
  }
#else
  (void)lib;
#endif
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace mnist_dist::cpu_gemm
