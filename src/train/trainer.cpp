// Training loop: sampler + prefetcher → forward → fused loss → backward with the gradient
// exchange chosen at start-up (train/gradient_sync.h) → Adam; checkpoints through
// train/checkpointer.h; rank 0 evaluates validation each epoch and test at the end while the
// other ranks wait without spinning.
#include "train/trainer.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>

#include "core/error.h"
#include "core/rng.h"
#include "cuda/batch_stager.h"
#include "cuda/cuda_runtime_api.h"
#include "data_pipeline/sampler.h"
#include "data_pipeline/shard_reader.h"
#include "io/model_io.h"
#include "io/output_file.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"
#include "train/checkpointer.h"
#include "train/grad_accumulator.h"
#include "train/gradient_sync.h"
#include "train/prefetcher.h"
#include "train/replica_check.h"
#include "train/run_plan.h"
#include "train/split_loader.h"
#include "train/stop_signal.h"
#include "train/watchdog.h"

namespace mnist_dist {
namespace {

using Clock = std::chrono::steady_clock;

// The optimizer steps a run takes from step 0 (the horizon of a cosine schedule).
int64_t planned_steps(const TrainConfig& c, size_t steps_per_epoch) {
  const int64_t per_epoch = (static_cast<int64_t>(steps_per_epoch) + c.accumulate - 1) / c.accumulate;
  const int64_t all = per_epoch * c.epochs;
  return c.max_steps > 0 ? std::min(all, c.max_steps) : all;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rank 0's evaluation as every rank receives it.
struct Scores {
  double loss = 0.0;
  double accuracy = 0.0;
  double count = 0.0;
};

EpochSums operator+(EpochSums a, const LossStats& s) {
  a.loss_sum += s.loss_sum;
  a.correct += static_cast<double>(s.correct);
  a.count += static_cast<double>(s.count);
  return a;
}

// The key of a training pass's noise (dropout): the run's seed, the epoch and the micro-step of
// the epoch, so that a resumed run or another world size draws the same masks.
uint64_t noise_key(uint64_t seed, int epoch, size_t micro_step) {
  return mix64(mix64(seed ^ 0x6A09E667F3BCC909ull) ^ (static_cast<uint64_t>(epoch) << 40) ^ micro_step);
}

// One epoch's steps [begin, last_step) and what they summed so far on this rank.
struct EpochRun {
  int epoch = 0;
  size_t begin = 0, last_step = 0;
  int64_t steps = 0;  // steps of the epoch done (from its start)
  EpochSums sums;
  Clock::time_point t0 = Clock::now();
  double data_wait_seconds = 0.0;  // waiting for the prefetcher
};

}  // namespace

struct Trainer::Impl {
  Impl(const TrainConfig& c, Communicator& cm, const Logger& lg, CudaContext* cuda_ctx)
      : cfg((validate(c, cm.size()), c)),
        comm(cm),
        log(lg),
        backend(cuda_ctx != nullptr ? Backend::kCuda : Backend::kCpu),
        reader(data::ShardReader::open(c.data_dir, "train")),
        plan(plan_model(cfg, comm, reader)),
        model(cfg.model, backend, plan.input, reader.num_classes(), plan.max_batch, cfg.dropout),
        loss(make_softmax_xent(backend)),
        adam(AdamConfig{c.lr, 0.9f, 0.999f, 1e-7f, c.weight_decay}, model.arena().param_count(), backend),
        dlogits(backend, static_cast<size_t>(model.max_batch()) * model.num_classes()),
        accum(c.accumulate > 1 && !c.deterministic ? std::make_unique<GradAccumulator>(backend, model.arena().param_count()) : nullptr),
        stager(backend == Backend::kCpu ? nullptr
                                        : std::make_unique<BatchStager>(*cuda_ctx, plan.per_rank, model.input_shape().per_sample())),
        sampler(reader.size(), static_cast<size_t>(c.batch_size), c.seed, c.drop_last),
        stopper(c.early_stopping),
        schedule(c.lr_schedule, c.lr, c.batch_size * c.accumulate,
                 (static_cast<int64_t>(sampler.steps_per_epoch()) + c.accumulate - 1) / c.accumulate,
                 planned_steps(c, sampler.steps_per_epoch())),
        checkpoints(cfg, comm, log, model, adam, reader.size()) {
    reader.verify_checksums();  // each rank reads all of the train split over an epoch anyway
    ctx.backend = backend;
    ctx.cuda = cuda_ctx;
    if (cuda_ctx != nullptr) set_tf32(*cuda_ctx, cfg.tf32);
    ctx.threads = omp_get_max_threads();
    ctx.comm = &comm;
    ctx.sync_bn = cfg.sync_bn;
    setup_deterministic(cfg, sampler, ctx);
    // Every output this run will write, checked before any work (rank 0 writes them all).
    if (comm.rank() == 0) {
      check_output_file("--save", cfg.save_path, model_file_bytes(model), "model.h5");
      check_output_file("--save-best", cfg.save_best_path, model_file_bytes(model), "best.h5");
      check_output_dir("--checkpoint-dir", cfg.checkpoint_dir, checkpoint_file_bytes(model, adam));
    }
    model.init(cfg.seed);
    // Every replica starts from rank 0's weights (equal by seed already; this makes it a rule).
    broadcast_replica(comm, model.arena());
    checkpoints.prepare_dir();
    resumed = !cfg.resume.empty() && checkpoints.resume();
    const GradientSyncSetup exchange{cfg.grad_exchange, cfg.bucket_mb};
    sync = cfg.deterministic ? make_exact_sync(exchange, comm, model, adam, ctx, log)
                             : make_gradient_sync(exchange, comm, model, adam, ctx, log);
    if (comm.rank() == 0 && cfg.evaluate) {
      val = load_split_data(cfg.data_dir, "val").data;
      test = load_split_data(cfg.data_dir, "test").data;
    }
  }

