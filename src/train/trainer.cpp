// Training loop: sampler + prefetcher → forward → fused loss → backward with bucketed,
// overlapped gradient all-reduce → Adam; rank 0 evaluates validation each epoch and test
// at the end while the other ranks wait without spinning.
#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <csignal>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "comm/grad_buckets.h"
#include "core/error.h"
#include "cuda/batch_stager.h"
#include "data_pipeline/prefetcher.h"
#include "data_pipeline/sampler.h"
#include "data_pipeline/shard_reader.h"
#include "io/checkpoint.h"
#include "io/model_io.h"
#include "io/output_file.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"
#include "train/fault_injection.h"
#include "train/replica_check.h"
#include "train/stop_signal.h"
#include "train/watchdog.h"

#include <nlohmann/json.hpp>

namespace mnist_dist {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

SplitData load_split(const std::string& dir, const std::string& split) {
  data::ShardReader reader = data::ShardReader::open(dir, split);
  reader.verify_checksums();  // contents as mnist_prepare wrote them (SHA-256 in manifest.json)
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

void validate(const TrainConfig& c, int world) {
  if (c.data_dir.empty()) throw UserError("--data is required: a directory prepared by mnist_prepare");
  if (c.epochs < 1) throw UserError("--epochs must be at least 1 (got " + std::to_string(c.epochs) + ")");
  if (c.batch_size < 1) throw UserError("--batch-size must be at least 1");
  if (c.max_steps < 0) throw UserError("--max-steps must be >= 0 (0 = no limit)");
  if (!(c.lr > 0.0f) || !std::isfinite(c.lr)) throw UserError("--lr must be a positive number");
  if (c.eval_batch_size < 1) throw UserError("--eval-batch-size must be at least 1");
  if (!(c.bucket_mb > 0.0)) throw UserError("--bucket-mb must be positive");
  if (c.grad_exchange != "auto" && c.grad_exchange != "sharded" && c.grad_exchange != "buckets")
    throw UserError("--grad-exchange must be auto, sharded or buckets (got '" + c.grad_exchange + "')");
  if (c.checkpoint_every < 0) throw UserError("--checkpoint-every must be a step count >= 1 or 'epoch'");
  if (c.keep_checkpoints < 1) throw UserError("--keep-checkpoints must be at least 1");
  if (c.resume == "auto" && c.checkpoint_dir.empty())
    throw UserError("--resume auto needs --checkpoint-dir (where to look for checkpoints)");
  if (c.timeout_s < 0) throw UserError("--timeout must be >= 0 seconds (0 = no watchdog)");
  if (c.batch_size < world)
    throw UserError("--batch-size " + std::to_string(c.batch_size) + " is smaller than the " +
                    std::to_string(world) + " ranks: every rank needs at least one sample per step");
}

}  // namespace

struct Trainer::Impl {
  Impl(const TrainConfig& c, Communicator& cm, const Logger& lg, CudaContext* cuda_ctx)
      : cfg((validate(c, cm.size()), c)),
        comm(cm),
        log(lg),
        backend(cuda_ctx != nullptr ? Backend::kCuda : Backend::kCpu),
        reader(data::ShardReader::open(c.data_dir, "train")),
        model(build_model()),
        loss(make_softmax_xent(backend)),
        adam(AdamConfig{c.lr, 0.9f, 0.999f, 1e-7f}, model.arena().param_count(), backend),
        dlogits(backend, static_cast<size_t>(model.max_batch()) * model.num_classes()),
        stager(backend == Backend::kCpu ? nullptr
                                        : std::make_unique<BatchStager>(*cuda_ctx, per_rank, model.input_shape().per_sample())),
        sampler(reader.size(), static_cast<size_t>(c.batch_size), c.seed, c.drop_last),
        reducer(comm, buckets(), model.arena().grads()),
        fail(fault_from_env("MNIST_DIST_TEST_FAIL")),
        perturb(fault_from_env("MNIST_DIST_TEST_PERTURB")),
        kill(fault_from_env("MNIST_DIST_TEST_KILL")),
        term(fault_from_env("MNIST_DIST_TEST_SIGNAL")) {
    reader.verify_checksums();  // each rank reads all of the train split over an epoch anyway
    ctx.backend = backend;
    ctx.cuda = cuda_ctx;
    ctx.threads = omp_get_max_threads();
    ctx.comm = &comm;
    ctx.sync_bn = cfg.sync_bn;
    // Every output this run will write, checked before any work (rank 0 writes them all).
    if (comm.rank() == 0) {
      check_output_file("--save", cfg.save_path, model_file_bytes(model), "model.h5");
      check_output_dir("--checkpoint-dir", cfg.checkpoint_dir, checkpoint_file_bytes(model, adam));
    }
    model.init(cfg.seed);
    // Every replica starts from rank 0's weights (equal by seed already; this makes it a rule).
    broadcast_arena();
    if (!cfg.checkpoint_dir.empty() && comm.rank() == 0) {
      std::error_code ec;
      std::filesystem::create_directories(cfg.checkpoint_dir, ec);
      if (!std::filesystem::is_directory(cfg.checkpoint_dir))
        throw UserError("--checkpoint-dir " + cfg.checkpoint_dir + " cannot be created: " + ec.message());
    }
    if (!cfg.resume.empty()) resume();
    exchange = make_exchange();
    if (comm.rank() == 0 && cfg.evaluate) {
      val = load_split(cfg.data_dir, "val");
      test = load_split(cfg.data_dir, "test");
    }
  }

