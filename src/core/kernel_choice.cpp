// Kernel choices of the CPU backend: the CPU's AVX-512 check and the environment's defaults.
#include "core/kernel_choice.h"

#include <cstdlib>
#include <cstring>

namespace mnist_dist {

bool cpu_has_avx512() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool ok = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return ok;
#else
  return false;
#endif
}

KernelChoice kernels_from_env() {
  KernelChoice k;
  const char* no_avx = std::getenv("MNIST_DIST_NO_AVX512");
  const bool avx_off = no_avx != nullptr && no_avx[0] != '\0' && no_avx[0] != '0';
  k.use_avx512 = !avx_off && cpu_has_avx512();
  const char* no_fusion = std::getenv("MNIST_DIST_NO_FUSION");
  k.fuse_layers = !(no_fusion != nullptr && std::strcmp(no_fusion, "1") == 0);
  return k;
}

}  // namespace mnist_dist
