// `mnist_dist [train] ...`: parses the training flags, sets threads, picks the communicator
// (single process, or MPI under a launcher), runs the trainer with the console observer.
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "app/commands.h"
#include "app/device_setup.h"
#include "app/launch_gate.h"
#include "app/threads.h"
#include "comm/communicator.h"
#include "core/cli.h"
#include "core/error.h"
#include "model/model.h"
#include "optim/lr_schedule.h"
#include "report/cli_flags.h"
#include "report/console.h"
#include "report/run_recorder.h"
#include "train/augment.h"
#include "train/stop_signal.h"
#include "train/trainer.h"

namespace mnist_dist {
namespace {

// Numeric flag checks with readable messages (CLI11 2.1's PositiveNumber/NonNegativeNumber say
// "Value 0 not in range 0.000000 to 1797693134862315…"). CLI11 prefixes the flag name.
CLI::Validator number_check(bool positive) {
  return CLI::Validator(
      [positive](std::string& s) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return "'" + s + "' is not a number";
        if (positive && !(v > 0)) return "must be positive (got " + s + ")";
        if (!positive && v < 0) return "must be 0 or more (got " + s + ")";
        return std::string();
      },
      positive ? "POSITIVE" : "NON-NEGATIVE");
}
const CLI::Validator kPositive = number_check(true);
const CLI::Validator kNonNegative = number_check(false);

// What the command line sets besides TrainConfig.
struct TrainFlags {
  TrainConfig cfg;
  std::string bn = "sync";
  std::string device = "auto";
  std::string gpu_comm = "auto";
  std::string tf32 = "on";
  std::string optimizer = "adam";
  double weight_decay = -1.0;  // not given
  std::string run_dir;
  std::string progress = "auto";
  std::string checkpoint_every = "epoch";
  std::string augment = "none";
  bool quiet = false;
  int log_every = 100;
};

// The learning-rate schedule (optim/lr_schedule.h: PyTorch's semantics).
void add_schedule_flags(CLI::App& app, LrScheduleConfig& s) {
  app.add_option("--lr-schedule", s.kind,
                 "LR over the global optimizer steps: constant, step (x gamma every --lr-step-size "
                 "steps), exponential (x gamma per step), cosine (to --lr-min at the run's last step)")
      ->check(CLI::IsMember(lr_schedule_names()))
      ->capture_default_str();
  app.add_option("--warmup-steps", s.warmup_steps,
                 "Linear warm-up from lr/N to lr over the first N steps, then the schedule (0 = none)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--lr-step-size", s.step_size, "step schedule: steps between decays (0 = one epoch)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--lr-gamma", s.gamma,
                 "step / exponential schedule: the decay factor (step: default 0.1; exponential: "
                 "required, per step, e.g. 0.9995)")
      ->check(kNonNegative);
  app.add_option("--lr-min", s.min_lr, "cosine schedule: the final learning rate")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--scale-lr-with-batch", s.scale_reference_batch,
                 "Linear scaling rule: lr x global batch / REF (0 = off)")
      ->check(kNonNegative)
      ->capture_default_str();
}

