// MD_HD marks per-element math shared by CPU loops and CUDA kernels (DESIGN.md contract 7).
#pragma once

#if defined(__CUDACC__)
#define MD_HD __host__ __device__ __forceinline__
#else
#define MD_HD inline
#endif