  // One micro-step of an optimizer step (--accumulate K: K micro-steps, `micro` its index, `last`
  // the group's last) on this rank's slice; group_samples: the samples of the whole group over
  // all ranks (the loss is their mean). The loss statistics stay in the loss's accumulator until
  // collect_losses(). An empty slice (last partial batch, more ranks than samples) still takes
  // part in every collective (SyncBN, the exchange) and contributes zero gradients.
  void step(const data::Batch& b, size_t micro, bool last, size_t group_samples) {
    const float* x = b.images.data();
    const uint8_t* y = b.labels.data();
    if (stager) {  // GPU: pinned copy + async upload, overlapped with the previous step's tail
      const BatchStager::Staged d = stager->stage(x, y, b.n);
      x = d.images;
      y = d.labels;
    }
    // Dropout's masks follow the samples' places in the global batch, not this rank's slice.
    ctx.noise_key = noise_key(cfg.seed, b.epoch, b.step);
    ctx.noise_first_row = sampler.bounds(b.global_n, comm.rank(), comm.size()).first;
    set_slice_chunks(ctx, sampler, b.global_n, comm.rank(), comm.size());
    ctx.exact_add = micro > 0;  // deterministic: later micro-steps add to the group's sums
    const Tensor& logits = model.forward(ctx, x, b.n, true);
    const float scale = 1.0f / static_cast<float>(group_samples);
    if (micro == 0) adam.set_lr(schedule.at(adam.steps()));
    loss->accumulate(ctx, logits, y, scale, dlogits.data(), static_cast<int64_t>(b.step));
    if (!last) {  // the group goes on: its gradients so far into the accumulator
      model.backward(ctx, dlogits.data());
      if (ctx.exact_grads == nullptr) accum->take(ctx, model.arena().grads(), micro == 0);  // else: summed there
      return;
    }
    sync->begin_step();
    model.backward(ctx, dlogits.data(), [&](int layer) {
      if (micro > 0 && ctx.exact_grads == nullptr) {
        const auto [lo, hi] = model.grad_range(static_cast<size_t>(layer));
        accum->add_to(ctx, model.arena().grads(), lo, hi);
      }
      sync->on_layer_done(layer);
    });
    sync->finish_step();
  }

