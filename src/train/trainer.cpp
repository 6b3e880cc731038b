// Training loop: sampler + prefetcher → forward → fused loss → backward → gradient sum over
// ranks → Adam; rank 0 evaluates validation each epoch and test at the end.
#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "data_pipeline/prefetcher.h"
#include "data_pipeline/sampler.h"
#include "data_pipeline/shard_reader.h"
#include "io/model_io.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"
#include "train/replica_check.h"

namespace mnist_dist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

SplitData load_split(const std::string& dir, const std::string& split) {
  data::ShardReader reader = data::ShardReader::open(dir, split);
  SplitData d;
  d.n = reader.size();
  const size_t pixels = static_cast<size_t>(reader.rows()) * reader.cols();
  std::vector<uint8_t> raw(d.n * pixels);
  d.labels.resize(d.n);
  if (d.n > 0) reader.read_range(0, d.n, raw.data(), d.labels.data());
  d.images.resize(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) d.images[i] = raw[i] * (1.0f / 255.0f);
  return d;
}

void validate(const TrainConfig& c) {
  if (c.data_dir.empty()) throw UserError("--data is required: a directory prepared by mnist_prepare");
  if (c.epochs < 1) throw UserError("--epochs must be at least 1 (got " + std::to_string(c.epochs) + ")");
  if (c.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (c.max_steps < 0) throw UserError("--max-steps must be >= 0 (0 = no limit)");
  if (!(c.lr > 0.0f) || !std::isfinite(c.lr)) throw UserError("--lr must be a positive number");
  if (c.eval_batch_size < 1) throw UserError("--eval-batch-size must be at least 1");
}

}  // namespace