  // Loads the checkpoint to resume from on rank 0 and broadcasts the state to every rank.
  void resume() {
    int64_t found = 0;  // 1 when rank 0 loaded a checkpoint
    if (comm.rank() == 0) {
      std::vector<std::string> candidates;
      if (cfg.resume == "auto") candidates = list_checkpoints(cfg.checkpoint_dir);
      else candidates.push_back(cfg.resume);
      // A checkpoint without its SHA-256 sidecar (written before sidecars) is read only when
      // named explicitly, after a warning; --resume auto skips it like any unusable one.
      const MissingSidecar missing = cfg.resume == "auto" ? MissingSidecar::kRefuse : MissingSidecar::kAllow;
      for (const std::string& path : candidates) {
        try {
          if (missing == MissingSidecar::kAllow && std::filesystem::is_regular_file(path) && !has_sidecar(path))
            log.notice("%s", unverified_warning(path).c_str());
          const CheckpointMeta m = read_checkpoint(path, model, adam, missing);
          check_compatible(m, path);
          meta = m;
          found = 1;
          log.info("mnist_dist: resuming from %s (global step %lld, epoch %d, step %lld of it; "
                   "written by %lld rank(s))",
                   path.c_str(), static_cast<long long>(m.global_step), m.epoch + 1,
                   static_cast<long long>(m.step_in_epoch), static_cast<long long>(m.world_size));
          break;
        } catch (const UserError& e) {
          if (cfg.resume != "auto") throw;  // an explicit file must be usable
          log.notice("warning: skipping checkpoint: %s", e.what());
        }
      }
      if (!found) {
        // A failed read may have overwritten part of the model: start clean.
        model.init(cfg.seed);
        adam = Adam(adam.config(), model.arena().param_count());
        log.notice("note: no valid checkpoint in %s; starting from scratch", cfg.checkpoint_dir.c_str());
      }
    }
    comm.broadcast(&found, sizeof found, 0);
    if (!found) {
      broadcast_arena();  // rank 0 re-initialised
      return;
    }
    broadcast_arena();
    std::vector<float> m(adam.count()), v(adam.count());
    adam.download_moments(m.data(), v.data());
    comm.broadcast(m.data(), m.size() * sizeof(float), 0);
    comm.broadcast(v.data(), v.size() * sizeof(float), 0);
    adam.upload_moments(m.data(), v.data());
    int64_t pos[4] = {meta.global_step, meta.epoch, meta.step_in_epoch, adam.steps()};
    comm.broadcast(pos, sizeof pos, 0);
    comm.broadcast(meta.epoch_sums, sizeof meta.epoch_sums, 0);
    meta.global_step = pos[0];
    meta.epoch = static_cast<int>(pos[1]);
    meta.step_in_epoch = pos[2];
    adam.set_steps(pos[3]);
    resumed = true;
  }

