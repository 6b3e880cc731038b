// Start-up checks of a training run (train/run_plan.h).
#include "train/run_plan.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "train/augment.h"

namespace mnist_dist {

void validate(const TrainConfig& c, int world) {
  if (c.data_dir.empty()) throw UserError("--data is required: a directory prepared by mnist_prepare");
  if (c.epochs < 1) throw UserError("--epochs must be at least 1 (got " + std::to_string(c.epochs) + ")");
  if (c.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (c.accumulate < 1) throw UserError("--accumulate must be at least 1");
  if (c.max_steps < 0) throw UserError("--max-steps must be >= 0 (0 = no limit)");
  if (!(c.lr > 0.0f) || !std::isfinite(c.lr)) throw UserError("--lr must be a positive number");
  if (c.eval_batch_size < 1) throw UserError("--eval-batch-size must be at least 1");
  if (!(c.bucket_mb > 0.0)) throw UserError("--bucket-mb must be positive");
  if (c.grad_exchange != "auto" && c.grad_exchange != "sharded" && c.grad_exchange != "buckets")
    throw UserError("--grad-exchange must be auto, sharded or buckets (got '" + c.grad_exchange + "')");
  if (c.augment_shift < 0 || c.augment_shift > data::kMaxAugmentShift)
    throw UserError("--augment shift:" + std::to_string(c.augment_shift) + " is out of range: use " + data::augment_forms());
  if (c.checkpoint_every < 0) throw UserError("--checkpoint-every must be a step count >= 1 or 'epoch'");
  if (c.keep_checkpoints < 1) throw UserError("--keep-checkpoints must be at least 1");
  if (c.resume == "auto" && c.checkpoint_dir.empty())
    throw UserError("--resume auto needs --checkpoint-dir (where to look for checkpoints)");
  if (c.timeout_s < 0) throw UserError("--timeout must be >= 0 seconds (0 = no watchdog)");
  if (c.deterministic && !c.sync_bn)
    throw UserError("--deterministic needs --bn sync: per-rank statistics (--bn local) depend on the world size");
  if (c.batch_size < world && !c.deterministic)
    throw UserError("--batch-size " + std::to_string(c.batch_size) + " is smaller than the " +
                    std::to_string(world) + " ranks: every rank needs at least one sample per step");
}

ModelPlan plan_model(const TrainConfig& cfg, const Communicator& comm, const data::ShardReader& reader) {
  if (reader.size() == 0) throw UserError(cfg.data_dir + ": the train split is empty");
  if (static_cast<size_t>(cfg.batch_size) > reader.size())
    throw UserError("--batch-size " + std::to_string(cfg.batch_size) + " exceeds the " +
                    std::to_string(reader.size()) + " training samples of " + cfg.data_dir +
                    "; use at most " + std::to_string(reader.size()));
  ModelPlan p;
  p.input = Shape{1, 1, static_cast<int>(reader.rows()), static_cast<int>(reader.cols())};
  if (p.input.h % 4 != 0 || p.input.w % 4 != 0 || p.input.h < 12 || p.input.w < 12)
    throw UserError(cfg.data_dir + ": images are " + std::to_string(p.input.h) + "x" +
                    std::to_string(p.input.w) + "; the models need sizes divisible by 4, at least 12");
  // An evaluation pass never holds more samples than the larger evaluation split: a larger
  // --eval-batch-size gives the same passes, so the buffers are sized for what is used.
  int eval_batch = 0;
  if (comm.rank() == 0 && cfg.evaluate) {
    const size_t largest = std::max(data::ShardReader::open(cfg.data_dir, "val").size(),
                                    data::ShardReader::open(cfg.data_dir, "test").size());
    eval_batch = static_cast<int>(std::min<size_t>(static_cast<size_t>(cfg.eval_batch_size), std::max<size_t>(largest, 1)));
  }
  p.per_rank = (cfg.batch_size + comm.size() - 1) / comm.size();
  if (cfg.deterministic) {  // whole chunks per rank (EpochSampler::bounds)
    const int chunks = (cfg.batch_size + kDeterministicChunk - 1) / kDeterministicChunk;
    p.per_rank = std::min(cfg.batch_size, (chunks + comm.size() - 1) / comm.size() * kDeterministicChunk);
  }
  p.max_batch = std::max(p.per_rank, eval_batch);
  return p;
}

void setup_deterministic(const TrainConfig& cfg, data::EpochSampler& sampler, Context& ctx) {
  if (!cfg.deterministic) return;
  sampler.set_chunk(kDeterministicChunk);
  ctx.chunk = kDeterministicChunk;
}

void set_slice_chunks(Context& ctx, const data::EpochSampler& sampler, size_t global_n, int rank, int world) {
  if (ctx.chunk <= 0) return;
  const size_t chunk = static_cast<size_t>(ctx.chunk);
  ctx.first_chunk = static_cast<int>(sampler.bounds(global_n, rank, world).first / chunk);
  ctx.total_chunks = static_cast<int>((global_n + chunk - 1) / chunk);
}

}  // namespace mnist_dist
