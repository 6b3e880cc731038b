// Prefetcher: producer thread + ring of batch buffers guarded by one mutex/condition variable.
#include "train/prefetcher.h"

#include <algorithm>
#include <chrono>

namespace mnist_dist::data {

Prefetcher::Prefetcher(ShardReader& reader, const EpochSampler& sampler, int rank, int world,
                       size_t first_step, size_t last_step, Augment augment, int depth)
    : reader_(reader),
      sampler_(sampler),
      rank_(rank),
      world_(world),
      augment_(augment),
      next_step_(first_step),
      last_step_(last_step),
      ring_(static_cast<size_t>(depth < 1 ? 1 : depth) + 1) {
  // +1: the slot handed to the consumer stays untouched until its next call.
  const size_t pixels = static_cast<size_t>(reader.rows()) * reader.cols();
  size_t max_n = 1;  // the largest slice (whole chunks under deterministic training can exceed B / W + 1)
  for (int r = 0; r < world; ++r) {
    const auto [lo, hi] = sampler.bounds(sampler.global_batch(), r, world);
    max_n = std::max(max_n, hi - lo);
  }
  for (auto& b : ring_) {
    b.images.resize(max_n * pixels);
    b.labels.resize(max_n);
  }
  staging_.resize(max_n * pixels);
  if (augment_.enabled()) shifted_.resize(pixels);
  thread_ = std::thread([this] { run(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Prefetcher::run() {
  const size_t pixels = static_cast<size_t>(reader_.rows()) * reader_.cols();
  try {
    for (size_t step = next_step_; step < last_step_; ++step) {
      {
        // Wait for a free slot: at most ring-1 batches ahead of the consumer.
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || produced_ - consumed_ < ring_.size() - 1; });
        if (stop_) return;
      }
      Batch& b = ring_[produced_ % ring_.size()];
      const auto [idx, n] = sampler_.slice(step, rank_, world_);
      reader_.read_indices(idx, n, staging_.data(), b.labels.data());
      const float scale = 1.0f / 255.0f;
      if (augment_.enabled()) {  // shift each image by its sample's draw, then convert
        const int rows = static_cast<int>(reader_.rows()), cols = static_cast<int>(reader_.cols());
        for (size_t s = 0; s < n; ++s) {
          const Shift d = draw_shift(augment_.seed, sampler_.epoch(), idx[s], augment_.max_shift);
          shift_image(staging_.data() + s * pixels, shifted_.data(), rows, cols, d);
          float* out = b.images.data() + s * pixels;
          for (size_t i = 0; i < pixels; ++i) out[i] = shifted_[i] * scale;
        }
      } else {
        for (size_t i = 0; i < n * pixels; ++i) b.images[i] = staging_[i] * scale;
      }
      b.epoch = sampler_.epoch();
      b.step = step;
      b.n = static_cast<int>(n);
      b.global_n = sampler_.batch_size(step);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++produced_;
      }
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  cv_.notify_all();
}

const Batch* Prefetcher::next() {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  const size_t total = last_step_ - next_step_;
  if (consumed_ == total) return nullptr;
  cv_.wait(lock, [&] { return produced_ > consumed_ || error_ != nullptr; });
  if (produced_ <= consumed_ && error_) std::rethrow_exception(error_);
  const Batch* b = &ring_[consumed_ % ring_.size()];
  ++consumed_;
  lock.unlock();
  cv_.notify_all();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

}  // namespace mnist_dist::data