  // Optimizer steps of the epoch's first `micro_steps` micro-steps.
  int64_t optimizer_steps(int64_t micro_steps) const { return (micro_steps + cfg.accumulate - 1) / cfg.accumulate; }

  // The samples over all ranks of the micro-steps [begin, end) of the epoch.
  size_t group_samples(size_t begin, size_t end) const {
    size_t n = 0;
    for (size_t i = begin; i < end; ++i) n += sampler.batch_size(i);
    return n;
  }

  // Adds the loss statistics of the steps since the last call to run.sums (on the GPU the one
  // host wait for them). Throws TrainingDiverged when one of those steps had a non-finite loss:
  // callers collect before every checkpoint, so no checkpoint holds weights stepped from it.
  void collect_losses(EpochRun& run, const TrainResult& result) {
    const LossWindow w = loss->read_back();
    if (w.first_nonfinite_tag >= 0) {
      const int64_t in_epoch = w.first_nonfinite_tag / cfg.accumulate;  // the tag is the micro-step
      const int64_t global = result.steps - optimizer_steps(run.steps) + in_epoch + 1;
      throw TrainingDiverged("training diverged: non-finite loss at epoch " + std::to_string(run.epoch + 1) +
                             ", step " + std::to_string(in_epoch + 1) + " (global step " +
                             std::to_string(global) +
                             "); no checkpoint of these weights is written (try a smaller --lr)");
    }
    run.sums = run.sums + w.sums;
  }

  void verify(const std::string& when) {
    if (comm.size() == 1) return;
    model.arena().sync_to_host();
    verify_replicas(comm, model.arena(), when, cfg.sync_bn);
  }

  // True on every rank when any rank got SIGTERM/SIGUSR1.
  bool agree_on_stop() {
    double flag = stop_requested() ? 1.0 : 0.0;
    if (comm.size() > 1) comm.allreduce_sum(&flag, 1);
    return flag > 0.0;
  }

  // Rank 0's value to every rank, waiting without spinning.
  Scores share(Scores s) {
    comm.broadcast_idle(&s, sizeof s, 0);
    return s;
  }

  void log_start() {
    log.info("mnist_dist: world %d rank(s) on %d node(s), %d per node; device %s; "
             "%d thread(s) per rank; comm %s; data %s (train %zu, val %zu, test %zu); "
             "global batch %d, per rank %d",
             comm.size(), comm.num_nodes(), comm.local_size(),
             backend == Backend::kCuda ? (cfg.tf32 ? "cuda, one GPU per rank (by local rank), TF32 on"
                                                   : "cuda, one GPU per rank (by local rank), TF32 off")
                                       : "cpu on every rank",
             ctx.threads, comm.name().c_str(),
             cfg.data_dir.c_str(), reader.size(), val.n, test.n, cfg.batch_size, plan.per_rank);
    char optimizer[64] = "Adam";
    if (cfg.weight_decay > 0.0f)
      std::snprintf(optimizer, sizeof optimizer, "AdamW (weight decay %g)", static_cast<double>(cfg.weight_decay));
    char dropout[48] = "";
    if (cfg.dropout > 0.0f) std::snprintf(dropout, sizeof dropout, "; dropout %g", static_cast<double>(cfg.dropout));
    char augment[32] = "";
    if (cfg.augment_shift > 0) std::snprintf(augment, sizeof augment, "; augment shift:%d", cfg.augment_shift);
    log.info("mnist_dist: model %s, %zu trainable parameters; bn %s%s; %s %s; %s%s",
             cfg.model.c_str(), model.arena().trainable_scalars(), cfg.sync_bn ? "sync" : "local", dropout,
             optimizer, schedule.describe().c_str(), sync->describe().c_str(), augment);
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
    sync->close();
    return result;
  }

