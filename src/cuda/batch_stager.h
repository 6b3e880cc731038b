// Double-buffered upload of training batches (GPU backend): the host copies a slice into a
// pinned buffer and queues its upload on the context's copy stream, overlapped with the compute
// work still queued from the previous step. Plain C++ over cuda/cuda_runtime_api.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mnist_dist {

struct CudaContext;

// Owns, per staging slot, one pinned host buffer and one device buffer laid out as
// [images (n × floats_per_sample floats) | labels (n bytes)], sized once for `max_samples`.
// Each stage() takes the next slot (round robin over CudaContext::kStagingSlots):
//   1. releases the previous batch's slot: the compute work queued so far is its last reader
//      (so a batch stays valid for everything queued until the next stage());
//   2. waits on the host only for the slot's previous upload (the copy out of its pinned
//      buffer, two stages ago; long done in a training loop);
//   3. copies the slice into the pinned buffer and queues the upload on the copy stream, which
//      waits on the GPU until the slot's last reader has run;
//   4. makes the compute stream wait for that upload (a GPU-side wait).
// One stager per CudaContext (the slots' events live in the context), which must outlive it.
// Move-only.
class BatchStager {
 public:
  static constexpr int kSlots = 2;  // = CudaContext::kStagingSlots (checked in cuda/runtime.cu)

  struct Staged {
    const float* images = nullptr;    // device (n, C, H, W)
    const uint8_t* labels = nullptr;  // device (n)
  };

  BatchStager(CudaContext& ctx, int max_samples, size_t floats_per_sample);
  BatchStager(BatchStager&& o) noexcept { swap(o); }
  BatchStager& operator=(BatchStager&& o) noexcept {
    BatchStager tmp(static_cast<BatchStager&&>(o));
    swap(tmp);
    return *this;
  }
  BatchStager(const BatchStager&) = delete;
  BatchStager& operator=(const BatchStager&) = delete;
  ~BatchStager();

  // Stages n ≤ max_samples samples from host memory (images: n × floats_per_sample floats,
  // labels: n bytes; both may be null when n == 0); returns the device copies, valid for the
  // compute work queued until the next stage(). Never waits for the compute stream.
  Staged stage(const float* images, const uint8_t* labels, int n);

  int max_samples() const { return max_samples_; }
  int last_slot() const { return last_; }  // slot of the latest stage(), -1 before the first

 private:
  void swap(BatchStager& o) noexcept;
  void release() noexcept;

  CudaContext* ctx_ = nullptr;
  int max_samples_ = 0;
  size_t floats_per_sample_ = 0;
  size_t slot_bytes_ = 0;
  void* pinned_[kSlots] = {};
  void* device_[kSlots] = {};
  int last_ = -1;
};

}  // namespace mnist_dist