  // Rank 0's parameters and state to every rank, through the host copies.
  void broadcast_arena() {
    ParamArena& arena = model.arena();
    arena.sync_to_host();
    comm.broadcast(arena.host_params(), arena.param_count() * sizeof(float), 0);
    comm.broadcast(arena.host_state(), arena.state_count() * sizeof(float), 0);
    arena.sync_to_device();
  }

  void verify(const std::string& when) {
    if (comm.size() == 1) return;
    model.arena().sync_to_host();
    verify_replicas(comm, model.arena(), when, cfg.sync_bn);
  }

  void check_compatible(const CheckpointMeta& m, const std::string& path) const {
    if (m.batch_size != cfg.batch_size)
      throw UserError(path + " was written with --batch-size " + std::to_string(m.batch_size) +
                      "; resume with the same global batch (the world size may change)");
    if (m.seed != cfg.seed)
      throw UserError(path + " was written with --seed " + std::to_string(m.seed) + "; resume with the same seed");
    if (m.train_samples != static_cast<int64_t>(reader.size()) || m.drop_last != cfg.drop_last)
      throw UserError(path + " was written for a training split of " + std::to_string(m.train_samples) +
                      " samples" + (m.drop_last ? " with --drop-last" : "") + "; this data has " +
                      std::to_string(reader.size()));
  }

  std::string config_json() const {
    nlohmann::json j = {{"model", cfg.model},         {"epochs", cfg.epochs},
                        {"batch_size", cfg.batch_size}, {"lr", cfg.lr},
                        {"seed", cfg.seed},           {"bn", cfg.sync_bn ? "sync" : "local"},
                        {"drop_last", cfg.drop_last}, {"data", cfg.data_dir},
                        {"world_size", comm.size()}};
    return j.dump();
  }

  // Writes a checkpoint for the position (epoch, step_in_epoch) with this epoch's partial
  // sums (collective: every rank calls it; rank 0 writes).
  std::string checkpoint(int epoch, int64_t step_in_epoch, const double* local_sums) {
    double sums[3] = {local_sums[0], local_sums[1], local_sums[2]};
    comm.allreduce_sum(sums, 3);
    if (exchange) {  // each rank's moments are current on its shard only
      gather_moments();
    }
    std::string path;
    if (comm.rank() == 0) {
      CheckpointMeta m;
      m.global_step = adam.steps();
      m.epoch = epoch;
      m.step_in_epoch = step_in_epoch;
      std::copy_n(sums, 3, m.epoch_sums);
      m.model = cfg.model;
      m.batch_size = cfg.batch_size;
      m.seed = cfg.seed;
      m.train_samples = static_cast<int64_t>(reader.size());
      m.drop_last = cfg.drop_last;
      m.world_size = comm.size();
      m.config_json = config_json();
      path = (std::filesystem::path(cfg.checkpoint_dir) / checkpoint_file_name(m.global_step)).string();
      model.arena().sync_to_host();
      try {
        write_checkpoint(path, model, adam, m);
      } catch (const NoSpaceError& e) {
        throw NoSpaceError(std::string(e.what()) + "; the checkpoints written before are intact in " +
                           cfg.checkpoint_dir + " (--resume auto continues from the newest)");
      }
      prune_checkpoints(cfg.checkpoint_dir, cfg.keep_checkpoints);
    }
    comm.barrier();
    return path;
  }

  // True on every rank when any rank got SIGTERM/SIGUSR1.
  bool agree_on_stop() {
    double flag = stop_requested() ? 1.0 : 0.0;
    if (comm.size() > 1) comm.allreduce_sum(&flag, 1);
    return flag > 0.0;
  }