// Data, model, optimizer and the devices.
void add_training_flags(CLI::App& app, TrainFlags& f) {
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // last one wins
  app.add_option("--data", f.cfg.data_dir, "Directory prepared by mnist_prepare (manifest.json + shards)")
      ->required();
  app.add_option("--model", f.cfg.model, "Network: seed (conv-BN net of DESIGN.md) or lenet5")
      ->check(CLI::IsMember(model_names()))
      ->capture_default_str();
  app.add_option("--epochs", f.cfg.epochs, "Passes over the training split")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--max-steps", f.cfg.max_steps,
                 "Stop after this many optimizer steps in total, then evaluate (0 = no limit)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--batch-size", f.cfg.batch_size, "Global batch size (split over the ranks)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--accumulate", f.cfg.accumulate,
                 "Gradient accumulation: micro-steps of --batch-size per optimizer step (one exchange "
                 "and one Adam step per K; the effective global batch is K x --batch-size)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--eval-batch-size", f.cfg.eval_batch_size, "Batch size of evaluation passes")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--lr", f.cfg.lr, "Adam learning rate (the peak of a schedule)")->check(kPositive)->capture_default_str();
  add_schedule_flags(app, f.cfg.lr_schedule);
  app.add_option("--optimizer", f.optimizer,
                 "adam (Keras semantics) or adamw (decoupled weight decay, as torch.optim.AdamW)")
      ->check(CLI::IsMember({"adam", "adamw"}))
      ->capture_default_str();
  app.add_option("--weight-decay", f.weight_decay,
                 "adamw: the decoupled weight decay (default 0.01, as PyTorch's AdamW)")
      ->check(kNonNegative);
  app.add_option("--dropout", f.cfg.dropout,
                 "Inverted dropout after the two hidden dense layers, this fraction of their units "
                 "(training only; the mask follows each sample, whatever the world size; 0 = none)")
      ->check(CLI::Range(0.0f, 0.95f))
      ->capture_default_str();
  app.add_option("--seed", f.cfg.seed, "Seed of the initial weights and of the per-epoch shuffles")
      ->capture_default_str();
  app.add_option("--augment", f.augment,
                 "Training images only: none, or shift:N (each image moved by a random dx, dy in "
                 "[-N, N] with zero fill, N 1..8; drawn from --seed, the epoch and the sample)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return data::parse_augment(v) >= 0 ? std::string() : "'" + v + "' is not accepted: use " + data::augment_forms();
          },
          "{none,shift:N}"))
      ->capture_default_str();
  app.add_option("--threads", f.cfg.threads,
                 "CPU threads per rank (0 = the cores this process may use / ranks on the node)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--bn", f.bn, "BatchNorm statistics: sync (over the global batch) or local (per rank)")
      ->check(CLI::IsMember({"sync", "local"}))
      ->capture_default_str();
  app.add_option("--device", f.device,
                 "Where to train: auto (a GPU per local rank when usable, else CPU), cuda, cpu")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}))
      ->capture_default_str();
  app.add_option("--tf32", f.tf32,
                 "GPU: TF32 tensor-core math for convolutions and matrix products (on, like "
                 "PyTorch's cuDNN default; off: fp32 results, no FFT/Winograd convolutions)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  app.add_option("--comm", f.gpu_comm,
                 "GPU ranks' collectives: auto (= nccl), nccl (one GPU per rank), host-staged "
                 "(MPI through host memory; ranks may share a GPU: for testing, slow). CPU ranks "
                 "always use MPI")
      ->check(CLI::IsMember({"auto", "nccl", "host-staged"}))
      ->capture_default_str();
}

