// The CPU backend's kernel choices (AVX-512 loops, layer fusion) and their defaults: the one
// place the environment is read for them. MNIST_DIST_NO_AVX512 (set, non-empty, not starting
// with '0') turns the AVX-512 kernels off; MNIST_DIST_NO_FUSION=1 turns the fusion off.
#pragma once

namespace mnist_dist {

struct KernelChoice {
  bool use_avx512 = false;  // AVX-512 kernels (only ever true where the CPU has AVX-512F)
  bool fuse_layers = true;  // BatchNorm → ReLU → max-pool as one sweep (layers/fusion.h)
};

// True when this CPU runs AVX-512F (checked once; false off x86-64/GCC).
bool cpu_has_avx512();

// The defaults of Context's kernel fields: use_avx512 = the CPU has AVX-512F and
// MNIST_DIST_NO_AVX512 does not disable it; fuse_layers = MNIST_DIST_NO_FUSION is not "1".
// Reads the environment at each call.
KernelChoice kernels_from_env();

}  // namespace mnist_dist
