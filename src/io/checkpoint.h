// Training checkpoints: the model tensors (same layout as a saved model, so load_model and
// `mnist_dist predict` read them) plus Adam's moments and step, the position in the epoch
// schedule, the epoch's partial metric sums, the run configuration and a content checksum.
// Written by rank 0 to a temporary name and renamed, with a SHA-256 sidecar `<file>.sha256`
// (io/sidecar.h) that readers check before HDF5 opens the file; the newest K are kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/sidecar.h"
#include "model/model.h"
#include "optim/adam.h"

namespace mnist_dist {

// One epoch's training metrics summed over the samples seen so far (all-reduced as three
// doubles, in this order).
struct EpochSums {
  double loss_sum = 0.0;
  double correct = 0.0;
  double count = 0.0;
  double* data() { return &loss_sum; }
  static constexpr int kSize = 3;
};
static_assert(sizeof(EpochSums) == EpochSums::kSize * sizeof(double), "EpochSums is all-reduced as doubles");

struct CheckpointMeta {
  int64_t global_step = 0;       // optimizer steps applied
  int epoch = 0;                 // 0-based epoch the next step belongs to
  int64_t step_in_epoch = 0;     // steps of that epoch already done
  EpochSums epoch_sums;          // of that epoch so far (all ranks)
  // Identity of the run; a resume must match these.
  std::string model;
  int64_t batch_size = 0;
  uint64_t seed = 0;
  int64_t train_samples = 0;
  bool drop_last = false;
  // Informational.
  int64_t world_size = 0;
  std::string config_json;
};

// ckpt-<global step, 10 digits>.h5
std::string checkpoint_file_name(int64_t global_step);

// Bytes of one checkpoint of `model` and `adam` (an upper bound, for the start-up space check).
uint64_t checkpoint_file_bytes(const Model& model, const Adam& adam);

// Writes the model's host copies (sync_to_host() first on a GPU) and Adam's moments, then the
// sidecar `path`.sha256, then renames the file to `path`. NoSpaceError on a full disk (the
// partial file removed, earlier checkpoints untouched).
void write_checkpoint(const std::string& path, const Model& model, Adam& adam,
                      const CheckpointMeta& meta);

// Checks the file against its SHA-256 sidecar, then reads and verifies it (format, model,
// shapes, checksum); fills model, adam and meta. UserError naming the file and the problem
// otherwise. Without a sidecar (an older writer): UserError with kRefuse, read unverified with
// kAllow (for a file the user named; print unverified_warning(path) first).
CheckpointMeta read_checkpoint(const std::string& path, Model& model, Adam& adam,
                               MissingSidecar missing = MissingSidecar::kRefuse);

// Checkpoint files of dir (ckpt-*.h5, not their sidecars), newest (highest step) first.
std::vector<std::string> list_checkpoints(const std::string& dir);

// Deletes all but the newest `keep` checkpoints of dir with their sidecars, and sidecars whose
// checkpoint does not exist.
void prune_checkpoints(const std::string& dir, int keep);

}  // namespace mnist_dist