  Model build_model() {
    if (reader.size() == 0) throw UserError(cfg.data_dir + ": the train split is empty");
    if (static_cast<size_t>(cfg.batch_size) > reader.size())
      throw UserError("--batch-size " + std::to_string(cfg.batch_size) + " exceeds the " +
                      std::to_string(reader.size()) + " training samples of " + cfg.data_dir +
                      "; use at most " + std::to_string(reader.size()));
    const Shape input{1, 1, static_cast<int>(reader.rows()), static_cast<int>(reader.cols())};
    if (input.h % 4 != 0 || input.w % 4 != 0 || input.h < 12 || input.w < 12)
      throw UserError(cfg.data_dir + ": images are " + std::to_string(input.h) + "x" +
                      std::to_string(input.w) + "; the models need sizes divisible by 4, at least 12");
    // An evaluation pass never holds more samples than the larger evaluation split: a larger
    // --eval-batch-size gives the same passes, so the buffers are sized for what is used.
    int eval_batch = 0;
    if (comm.rank() == 0 && cfg.evaluate) {
      const size_t largest = std::max(data::ShardReader::open(cfg.data_dir, "val").size(),
                                      data::ShardReader::open(cfg.data_dir, "test").size());
      eval_batch = static_cast<int>(std::min<size_t>(static_cast<size_t>(cfg.eval_batch_size), std::max<size_t>(largest, 1)));
    }
    const int world = comm.size();
    per_rank = (cfg.batch_size + world - 1) / world;  // no slice is larger than ceil(B / W)
    const int max_batch = std::max(per_rank, eval_batch);
    return Model(cfg.model, backend, input, reader.num_classes(), max_batch);
  }

  // The sharded exchange when it applies (collective: every rank decides alike).
  std::unique_ptr<ShardedExchange> make_exchange() {
    if (cfg.grad_exchange == "buckets" || comm.size() == 1) return nullptr;
    std::string why = "the CUDA backend all-reduces gradients with NCCL";
    std::unique_ptr<ShardedExchange> ex;
    if (backend == Backend::kCpu) ex = comm.make_sharded_exchange(model.arena().param_count(), &why);
    if (!ex) {
      if (cfg.grad_exchange == "sharded")
        throw UserError("--grad-exchange sharded is not available here: " + why + " (use auto or buckets)");
      if (backend == Backend::kCpu && comm.local_size() > 1)  // it would have applied: say why not
        log.notice("note: gradients go through the bucketed all-reduce: %s", why.c_str());
      return nullptr;
    }
    ex->share_params(model.arena().params());  // equal on every rank (broadcast or resumed)
    model.arena().attach(ex->params(), ex->grads());
    layer_parts_.clear();
    owned_.clear();
    if (ex->per_layer() && model.num_layers() <= ShardedExchange::kReadySlots) {
      // Per layer, each of the L ranks of the node owns the r-th 1/L of every layer's range
      // (whole 64-byte lines): every rank updates its part of a layer right after that layer's
      // backward, so the ranks' Adam work runs side by side instead of one after the other.
      const size_t L = static_cast<size_t>(comm.local_size()), r = static_cast<size_t>(comm.local_rank());
      for (size_t i = 0; i < model.num_layers(); ++i) {
        const auto [a, b] = model.grad_range(i);
        const size_t per = (b - a + 16 * L - 1) / (16 * L) * 16;
        const size_t lo = std::min(b, a + per * r), hi = std::min(b, a + per * (r + 1));
        layer_parts_.emplace_back(lo, hi);
        if (hi > lo) owned_.emplace_back(lo, hi);
      }
    }
    return ex;
  }

  // Normal end of run (collective): gradients and moments complete on every rank again, the
  // arena back on its own buffers, the shared windows freed.
  void close_exchange() {
    if (!exchange) return;
    if (!grads_summed) exchange->reduce_shard();  // the last step's gradient, as with buckets
    exchange->gather_full(model.arena().grads());
    gather_moments();
    model.arena().detach();
    exchange->close();
    exchange.reset();
  }

