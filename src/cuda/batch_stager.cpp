// BatchStager (cuda/batch_stager.h): pinned and device slot buffers, and the order of the
// release / host wait / copy / GPU wait calls of one staged upload.
#include "cuda/batch_stager.h"

#include <cstring>
#include <string>
#include <utility>

#include "core/error.h"
#include "cuda/cuda_runtime_api.h"

namespace mnist_dist {

BatchStager::BatchStager(CudaContext& ctx, int max_samples, size_t floats_per_sample)
    : ctx_(&ctx), max_samples_(max_samples), floats_per_sample_(floats_per_sample) {
  MD_CHECK(max_samples >= 0 && floats_per_sample > 0, "batch stager for " +
                                                          std::to_string(max_samples) + " samples");
  slot_bytes_ = static_cast<size_t>(max_samples) * (floats_per_sample * sizeof(float) + 1);
  const size_t bytes = slot_bytes_ == 0 ? 1 : slot_bytes_;
  try {
    for (int s = 0; s < kSlots; ++s) {
      pinned_[s] = pinned_alloc(bytes);
      std::memset(pinned_[s], 0, bytes);
      // Not a Buffer: its zero fill runs on the legacy default stream, which the (non-blocking)
      // copy stream does not wait for, so it could land after the first upload.
      device_[s] = device_alloc(bytes);
    }
  } catch (...) {
    release();
    throw;
  }
}

BatchStager::~BatchStager() { release(); }

void BatchStager::release() noexcept {
  if (ctx_ == nullptr) return;
  // Queued copies read the pinned buffers and kernels the device ones: let them finish first.
  if (last_ >= 0) synchronize(*ctx_);
  for (int s = 0; s < kSlots; ++s) {
    device_free(device_[s]);
    pinned_free(pinned_[s]);
    device_[s] = pinned_[s] = nullptr;
  }
  ctx_ = nullptr;
}

void BatchStager::swap(BatchStager& o) noexcept {
  std::swap(ctx_, o.ctx_);
  std::swap(max_samples_, o.max_samples_);
  std::swap(floats_per_sample_, o.floats_per_sample_);
  std::swap(slot_bytes_, o.slot_bytes_);
  std::swap(last_, o.last_);
  for (int s = 0; s < kSlots; ++s) {
    std::swap(pinned_[s], o.pinned_[s]);
    std::swap(device_[s], o.device_[s]);
  }
}

BatchStager::Staged BatchStager::stage(const float* images, const uint8_t* labels, int n) {
  MD_CHECK(ctx_ != nullptr, "stage() on a moved-from batch stager");
  MD_CHECK(n >= 0 && n <= max_samples_, "staging " + std::to_string(n) + " samples, stager holds " +
                                            std::to_string(max_samples_));
  MD_CHECK(n == 0 || (images != nullptr && labels != nullptr), "staging a null batch");
  // Everything queued on the compute stream so far is the last reader of the previous batch.
  if (last_ >= 0) compute_release(*ctx_, last_);
  const int slot = (last_ + 1) % kSlots;
  const size_t image_bytes = static_cast<size_t>(n) * floats_per_sample_ * sizeof(float);
  auto* pinned = static_cast<unsigned char*>(pinned_[slot]);
  auto* device = static_cast<unsigned char*>(device_[slot]);
  host_wait_upload(*ctx_, slot);  // the copy out of this pinned buffer (two stages ago) is done
  if (n > 0) {
    std::memcpy(pinned, images, image_bytes);
    std::memcpy(pinned + image_bytes, labels, static_cast<size_t>(n));
  }
  // On the copy stream, after the GPU has run the slot's last reader; returns at once.
  upload_async(*ctx_, slot, device, pinned, image_bytes + static_cast<size_t>(n));
  wait_upload(*ctx_, slot);  // compute work queued from here on sees the batch
  last_ = slot;
  Staged out;
  out.images = reinterpret_cast<const float*>(device);
  out.labels = device + image_bytes;
  return out;
}

}  // namespace mnist_dist
