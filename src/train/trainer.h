// The training loop: data-parallel over a communicator (one rank when single-process),
// global-batch semantics, synchronized Adam, rank-0 evaluation (DESIGN.md contracts 1–5).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/context.h"
#include "optim/lr_schedule.h"
#include "train/early_stopping.h"
#include "train/evaluator.h"
#include "train/logger.h"
#include "train/observer.h"
#include "train/step_hook.h"

namespace mnist_dist {

// Samples per chunk of the global batch under --deterministic (DESIGN.md: m = 16).
constexpr int kDeterministicChunk = 16;

struct TrainConfig {
  std::string data_dir;
  std::string model = "seed";
  int epochs = 20;
  int64_t max_steps = 0;          // 0: no limit
  int batch_size = 128;           // global batch (of one micro-step with --accumulate)
  int accumulate = 1;             // micro-steps per optimizer step (gradient accumulation)
  int eval_batch_size = 256;      // per forward pass during evaluation
  float lr = 1e-3f;
  float weight_decay = 0.0f;      // > 0: AdamW's decoupled weight decay (--optimizer adamw)
  float dropout = 0.0f;           // > 0: inverted dropout after the hidden dense layers (--dropout)
  LrScheduleConfig lr_schedule;   // --lr-schedule & co. (constant by default)
  uint64_t seed = 1;              // initial weights and the per-epoch shuffles
  int threads = 0;                // 0: cores / local ranks
  bool sync_bn = true;            // --bn sync|local
  // --deterministic: the same weights bit for bit at any world size and thread count and across
  // resumes on other world sizes (DESIGN.md "Deterministic training"): ranks take whole chunks
  // of kDeterministicChunk samples, gradients and BatchNorm sums are combined exactly.
  bool deterministic = false;
  bool drop_last = false;         // keep the last partial batch by default
  int augment_shift = 0;          // --augment shift:N: training images moved by up to N px (0: none)
  int hash_check_every = 100;     // steps between cross-rank parameter hash checks (0: end only)
  double bucket_mb = 1.0;         // gradient all-reduce bucket size (MiB)
  // "auto": sharded through shared memory when CPU ranks share a node, else buckets;
  // "sharded" (an error when unavailable); "buckets": overlapped bucketed all-reduce.
  std::string grad_exchange = "auto";
  bool evaluate = true;           // validation each epoch, test at the end (rank 0)
  int progress_every = 20;        // steps between progress events (reduced over ranks)
  // Steps between read-backs of the loss sums (--log-every; on the GPU they live in device
  // memory), which is also the window in which a non-finite loss is caught — always before a
  // checkpoint is written, and named by its own step. Also read at every progress event on the
  // CPU (a live bar) and at each checkpoint, stop and epoch end.
  int loss_read_every = 100;
  bool tf32 = true;               // GPU: TF32 tensor-core math for convolutions and GEMMs
  std::string save_path;          // --save: trained model as HDF5
  EarlyStoppingConfig early_stopping;  // --early-stopping, --monitor, --min-delta
  std::string save_best_path;     // --save-best: the best epoch's model, written as training goes
  std::string checkpoint_dir;     // --checkpoint-dir: where checkpoints go (empty: none)
  int64_t checkpoint_every = 0;   // optimizer steps between checkpoints; 0: at each epoch end
  int keep_checkpoints = 3;       // newest K kept
  std::string resume;             // "", "auto" (newest valid in checkpoint_dir) or a file
  double timeout_s = 60.0;        // watchdog: no progress for this long ends the job (0: off)
};

struct EpochMetrics {
  int epoch = 0;                  // 1-based
  double loss = 0.0, accuracy = 0.0;          // training, averaged over the epoch's samples
  double val_loss = 0.0, val_accuracy = 0.0;  // rank 0's evaluation (broadcast to all ranks)
  double seconds = 0.0;           // training time of the epoch (without evaluation)
  double samples_per_second = 0.0;
  double data_wait_seconds = 0.0; // step loop waiting for the prefetcher
  double comm_seconds = 0.0;      // waiting for the gradient all-reduce after backward
  double compute_seconds = 0.0;   // the rest of the epoch's training time
  double lr = 0.0;                // of the epoch's last step
  int64_t steps = 0;
};

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  EvalResult test;
  int64_t steps = 0;
  bool preempted = false;         // stopped by SIGTERM/SIGUSR1 after writing a checkpoint
  bool stopped_early = false;     // --early-stopping ended the run
  std::string last_checkpoint;    // path of the newest checkpoint written (rank 0)
};

class Model;

// One rank's trainer. Construction opens the data, builds and initialises the model (rank 0's
// weights broadcast to all); run() trains, evaluates and saves. Throws UserError for bad input.
class Trainer {
 public:
  // cuda: the GPU this rank trains on (CUDA backend), or null for the CPU backend.
  Trainer(const TrainConfig& config, Communicator& comm, const Logger& log,
          CudaContext* cuda = nullptr);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Observers are notified on rank 0 (not owned; must outlive run()).
  void add_observer(TrainObserver* observer);
  // Called on every rank after every optimizer step (not owned; null: none). Tests only.
  void set_step_hook(StepHook* hook);
  TrainResult run();
  Model& model();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Trainer(config, comm, log) with the observers and the step hook added, then run().
TrainResult train(const TrainConfig& config, Communicator& comm, const Logger& log,
                  const std::vector<TrainObserver*>& observers = {}, CudaContext* cuda = nullptr,
                  StepHook* hook = nullptr);

}  // namespace mnist_dist