  TrainResult train_loop() {
    log_start();
    notify([&](TrainObserver& o) { o.on_train_begin(cfg, run_info()); });
    TrainResult result;
    Watchdog watchdog(cfg.timeout_s);
    int first_epoch = 0;
    size_t first_step = 0;
    if (resumed) {
      const CheckpointMeta& meta = checkpoints.resumed_from();
      result.steps = meta.global_step;
      first_epoch = meta.epoch;
      first_step = static_cast<size_t>(meta.step_in_epoch);
      sampler.set_epoch(first_epoch);
      if (first_step >= sampler.steps_per_epoch()) ++first_epoch, first_step = 0;
    }
    bool stop = cfg.max_steps > 0 && result.steps >= cfg.max_steps;
    for (int epoch = first_epoch; epoch < cfg.epochs && !stop; ++epoch) {
      EpochRun run;
      run.epoch = epoch;
      run.begin = epoch == first_epoch ? first_step : 0;
      if (!run_epoch(run, watchdog, result)) return result;  // stopped by a signal
      end_epoch(run, watchdog, result);
      stop = result.stopped_early;
      if (cfg.max_steps > 0 && result.steps >= cfg.max_steps) {
        stop = true;
        log.info("mnist_dist: stopped after --max-steps %lld optimizer steps", static_cast<long long>(cfg.max_steps));
      }
    }
    result.steps = adam.steps();
    verify("at the end of training");
    if (cfg.evaluate) test_and_save(result);
    notify([&](TrainObserver& o) { o.on_train_end(result); });
    return result;
  }

  // The steps of one epoch. False when a signal stopped the run (checkpoint written).
  bool run_epoch(EpochRun& run, Watchdog& watchdog, TrainResult& result) {
    sampler.set_epoch(run.epoch);
    run.last_step = sampler.steps_per_epoch();
    if (cfg.max_steps > 0)
      run.last_step = std::min<size_t>(run.last_step, run.begin + static_cast<size_t>(cfg.max_steps - result.steps) *
                                                                     static_cast<size_t>(cfg.accumulate));
    run.t0 = Clock::now();
    sync->take_comm_seconds();
    const CheckpointMeta& meta = checkpoints.resumed_from();
    if (resumed && run.epoch == meta.epoch && run.begin > 0 && comm.rank() == 0)
      run.sums = meta.epoch_sums;  // the epoch's metrics continue where they were
    data::Prefetcher prefetch(reader, sampler, comm.rank(), comm.size(), run.begin, run.last_step,
                              data::Augment{cfg.augment_shift, cfg.seed});
    run.steps = static_cast<int64_t>(run.begin);
    while (const data::Batch* b = prefetch.next()) {
      watchdog.beat("training step");
      const size_t micro = static_cast<size_t>(run.steps) % static_cast<size_t>(cfg.accumulate);
      const size_t group_begin = static_cast<size_t>(run.steps) - micro;
      const size_t group_end = std::min(group_begin + static_cast<size_t>(cfg.accumulate), run.last_step);
      step(*b, micro, static_cast<size_t>(run.steps) + 1 == group_end, group_samples(group_begin, group_end));
      ++run.steps;
      if (static_cast<size_t>(run.steps) < group_end) continue;  // the optimizer step goes on
      ++result.steps;
      const int64_t opt_steps = optimizer_steps(run.steps);  // of this epoch, done
      const bool last = static_cast<size_t>(run.steps) == run.last_step;
      const bool checkpoint = !cfg.checkpoint_dir.empty() && cfg.checkpoint_every > 0 &&
                              result.steps % cfg.checkpoint_every == 0 && !last;
      const bool progress = cfg.progress_every > 0 && opt_steps % cfg.progress_every == 0;
      // The CPU's sums are on the host anyway: a live progress bar shows every step's.
      if (checkpoint || last || opt_steps % cfg.loss_read_every == 0 || (progress && backend == Backend::kCpu))
        collect_losses(run, result);
      if (hook) hook->after_step(comm.rank(), result.steps, model.arena());
      if (cfg.hash_check_every > 0 && result.steps % cfg.hash_check_every == 0)
        verify("at step " + std::to_string(result.steps));
      if (checkpoint) result.last_checkpoint = checkpoints.write(*sync, {run.epoch, run.steps}, run.sums);
      if (agree_on_stop()) {
        collect_losses(run, result);
        stop_by_signal(run, result);
        return false;
      }
      if (progress || last) report_progress(run, result);
    }
    collect_losses(run, result);  // nothing left unless the data ended early
    run.data_wait_seconds = prefetch.wait_seconds();
    return true;
  }