  // Adam's moments, current only where this rank updates, complete on every rank (collective).
  void gather_moments() {
    if (!layer_parts_.empty()) {
      exchange->gather_owned(adam.m(), owned_);
      exchange->gather_owned(adam.v(), owned_);
    } else {
      exchange->gather_full(adam.m());
      exchange->gather_full(adam.v());
    }
  }

  std::vector<Bucket> buckets() {
    std::vector<std::pair<size_t, size_t>> ranges;
    for (size_t i = 0; i < model.num_layers(); ++i) ranges.push_back(model.grad_range(i));
    const size_t floats = std::max<size_t>(1, static_cast<size_t>(cfg.bucket_mb * 1048576.0 / sizeof(float)));
    return make_buckets(ranges, floats);
  }

  // One optimizer step on this rank's slice; returns this rank's loss statistics.
  LossStats step(const data::Batch& b) {
    ParamArena& arena = model.arena();
    const float scale = 1.0f / static_cast<float>(b.global_n);
    // An empty slice (last partial batch, more ranks than samples) still takes part in every
    // collective (SyncBN, buckets) and contributes zero gradients.
    const float* x = b.images.data();
    const uint8_t* y = b.labels.data();
    if (stager) {  // GPU: pinned copy + async upload, overlapped with the previous step's tail
      const BatchStager::Staged d = stager->stage(x, y, b.n);
      x = d.images;
      y = d.labels;
    }
    const Tensor& logits = model.forward(ctx, x, b.n, true);
    const LossStats s = loss->run(ctx, logits, y, scale, dlogits.data(), nullptr);
    if (!std::isfinite(s.loss_sum))
      throw TrainingDiverged("training diverged: non-finite loss at epoch " + std::to_string(b.epoch + 1) +
                             ", step " + std::to_string(b.step + 1) + " (global step " +
                             std::to_string(adam.steps() + 1) +
                             "); no checkpoint of these weights is written (try a smaller --lr)");
    if (exchange && !layer_parts_.empty()) {
      // One node: this rank's part of a layer is updated as soon as every rank of the node has
      // finished that layer's backward (summing their gradient buffers as Adam reads, as
      // below), while the layer's gradients are still in cache; all_gather ends the step.
      // Per element the same update as one step_sum after a barrier, bit for bit.
      int n = 0;
      const float* const* node = exchange->node_grads(&n);
      const long long step_no = static_cast<long long>(adam.steps()) + 1;
      adam.begin_step();
      model.backward(ctx, dlogits.data(), [&](int layer) {
        exchange->mark_ready(layer, step_no);
        const auto [b, e] = layer_parts_[static_cast<size_t>(layer)];
        if (b >= e) return;
        const auto c0 = Clock::now();
        exchange->wait_ready(layer, step_no);
        comm_seconds += seconds_since(c0);
        adam.update_sum(arena.params(), node, n, b, e);
      });
      grads_summed = false;
      const auto c1 = Clock::now();
      exchange->all_gather();
      comm_seconds += seconds_since(c1);
      return s;
    }
    if (exchange) {  // sum of this rank's shard over all ranks, Adam on it, shards to everyone
      model.backward(ctx, dlogits.data(), [](int) {});
      const auto c0 = Clock::now();
      exchange->wait_grads();
      comm_seconds += seconds_since(c0);
      const size_t sb = exchange->shard_begin(), se = exchange->shard_end();
      int n = 0;
      if (const float* const* node = exchange->node_grads(&n)) {  // sum as Adam reads
        adam.step_sum(arena.params(), node, n, sb, se);
        grads_summed = false;
      } else {
        exchange->reduce_shard();
        adam.step(arena.params(), arena.grads(), sb, se);
        grads_summed = true;
      }
      const auto c1 = Clock::now();
      exchange->all_gather();
      comm_seconds += seconds_since(c1);
      return s;
    }
    if (comm.size() == 1 && backend == Backend::kCpu) {
      // One rank: a layer's gradients are final when its backward returns; Adam updates its
      // range then, while they (and the layer's weights, just read) are still in cache. The
      // same element-wise step as one Adam::step afterwards (bit-equal; layers' ranges cover
      // every parameter but the alignment padding, which stays zero either way).
      adam.begin_step();
      model.backward(ctx, dlogits.data(), [&](int layer) {
        const auto r = model.grad_range(static_cast<size_t>(layer));
        adam.update(arena.params(), arena.grads(), r.first, r.second);
      });
      return s;
    }
    model.backward(ctx, dlogits.data(),
                   [&](int layer) { reducer.ready_from(model.grad_range(static_cast<size_t>(layer)).first); });
    // Σ over ranks of the per-rank gradients of (global-mean loss) = the global gradient.
    const auto c0 = Clock::now();
    reducer.finish();
    comm_seconds += seconds_since(c0);
    adam.step(ctx, arena.params(), arena.grads());
    return s;
  }