TrainResult train(const TrainConfig& config, Communicator& comm, const Logger& log) {
  validate(config);
  const int rank = comm.rank(), world = comm.size();
  if (config.batch_size < world)
    throw UserError("--batch-size " + std::to_string(config.batch_size) + " is smaller than the " +
                    std::to_string(world) + " ranks: every rank needs at least one sample per step");

  data::ShardReader train_reader = data::ShardReader::open(config.data_dir, "train");
  if (train_reader.size() == 0) throw UserError(config.data_dir + ": the train split is empty");
  const Shape input{1, 1, static_cast<int>(train_reader.rows()), static_cast<int>(train_reader.cols())};
  if (input.h % 4 != 0 || input.w % 4 != 0 || input.h < 12 || input.w < 12)
    throw UserError(config.data_dir + ": images are " + std::to_string(input.h) + "x" +
                    std::to_string(input.w) + "; the models need sizes divisible by 4, at least 12");

  // Per-rank batch never exceeds ceil(B / W); evaluation may use a larger batch on rank 0.
  const int per_rank = (config.batch_size + world - 1) / world;
  const int max_batch = std::max(per_rank, rank == 0 ? config.eval_batch_size : 0);
  Context ctx;
  ctx.threads = omp_get_max_threads();
  ctx.comm = &comm;
  ctx.sync_bn = config.sync_bn;

  Model model(config.model, Backend::kCpu, input, train_reader.num_classes(), max_batch);
  model.init(config.seed);
  ParamArena& arena = model.arena();
  // Every replica starts from rank 0's weights (identical by seed already; this makes it a rule).
  comm.broadcast(arena.params(), arena.param_count() * sizeof(float), 0);
  comm.broadcast(arena.state(), arena.state_count() * sizeof(float), 0);

  auto loss = make_softmax_xent(Backend::kCpu);
  Adam adam(AdamConfig{config.lr, 0.9f, 0.999f, 1e-7f}, arena.param_count());
  AlignedVector<float> dlogits(static_cast<size_t>(max_batch) * model.num_classes());

  SplitData val, test;
  if (rank == 0) {
    val = load_split(config.data_dir, "val");
    test = load_split(config.data_dir, "test");
  }
  data::EpochSampler sampler(train_reader.size(), static_cast<size_t>(config.batch_size),
                             config.seed, config.drop_last);
  if (sampler.steps_per_epoch() == 0)
    throw UserError("--batch-size " + std::to_string(config.batch_size) + " exceeds the " +
                    std::to_string(train_reader.size()) + " training samples with drop_last");

  log.info("mnist_dist: model %s, %zu trainable parameters; %d rank(s) x %d thread(s), cpu; "
           "global batch %d (%d per rank); train %zu, val %zu, test %zu samples; bn %s",
           config.model.c_str(), arena.trainable_scalars(), world, ctx.threads, config.batch_size,
           per_rank, train_reader.size(), val.n, test.n, config.sync_bn ? "sync" : "local");

  TrainResult result;
  bool stop = false;
  for (int epoch = 0; epoch < config.epochs && !stop; ++epoch) {
    sampler.set_epoch(epoch);
    size_t last_step = sampler.steps_per_epoch();
    if (config.max_steps > 0)
      last_step = std::min<size_t>(last_step, static_cast<size_t>(config.max_steps - result.steps));
    const auto t0 = Clock::now();
    double sums[3] = {0.0, 0.0, 0.0};  // loss sum, correct, count over this rank's samples
    data::Prefetcher prefetch(train_reader, sampler, rank, world, 0, last_step);
    int64_t steps = 0;
    while (const data::Batch* b = prefetch.next()) {
      const float scale = 1.0f / static_cast<float>(b->global_n);
      LossStats s{};
      if (b->n > 0) {
        const Tensor& logits = model.forward(ctx, b->images.data(), b->n, true);
        s = loss->run(ctx, logits, b->labels.data(), scale, dlogits.data(), nullptr);
        model.backward(ctx, dlogits.data());
      }
      if (!std::isfinite(s.loss_sum))
        throw UserError("training diverged: non-finite loss at epoch " + std::to_string(epoch + 1) +
                        ", step " + std::to_string(b->step + 1) + " (try a smaller --lr)");
      // Σ over ranks of the per-rank gradients of (global-mean loss) = the global gradient.
      comm.allreduce_sum(arena.grads(), arena.param_count());
      adam.step(arena.params(), arena.grads());
      sums[0] += s.loss_sum;
      sums[1] += static_cast<double>(s.correct);
      sums[2] += static_cast<double>(s.count);
      ++steps;
      ++result.steps;
      if (config.hash_check_every > 0 && result.steps % config.hash_check_every == 0)
        verify_replicas(comm, arena, ("at step " + std::to_string(result.steps)).c_str());
    }
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.seconds = seconds_since(t0);
    m.data_wait_seconds = prefetch.wait_seconds();
    m.steps = steps;
    comm.allreduce_sum(sums, 3);
    m.loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
    m.accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
    m.samples_per_second = sums[2] / std::max(m.seconds, 1e-9);
    double v[2] = {0.0, 0.0};
    if (rank == 0) {
      const EvalResult r = evaluate(ctx, model, *loss, val);
      v[0] = r.loss;
      v[1] = r.accuracy;
    }
    comm.broadcast(v, sizeof v, 0);
    m.val_loss = v[0];
    m.val_accuracy = v[1];
    log.info("Epoch %d/%d - %.2fs - %.0f samples/s - loss: %.4f - accuracy: %.4f - val_loss: %.4f"
             " - val_accuracy: %.4f - data wait %.3fs",
             m.epoch, config.epochs, m.seconds, m.samples_per_second, m.loss, m.accuracy,
             m.val_loss, m.val_accuracy, m.data_wait_seconds);
    result.epochs.push_back(m);
    if (config.max_steps > 0 && result.steps >= config.max_steps) {
      stop = true;
      log.info("mnist_dist: stopped after --max-steps %lld optimizer steps",
               static_cast<long long>(config.max_steps));
    }
  }
  verify_replicas(comm, arena, "at the end of training");

  if (rank == 0) {
    result.test = evaluate(ctx, model, *loss, test);
    if (!config.save_path.empty()) {
      save_model(model, config.save_path);
      log.info("mnist_dist: model written to %s", config.save_path.c_str());
    }
  }
  log.result("Test loss: %.4f", result.test.loss);
  log.result("Test accuracy: %.4f", result.test.accuracy);
  return result;
}

}  // namespace mnist_dist
