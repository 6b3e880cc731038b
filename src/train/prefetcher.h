// Batch prefetcher: a thread that reads this rank's slice of the next global batches from the
// shards (ShardReader::read_indices), converts pixels to float in [0, 1] and hands them over
// through a small ring of buffers (double-buffered by default), so the step loop never waits
// on I/O when reading keeps up. With --augment it also shifts each image (train/augment.h) on
// that thread. The time the consumer spent waiting is measured.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/aligned.h"
#include "data_pipeline/sampler.h"
#include "data_pipeline/shard_reader.h"
#include "train/augment.h"

namespace mnist_dist::data {

struct Batch {
  int epoch = 0;
  size_t step = 0;
  int n = 0;                       // samples in this rank's slice
  size_t global_n = 0;             // samples in the whole global batch
  AlignedVector<float> images;     // (n, 1, rows, cols), pixels / 255
  std::vector<uint8_t> labels;     // (n)
};

class Prefetcher {
 public:
  // Produces steps [first_step, last_step) of epoch `epoch` for rank/world. `reader` and
  // `sampler` must outlive the prefetcher; the sampler's epoch must be set already. `augment`:
  // each image shifted by draw_shift(seed, epoch, its sample index) (training batches only).
  Prefetcher(ShardReader& reader, const EpochSampler& sampler, int rank, int world,
             size_t first_step, size_t last_step, Augment augment = {}, int depth = 2);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next batch, or nullptr after the last one. Valid until the next call.
  // Rethrows (on the caller's thread) an error the reading thread hit.
  const Batch* next();
  double wait_seconds() const { return wait_s_; }

 private:
  void run();

  ShardReader& reader_;
  const EpochSampler& sampler_;
  int rank_, world_;
  Augment augment_;
  size_t next_step_, last_step_;
  std::vector<Batch> ring_;
  size_t produced_ = 0, consumed_ = 0;  // counts; slot = count % ring size
  bool stop_ = false;
  std::exception_ptr error_;
  std::mutex mu_;
  std::condition_variable cv_;
  double wait_s_ = 0.0;
  std::vector<uint8_t> staging_;
  std::vector<uint8_t> shifted_;  // one image (--augment)
  std::thread thread_;
};

}  // namespace mnist_dist::data