  void log_start() {
    log.info("mnist_dist: world %d rank(s) on %d node(s), %d per node; device %s; "
             "%d thread(s) per rank; comm %s; data %s (train %zu, val %zu, test %zu); "
             "global batch %d, per rank %d",
             comm.size(), comm.num_nodes(), comm.local_size(),
             backend == Backend::kCuda ? "cuda, one GPU per rank (by local rank)" : "cpu on every rank",
             ctx.threads, comm.name().c_str(),
             cfg.data_dir.c_str(), reader.size(), val.n, test.n, cfg.batch_size, per_rank);
    char how[160];
    if (exchange)
      std::snprintf(how, sizeof how, "gradients sharded over shared memory (%d per node, %.1f MB shard)",
                    comm.local_size(), static_cast<double>(exchange->shard_end() - exchange->shard_begin()) * 4e-6);
    else
      std::snprintf(how, sizeof how, "%zu gradient buckets of <= %g MiB", reducer.buckets().size(), cfg.bucket_mb);
    log.info("mnist_dist: model %s, %zu trainable parameters; bn %s; Adam lr %g; %s",
             cfg.model.c_str(), model.arena().trainable_scalars(), cfg.sync_bn ? "sync" : "local",
             static_cast<double>(cfg.lr), how);
  }

  RunInfo run_info() const {
    RunInfo r;
    r.world = comm.size();
    r.nodes = comm.num_nodes();
    r.ranks_per_node = comm.local_size();
    r.threads = ctx.threads;
    r.comm = comm.name();
    r.train = reader.size();
    r.val = val.n;
    r.test = test.n;
    r.steps_per_epoch = sampler.steps_per_epoch();
    r.trainable_parameters = model.arena().trainable_scalars();
    return r;
  }

  template <typename F>
  void notify(F&& f) {
    if (comm.rank() == 0)
      for (TrainObserver* o : observers) f(*o);
  }

  TrainResult run() {
    TrainResult result = train_loop();
    close_exchange();
    return result;
  }

