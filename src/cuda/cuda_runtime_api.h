// The CUDA runtime functions non-CUDA code needs (plain C++, no CUDA types): GPU discovery,
// device/pinned memory, copies. CUDA builds implement them in cuda/runtime.cu; builds
// without CUDA in cuda/runtime_unavailable.cpp (no GPU; allocation is a UserError).
#pragma once

#include <cstddef>
#include <string>

namespace mnist_dist {

// GPUs this process can use; 0 with the reason in *why when none (no driver, no device, or
// built without CUDA). Never throws and never crashes.
int usable_gpu_count(std::string* why);

void* device_alloc(size_t bytes);
void device_free(void* p);
void copy_h2d(void* dst, const void* src, size_t bytes);
void copy_d2h(void* dst, const void* src, size_t bytes);
void device_memset0(void* p, size_t bytes);
void* pinned_alloc(size_t bytes);
void pinned_free(void* p);
void device_synchronize();

}  // namespace mnist_dist