  void stop_by_signal(const EpochRun& run, TrainResult& result) {
    result.preempted = true;
    if (!cfg.checkpoint_dir.empty())
      result.last_checkpoint = checkpoints.write(*sync, {run.epoch, run.steps}, run.sums);
    log.notice("stopped by a signal (SIGTERM/SIGUSR1) at global step %lld%s%s",
               static_cast<long long>(result.steps),
               cfg.checkpoint_dir.empty() ? " (no --checkpoint-dir: nothing saved)" : "; checkpoint ",
               result.last_checkpoint.c_str());
    result.steps = adam.steps();
  }

  void report_progress(const EpochRun& run, const TrainResult& result) {
    EpochSums all = run.sums;
    comm.allreduce_sum(all.data(), EpochSums::kSize);
    Progress p;
    p.epoch = run.epoch + 1;
    p.step = static_cast<size_t>(optimizer_steps(run.steps));
    p.steps_per_epoch = static_cast<size_t>(optimizer_steps(static_cast<int64_t>(run.last_step)));
    p.global_step = result.steps;
    p.loss = all.count > 0 ? all.loss_sum / all.count : 0.0;
    p.accuracy = all.count > 0 ? all.correct / all.count : 0.0;
    p.seconds = seconds_since(run.t0);
    notify([&](TrainObserver& o) { o.on_progress(p); });
  }

  // The epoch's metrics and validation; the checkpoint at its end (or at the end of the run).
  void end_epoch(const EpochRun& run, Watchdog& watchdog, TrainResult& result) {
    watchdog.beat("end of epoch");
    EpochMetrics m;
    m.epoch = run.epoch + 1;
    m.seconds = seconds_since(run.t0);
    m.data_wait_seconds = run.data_wait_seconds;
    m.comm_seconds = sync->take_comm_seconds();
    m.compute_seconds = std::max(0.0, m.seconds - m.data_wait_seconds - m.comm_seconds);
    m.lr = adam.config().lr;
    m.steps = optimizer_steps(run.steps);
    EpochSums all = run.sums;
    comm.allreduce_sum(all.data(), EpochSums::kSize);
    m.loss = all.count > 0 ? all.loss_sum / all.count : 0.0;
    m.accuracy = all.count > 0 ? all.correct / all.count : 0.0;
    m.samples_per_second = all.count / std::max(m.seconds, 1e-9);
    if (cfg.evaluate) {
      Scores v;
      if (comm.rank() == 0) {
        const EvalResult r = evaluate(ctx, model, *loss, val);
        v = Scores{r.loss, r.accuracy, 0.0};
      }
      v = share(v);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
      watchdog.beat("validation");
    }
    result.epochs.push_back(m);
    result.stopped_early = track_best(m);
    const bool epoch_done = static_cast<size_t>(run.steps) == sampler.steps_per_epoch();
    const bool last_iteration = run.epoch + 1 == cfg.epochs || result.stopped_early ||
                                (cfg.max_steps > 0 && result.steps >= cfg.max_steps);
    if (!cfg.checkpoint_dir.empty() &&
        ((cfg.checkpoint_every == 0 && epoch_done) ||
         (cfg.checkpoint_every > 0 && result.steps % cfg.checkpoint_every == 0) || last_iteration)) {
      // Always at the end of the run too, so that a run cut short by --max-steps can go on.
      result.last_checkpoint = epoch_done ? checkpoints.write(*sync, {run.epoch + 1, 0}, EpochSums{})
                                          : checkpoints.write(*sync, {run.epoch, run.steps}, run.sums);
    }
    notify([&](TrainObserver& o) { o.on_epoch_end(m); });
    if (result.stopped_early)
      log.info("mnist_dist: early stopping: %s did not improve for %d epoch(s); the best was epoch %d (%.4f)",
               stopper.monitor().c_str(), cfg.early_stopping.patience, stopper.best_epoch(), stopper.best());
  }

