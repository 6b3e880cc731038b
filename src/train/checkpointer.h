// The trainer's checkpoints: resuming (rank 0 reads, every rank receives the state), writing
// (collective; rank 0 writes, keeps the newest K) and the compatibility rules of a resume
// (same global batch, seed and training split; the world size may change).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "comm/communicator.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "optim/adam.h"
#include "train/gradient_sync.h"
#include "train/logger.h"
#include "train/trainer.h"

namespace mnist_dist {

// Where in the epoch schedule a checkpoint is taken: `step_in_epoch` steps of 0-based `epoch`
// are done.
struct EpochPosition {
  int epoch = 0;
  int64_t step_in_epoch = 0;
};

class Checkpointer {
 public:
  Checkpointer(const TrainConfig& cfg, Communicator& comm, const Logger& log, Model& model, Adam& adam,
               size_t train_samples);

  // Rank 0 creates --checkpoint-dir when set (UserError when it cannot).
  void prepare_dir() const;

  // Collective. --resume auto: the newest usable checkpoint of --checkpoint-dir, or none (a
  // note; the model re-initialised from the seed and Adam reset, on its backend); a named file
  // must be usable (UserError otherwise). Every rank then holds rank 0's parameters, state,
  // moments and position. Returns true when a checkpoint was loaded (see resumed_from()).
  bool resume();
  const CheckpointMeta& resumed_from() const { return meta_; }

  // Collective: writes a checkpoint for `at` with this rank's partial sums of the epoch (summed
  // over the ranks here); `sync` completes Adam's moments first. Returns the path (rank 0).
  std::string write(GradientSync& sync, EpochPosition at, EpochSums local_sums);

 private:
  bool load_on_rank0();
  void check_compatible(const CheckpointMeta& m, const std::string& path) const;
  std::string config_json() const;

  const TrainConfig& cfg_;
  Communicator& comm_;
  const Logger& log_;
  Model& model_;
  Adam& adam_;
  size_t train_samples_;
  CheckpointMeta meta_;  // of the checkpoint resumed from
};

}  // namespace mnist_dist
