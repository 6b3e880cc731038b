// What a training run is checked against before any work: the flags among themselves and
// against the world size, and the data against the model (its input and batch sizes).
#pragma once

#include "comm/communicator.h"
#include "core/tensor.h"
#include "data_pipeline/shard_reader.h"
#include "train/trainer.h"

namespace mnist_dist {

// UserError naming the flag and the fix.
void validate(const TrainConfig& c, int world);

// The model's input and the batch sizes its buffers are built for.
struct ModelPlan {
  Shape input;
  int per_rank = 0;   // samples of one rank's slice: no slice is larger than ceil(B / W) (whole chunks with --deterministic)
  int max_batch = 0;  // the larger of a slice and an evaluation pass
};

// UserError for an empty train split, a batch larger than it, or images the models can't take.
ModelPlan plan_model(const TrainConfig& cfg, const Communicator& comm, const data::ShardReader& reader);

}  // namespace mnist_dist