  // Early stopping and --save-best: the epoch's validation scores (rank 0's, shared, so every
  // rank decides alike) against the best so far; rank 0 keeps the best weights and writes
  // --save-best. True: stop now.
  bool track_best(const EpochMetrics& m) {
    if (!cfg.evaluate || (!stopper.enabled() && cfg.save_best_path.empty())) return false;
    if (stopper.observe(m.epoch, m.val_loss, m.val_accuracy) && comm.rank() == 0) {
      if (stopper.enabled()) best.keep(model.arena());
      if (!cfg.save_best_path.empty()) {
        model.arena().sync_to_host();
        save_model(model, cfg.save_best_path);
        log.info("mnist_dist: best model so far (epoch %d, %s %.4f) written to %s", m.epoch,
                 stopper.monitor().c_str(), stopper.best(), cfg.save_best_path.c_str());
      }
    }
    return stopper.should_stop();
  }

  // Rank 0 evaluates the test split and writes --save; every rank receives the scores.
  void test_and_save(TrainResult& result) {
    Scores t;
    const int weights_epoch = stopper.enabled() ? stopper.best_epoch() : 0;
    if (comm.rank() == 0) {
      if (!best.empty()) {  // Keras' restore_best_weights, for the test and --save
        best.restore(model.arena());
        log.info("mnist_dist: restored the weights of epoch %d (best %s %.4f) for the test and --save",
                 weights_epoch, stopper.monitor().c_str(), stopper.best());
      }
      std::vector<int32_t> predictions;
      result.test = evaluate(ctx, model, *loss, test, &predictions);
      result.test.weights_epoch = weights_epoch;
      notify([&](TrainObserver& o) { o.on_test(result.test, predictions, test); });
      t = Scores{result.test.loss, result.test.accuracy, static_cast<double>(result.test.count)};
      if (!cfg.save_path.empty()) {
        model.arena().sync_to_host();
        save_model(model, cfg.save_path);
        log.info("mnist_dist: model written to %s", cfg.save_path.c_str());
      }
    }
    t = share(t);
    result.test = EvalResult{t.loss, t.accuracy, static_cast<int64_t>(t.count), weights_epoch};
  }

  TrainConfig cfg;
  Communicator& comm;
  const Logger& log;
  Backend backend;
  Context ctx;
  data::ShardReader reader;
  ModelPlan plan;  // before model: its sizes
  Model model;
  std::unique_ptr<SoftmaxCrossEntropy> loss;
  Adam adam;
  Buffer<float> dlogits;
  std::unique_ptr<GradAccumulator> accum;  // --accumulate K > 1: the group's gradient so far
  std::unique_ptr<BatchStager> stager;  // device staging of the slices (GPU backend only)
  data::EpochSampler sampler;
  EarlyStopping stopper;  // also tracks the best epoch for --save-best
  BestWeights best;       // rank 0, with --early-stopping: the best epoch's weights
  LrSchedule schedule;  // the LR of each global step
  Checkpointer checkpoints;
  std::unique_ptr<GradientSync> sync;
  SplitData val, test;
  std::vector<TrainObserver*> observers;
  StepHook* hook = nullptr;
  bool resumed = false;
};

Trainer::Trainer(const TrainConfig& config, Communicator& comm, const Logger& log, CudaContext* cuda)
    : impl_(std::make_unique<Impl>(config, comm, log, cuda)) {}
Trainer::~Trainer() = default;
void Trainer::add_observer(TrainObserver* observer) { impl_->observers.push_back(observer); }
void Trainer::set_step_hook(StepHook* hook) { impl_->hook = hook; }
TrainResult Trainer::run() { return impl_->run(); }
Model& Trainer::model() { return impl_->model; }

TrainResult train(const TrainConfig& config, Communicator& comm, const Logger& log,
                  const std::vector<TrainObserver*>& observers, CudaContext* cuda, StepHook* hook) {
  Trainer trainer(config, comm, log, cuda);
  for (TrainObserver* o : observers) trainer.add_observer(o);
  trainer.set_step_hook(hook);
  return trainer.run();
}

}  // namespace mnist_dist
