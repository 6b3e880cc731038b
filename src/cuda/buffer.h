// A typed buffer in one backend's memory: 64-byte aligned host memory for the CPU backend,
// device memory for CUDA. Move-only; zero-filled on allocation; explicit host transfers.
#pragma once

#include <cstddef>
#include <cstring>
#include <utility>

#include "core/aligned.h"
#include "core/context.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  Buffer(Backend backend, size_t count) : backend_(backend), count_(count) {
    const size_t bytes = count * sizeof(T);
    if (backend == Backend::kCuda) {
      data_ = static_cast<T*>(device_alloc(bytes == 0 ? 1 : bytes));
      device_memset0(data_, bytes);
    } else {
      data_ = AlignedAllocator<T>().allocate(count == 0 ? 1 : count);
      std::memset(static_cast<void*>(data_), 0, bytes);
    }
  }
  Buffer(Buffer&& o) noexcept { swap(o); }
  Buffer& operator=(Buffer&& o) noexcept {
    Buffer tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return count_; }
  Backend backend() const { return backend_; }

  // Copies n elements from host memory into [offset, offset + n).
  void upload(const T* host, size_t n, size_t offset = 0) {
    if (n == 0) return;
    if (backend_ == Backend::kCuda) copy_h2d(data_ + offset, host, n * sizeof(T));
    else std::memcpy(static_cast<void*>(data_ + offset), host, n * sizeof(T));
  }
  // Copies [offset, offset + n) into host memory.
  void download(T* host, size_t n, size_t offset = 0) const {
    if (n == 0) return;
    if (backend_ == Backend::kCuda) copy_d2h(host, data_ + offset, n * sizeof(T));
    else std::memcpy(static_cast<void*>(host), data_ + offset, n * sizeof(T));
  }
  void zero() {
    if (backend_ == Backend::kCuda) device_memset0(data_, count_ * sizeof(T));
    else std::memset(static_cast<void*>(data_), 0, count_ * sizeof(T));
  }

 private:
  void swap(Buffer& o) noexcept {
    std::swap(backend_, o.backend_);
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
  }
  void release() {
    if (data_ == nullptr) return;
    if (backend_ == Backend::kCuda) device_free(data_);
    else AlignedAllocator<T>().deallocate(data_, count_);
    data_ = nullptr;
  }

  Backend backend_ = Backend::kCpu;
  T* data_ = nullptr;
  size_t count_ = 0;
};

}  // namespace mnist_dist