// Gradient exchange, output, checkpoints, the watchdog.
void add_run_flags(CLI::App& app, TrainFlags& f) {
  app.add_flag("--drop-last", f.cfg.drop_last, "Drop the last partial batch of each epoch");
  app.add_flag("--deterministic", f.cfg.deterministic,
               "Bit-identical weights at any world size and thread count, also across a resume on "
               "another world size: ranks take whole chunks of 16 samples, gradients and BatchNorm sums "
               "are combined exactly (needs --bn sync; costs step time, see docs/performance.md; GPU "
               "runs agree with each other, not with CPU runs)");
  app.add_option("--hash-check-every", f.cfg.hash_check_every,
                 "Steps between cross-rank parameter hash checks (0 = only at the end)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--grad-exchange", f.cfg.grad_exchange,
                 "How CPU ranks combine gradients: sharded (ranks of a node reduce and update one "
                 "shard each through shared memory), buckets (overlapped bucketed all-reduce), "
                 "auto (sharded when ranks share a node)")
      ->check(CLI::IsMember({"auto", "sharded", "buckets"}))
      ->capture_default_str();
  app.add_option("--bucket-mb", f.cfg.bucket_mb, "Gradient all-reduce bucket size in MiB (--grad-exchange buckets)")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--save", f.cfg.save_path, "Write the trained model to this HDF5 file");
  app.add_option("--early-stopping", f.cfg.early_stopping.patience,
                 "Stop after this many epochs without improvement of --monitor, and test (and --save) "
                 "the best epoch's weights, as Keras' EarlyStopping(restore_best_weights=True) (0 = off)")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--monitor", f.cfg.early_stopping.monitor, "The validation metric of --early-stopping and --save-best")
      ->check(CLI::IsMember({"val_loss", "val_accuracy"}))
      ->capture_default_str();
  app.add_option("--min-delta", f.cfg.early_stopping.min_delta, "The least change of --monitor that counts as an improvement")
      ->check(kNonNegative)
      ->capture_default_str();
  app.add_option("--save-best", f.cfg.save_best_path,
                 "Write the model of the best epoch so far (by --monitor) to this HDF5 file after each new best");
  app.add_option("--run-dir", f.run_dir,
                 "Write config.json, metrics.jsonl/.csv, test_report.json and the pictures here "
                 "(default: runs/<date>-<time>)");
  app.add_flag("--quiet,-q", f.quiet, "Print only errors and the final test lines");
  app.add_option("--progress", f.progress,
                 "Progress output: bar (live, Keras-style), lines (plain, every --log-every steps), "
                 "auto (bar on a terminal, lines otherwise and under mpirun/srun)")
      ->check(CLI::IsMember({"auto", "bar", "lines"}))
      ->capture_default_str();
  app.add_option("--log-every", f.log_every,
                 "Steps between progress lines (when not on a terminal) and step records in metrics; "
                 "on GPUs also between loss read-backs (a non-finite loss is caught within them)")
      ->check(CLI::Range(1, 1000000000))
      ->capture_default_str();
  app.add_option("--checkpoint-dir", f.cfg.checkpoint_dir,
                 "Write checkpoints here (rank 0; HDF5, temporary name + rename)");
  app.add_option("--checkpoint-every", f.checkpoint_every,
                 "Checkpoint every N optimizer steps, or 'epoch' (at each epoch end)")
      ->capture_default_str();
  app.add_option("--keep-checkpoints", f.cfg.keep_checkpoints, "How many of the newest checkpoints to keep")
      ->check(kPositive)
      ->capture_default_str();
  app.add_option("--resume", f.cfg.resume,
                 "Continue from a checkpoint: 'auto' (newest valid one in --checkpoint-dir; none: "
                 "start fresh) or a checkpoint file");
  app.add_option("--timeout", f.cfg.timeout_s,
                 "Seconds without progress after which the job is ended (a rank died or hangs; 0 = off)")
      ->check(kNonNegative)
      ->capture_default_str();
}

// Flag values CLI11 cannot check alone; throws CLI::ValidationError.
void check_flags(TrainFlags& f) {
  if (f.cfg.threads > max_threads())
    throw CLI::ValidationError("--threads " + std::to_string(f.cfg.threads) + " is more than 4 x the " +
                               std::to_string(usable_cores()) + " cores this process may use; use at most " +
                               std::to_string(max_threads()) + " (0 = one per core, shared by the ranks of the node)");
  f.cfg.sync_bn = f.bn == "sync";
  f.cfg.tf32 = f.tf32 == "on";
  if (f.optimizer == "adam" && f.weight_decay > 0.0)
    throw CLI::ValidationError("--weight-decay is AdamW's decoupled decay: add --optimizer adamw (Adam here has no L2 term)");
  f.cfg.weight_decay = f.optimizer == "adamw" ? static_cast<float>(f.weight_decay < 0.0 ? 0.01 : f.weight_decay) : 0.0f;
  f.cfg.augment_shift = data::parse_augment(f.augment);
  f.cfg.loss_read_every = f.log_every;
  f.cfg.checkpoint_every = 0;
  if (f.checkpoint_every == "epoch") return;
  char* end = nullptr;
  const long long n = std::strtoll(f.checkpoint_every.c_str(), &end, 10);
  if (f.checkpoint_every.empty() || *end != '\0' || n < 1)
    throw CLI::ValidationError("--checkpoint-every must be a positive step count or 'epoch' (got '" +
                               f.checkpoint_every + "')");
  f.cfg.checkpoint_every = n;
}

