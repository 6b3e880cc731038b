// What a training run is checked against before any work: the flags among themselves and
// against the world size, and the data against the model (its input and batch sizes).
#pragma once

#include "comm/communicator.h"
#include "core/tensor.h"
#include "core/context.h"
#include "data_pipeline/sampler.h"
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

// --deterministic (docs/determinism.md): the sampler hands out whole chunks and the layers sum
// per chunk (ctx.chunk; ctx.exact_grads is set by make_exact_sync). Nothing without the flag.
void setup_deterministic(const TrainConfig& cfg, data::EpochSampler& sampler, Context& ctx);
// Before each training pass under --deterministic: which chunks of the global batch of
// `global_n` samples this rank's slice holds (ctx.first_chunk, ctx.total_chunks).
void set_slice_chunks(Context& ctx, const data::EpochSampler& sampler, size_t global_n, int rank, int world);

}  // namespace mnist_dist
