// Launch geometry shared by the CUDA files: the ceil-div grid helper and block sizes. Kernels
// that take a grid from grid_1d() loop grid-stride, so the grid cap never drops work.
#pragma once

#include <cstddef>

#include "core/error.h"

namespace mnist_dist::cuda {

constexpr int kBlock = 256;         // threads per block of the element-wise kernels
constexpr size_t kMaxGrid = 8192;   // enough blocks to fill any current GPU several times

constexpr size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// Blocks for n elements at `block` threads each (at least 1, at most kMaxGrid).
inline unsigned grid_1d(size_t n, int block = kBlock) {
  const size_t g = ceil_div(n, static_cast<size_t>(block));
  return static_cast<unsigned>(g == 0 ? 1 : (g < kMaxGrid ? g : kMaxGrid));
}

}  // namespace mnist_dist::cuda