// Device and communicator, threads, output, then the trainer. Throws; run_reporting_errors
// turns the error into its exit code (the whole job ends when one rank fails).
int train_with_flags(TrainFlags& f, const CLI::App& app, int argc, char** argv, StepHook* hook) {
  // One process: no MPI at all. Under mpirun/mpiexec/srun: one replica per rank.
  DeviceSetup dev = setup_device(f.device, f.gpu_comm);
  Communicator& comm = *dev.comm;
  set_threads(f.cfg.threads > 0 ? f.cfg.threads : default_threads(comm.local_size()));
  Logger log(comm.rank(), f.quiet);
  // Before the first collective: the launcher's world size, and one build, settings and data.
  if (const int refused = run_launch_gate(comm, f.cfg, f.device)) return refused;
  if (!dev.notice.empty()) log.notice("%s", dev.notice.c_str());
  // Rank 0's stdout decides bar or lines; the progress interval drives a collective, so every
  // rank takes rank 0's choice.
  int mode = static_cast<int>(progress_mode_for(f.progress, stdout, f.quiet, launched_by_mpi()));
  comm.broadcast(&mode, sizeof mode, 0);
  f.cfg.progress_every = progress_interval(static_cast<ProgressMode>(mode), f.log_every);
  ConsoleObserver console(static_cast<ProgressMode>(mode), f.log_every);
  RunRecorder recorder({f.run_dir, f.log_every, true, {argv, argv + argc}, cli_flags(app)}, log);
  const TrainResult result = train(f.cfg, comm, log, {&recorder, &console}, dev.cuda.get(), hook);
  comm.barrier();
  return result.preempted ? kExitPreempted : kExitOk;
}

}  // namespace

int run_train(int argc, char** argv, StepHook* hook) {
  TrainFlags f;
  CLI::App app{
      "mnist_dist: data-parallel training of LeNet-5-family networks on MNIST-format data.\n"
      "Trains on the train shards of --data (made by mnist_prepare), evaluates the validation\n"
      "split after every epoch and the test split at the end; the last line printed is\n"
      "'Test accuracy: 0.XXXX'. Runs alone, or one replica per rank under mpirun/srun.",
      "mnist_dist"};
  add_training_flags(app, f);
  add_run_flags(app, f);
  app.footer(
      "Example:\n  mnist_prepare --idx-dir data/fashion-mnist --out data/fashion-mnist-h5\n"
      "  mnist_dist --data data/fashion-mnist-h5 --epochs 20 --save model.h5\n"
      "Other commands: mnist_dist predict | export | plot --help (classify pictures, ONNX, pictures of a run).\n"
      "Exit codes: 0 success, 1 internal error, 2 bad input (flags, paths, files),\n"
      "  3 stopped by SIGTERM/SIGUSR1 (checkpoint written when --checkpoint-dir is set),\n"
      "  4 training diverged (non-finite loss; no checkpoint of those weights),\n"
      "  5 no space left to write a checkpoint, the model or the run directory (the partial file\n"
      "    removed, earlier checkpoints intact),\n"
      "  6 no progress for --timeout seconds (a rank or node was lost, or the job hangs).");
  if (auto code = parse_command_line(app, argc, argv, [&] { check_flags(f); })) return *code;
  install_stop_signal_handlers();
  return run_reporting_errors("mnist_dist", [&] { return train_with_flags(f, app, argc, argv, hook); });
}

}  // namespace mnist_dist