  TrainResult train_loop() {
    log_start();
    notify([&](TrainObserver& o) { o.on_train_begin(cfg, run_info()); });
    ParamArena& arena = model.arena();
    TrainResult result;
    Watchdog watchdog(cfg.timeout_s);
    int first_epoch = 0;
    size_t first_step = 0;
    if (resumed) {
      result.steps = meta.global_step;
      first_epoch = meta.epoch;
      first_step = static_cast<size_t>(meta.step_in_epoch);
      sampler.set_epoch(first_epoch);
      if (first_step >= sampler.steps_per_epoch()) ++first_epoch, first_step = 0;
    }
    bool stop = cfg.max_steps > 0 && result.steps >= cfg.max_steps;
    for (int epoch = first_epoch; epoch < cfg.epochs && !stop; ++epoch) {
      sampler.set_epoch(epoch);
      const size_t begin = epoch == first_epoch ? first_step : 0;
      size_t last_step = sampler.steps_per_epoch();
      if (cfg.max_steps > 0)
        last_step = std::min<size_t>(last_step, begin + static_cast<size_t>(cfg.max_steps - result.steps));
      const auto t0 = Clock::now();
      comm_seconds = 0.0;
      double sums[3] = {0.0, 0.0, 0.0};  // loss sum, correct, count over this rank's samples
      if (resumed && epoch == meta.epoch && begin > 0 && comm.rank() == 0)
        std::copy_n(meta.epoch_sums, 3, sums);  // the epoch's metrics continue where they were
      data::Prefetcher prefetch(reader, sampler, comm.rank(), comm.size(), begin, last_step);
      int64_t steps = static_cast<int64_t>(begin);
      while (const data::Batch* b = prefetch.next()) {
        watchdog.beat("training step");
        const LossStats s = step(*b);
        sums[0] += s.loss_sum;
        sums[1] += static_cast<double>(s.correct);
        sums[2] += static_cast<double>(s.count);
        ++steps;
        ++result.steps;
        if (fail.hits(comm.rank(), result.steps))
          throw std::runtime_error("injected failure at step " + std::to_string(result.steps) +
                                   " (MNIST_DIST_TEST_FAIL)");
        if (perturb.hits(comm.rank(), result.steps)) {
          arena.sync_to_host();
          arena.host_params()[0] += 1e-3f;
          arena.sync_to_device();
        }
        if (kill.hits(comm.rank(), result.steps)) std::raise(SIGKILL);
        if (term.hits(comm.rank(), result.steps)) std::raise(SIGTERM);
        if (cfg.hash_check_every > 0 && result.steps % cfg.hash_check_every == 0)
          verify("at step " + std::to_string(result.steps));
        if (!cfg.checkpoint_dir.empty() && cfg.checkpoint_every > 0 &&
            result.steps % cfg.checkpoint_every == 0 && static_cast<size_t>(steps) < last_step)
          result.last_checkpoint = checkpoint(epoch, steps, sums);
        if (agree_on_stop()) {
          result.preempted = true;
          if (!cfg.checkpoint_dir.empty()) result.last_checkpoint = checkpoint(epoch, steps, sums);
          log.notice("stopped by a signal (SIGTERM/SIGUSR1) at global step %lld%s%s",
                     static_cast<long long>(result.steps),
                     cfg.checkpoint_dir.empty() ? " (no --checkpoint-dir: nothing saved)" : "; checkpoint ",
                     result.last_checkpoint.c_str());
          result.steps = adam.steps();
          return result;
        }
        const bool last = static_cast<size_t>(steps) == last_step;
        if ((cfg.progress_every > 0 && steps % cfg.progress_every == 0) || last) {
          double r[3] = {sums[0], sums[1], sums[2]};
          comm.allreduce_sum(r, 3);
          Progress p;
          p.epoch = epoch + 1;
          p.step = static_cast<size_t>(steps);
          p.steps_per_epoch = last_step;
          p.global_step = result.steps;
          p.loss = r[2] > 0 ? r[0] / r[2] : 0.0;
          p.accuracy = r[2] > 0 ? r[1] / r[2] : 0.0;
          p.seconds = seconds_since(t0);
          notify([&](TrainObserver& o) { o.on_progress(p); });
        }
      }
      watchdog.beat("end of epoch");
      EpochMetrics m;
      m.epoch = epoch + 1;
      m.seconds = seconds_since(t0);
      m.data_wait_seconds = prefetch.wait_seconds();
      m.comm_seconds = comm_seconds;
      m.compute_seconds = std::max(0.0, m.seconds - m.data_wait_seconds - m.comm_seconds);
      m.lr = cfg.lr;
      m.steps = steps;
      double local_sums[3] = {sums[0], sums[1], sums[2]};
      comm.allreduce_sum(sums, 3);
      m.loss = sums[2] > 0 ? sums[0] / sums[2] : 0.0;
      m.accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
      m.samples_per_second = sums[2] / std::max(m.seconds, 1e-9);
      if (cfg.evaluate) {
        double v[2] = {0.0, 0.0};
        if (comm.rank() == 0) {
          const EvalResult r = evaluate(ctx, model, *loss, val);
          v[0] = r.loss;
          v[1] = r.accuracy;
        }
        comm.broadcast_idle(v, sizeof v, 0);
        m.val_loss = v[0];
        m.val_accuracy = v[1];
        watchdog.beat("validation");
      }
      result.epochs.push_back(m);
      const bool epoch_done = static_cast<size_t>(steps) == sampler.steps_per_epoch();
      const bool last_iteration = epoch + 1 == cfg.epochs || (cfg.max_steps > 0 && result.steps >= cfg.max_steps);
      if (!cfg.checkpoint_dir.empty() &&
          ((cfg.checkpoint_every == 0 && epoch_done) ||
           (cfg.checkpoint_every > 0 && result.steps % cfg.checkpoint_every == 0) || last_iteration)) {
        // Always at the end of the run too, so that a run cut short by --max-steps can go on.
        const double zeros[3] = {0.0, 0.0, 0.0};
        result.last_checkpoint = epoch_done ? checkpoint(epoch + 1, 0, zeros) : checkpoint(epoch, steps, local_sums);
      }
      notify([&](TrainObserver& o) { o.on_epoch_end(m); });
      if (cfg.max_steps > 0 && result.steps >= cfg.max_steps) {
        stop = true;
        log.info("mnist_dist: stopped after --max-steps %lld optimizer steps",
                 static_cast<long long>(cfg.max_steps));
      }
    }
    result.steps = adam.steps();
    verify("at the end of training");
    if (cfg.evaluate) {
      double t[3] = {0.0, 0.0, 0.0};
      if (comm.rank() == 0) {
        std::vector<int32_t> predictions;
        result.test = evaluate(ctx, model, *loss, test, &predictions);
        notify([&](TrainObserver& o) { o.on_test(result.test, predictions, test); });
        t[0] = result.test.loss;
        t[1] = result.test.accuracy;
        t[2] = static_cast<double>(result.test.count);
        if (!cfg.save_path.empty()) {
          arena.sync_to_host();
          save_model(model, cfg.save_path);
          log.info("mnist_dist: model written to %s", cfg.save_path.c_str());
        }
      }
      comm.broadcast_idle(t, sizeof t, 0);
      result.test = EvalResult{t[0], t[1], static_cast<int64_t>(t[2])};
    }
    notify([&](TrainObserver& o) { o.on_train_end(result); });
    return result;
  }

  TrainConfig cfg;
  Communicator& comm;
  const Logger& log;
  Backend backend;
  Context ctx;
  int per_rank = 0;
  data::ShardReader reader;
  Model model;
  std::unique_ptr<SoftmaxCrossEntropy> loss;
  Adam adam;
  Buffer<float> dlogits;
  std::unique_ptr<BatchStager> stager;  // device staging of the slices (GPU backend only)
  data::EpochSampler sampler;
  GradientReducer reducer;
  std::unique_ptr<ShardedExchange> exchange;  // CPU ranks sharing a node (else buckets)
  // Per-layer sharded Adam (one node): this rank's part of each layer, and those parts as a list.
  std::vector<std::pair<size_t, size_t>> layer_parts_, owned_;
  bool grads_summed = true;  // exchange: grads()[shard] holds the sum (not just this rank's)
  FaultPoint fail, perturb, kill, term;
  SplitData val, test;
  std::vector<TrainObserver*> observers;
  double comm_seconds = 0.0;
  bool resumed = false;
  CheckpointMeta meta;  // of the checkpoint resumed from
};

Trainer::Trainer(const TrainConfig& config, Communicator& comm, const Logger& log, CudaContext* cuda)
    : impl_(std::make_unique<Impl>(config, comm, log, cuda)) {}
Trainer::~Trainer() = default;
void Trainer::add_observer(TrainObserver* observer) { impl_->observers.push_back(observer); }
TrainResult Trainer::run() { return impl_->run(); }
Model& Trainer::model() { return impl_->model; }

TrainResult train(const TrainConfig& config, Communicator& comm, const Logger& log,
                  const std::vector<TrainObserver*>& observers, CudaContext* cuda) {
  Trainer trainer(config, comm, log, cuda);
  for (TrainObserver* o : observers) trainer.add_observer(o);
  return trainer.run();
}

}  // namespace mnist_dist
