// Resuming from and writing checkpoints for the trainer (train/checkpointer.h).
#include "train/checkpointer.h"

#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "train/augment.h"
#include "train/replica_check.h"

namespace mnist_dist {
namespace {

// The position broadcast from rank 0 after a resume.
struct ResumePosition {
  int64_t global_step = 0;
  int64_t epoch = 0;
  int64_t step_in_epoch = 0;
  int64_t adam_steps = 0;
};

}  // namespace

Checkpointer::Checkpointer(const TrainConfig& cfg, Communicator& comm, const Logger& log, Model& model,
                           Adam& adam, size_t train_samples)
    : cfg_(cfg), comm_(comm), log_(log), model_(model), adam_(adam), train_samples_(train_samples) {}

void Checkpointer::prepare_dir() const {
  if (cfg_.checkpoint_dir.empty() || comm_.rank() != 0) return;
  std::error_code ec;
  std::filesystem::create_directories(cfg_.checkpoint_dir, ec);
  if (!std::filesystem::is_directory(cfg_.checkpoint_dir))
    throw UserError("--checkpoint-dir " + cfg_.checkpoint_dir + " cannot be created: " + ec.message());
}

bool Checkpointer::load_on_rank0() {
  std::vector<std::string> candidates;
  if (cfg_.resume == "auto") candidates = list_checkpoints(cfg_.checkpoint_dir);
  else candidates.push_back(cfg_.resume);
  // A checkpoint without its SHA-256 sidecar (written before sidecars) is read only when
  // named explicitly, after a warning; --resume auto skips it like any unusable one.
  const MissingSidecar missing = cfg_.resume == "auto" ? MissingSidecar::kRefuse : MissingSidecar::kAllow;
  for (const std::string& path : candidates) {
    try {
      if (missing == MissingSidecar::kAllow && std::filesystem::is_regular_file(path) && !has_sidecar(path))
        log_.notice("%s", unverified_warning(path).c_str());
      const CheckpointMeta m = read_checkpoint(path, model_, adam_, missing);
      check_compatible(m, path);
      meta_ = m;
      log_.info("mnist_dist: resuming from %s (global step %lld, epoch %d, step %lld of it; "
                "written by %lld rank(s))",
                path.c_str(), static_cast<long long>(m.global_step), m.epoch + 1,
                static_cast<long long>(m.step_in_epoch), static_cast<long long>(m.world_size));
      return true;
    } catch (const UserError& e) {
      if (cfg_.resume != "auto") throw;  // an explicit file must be usable
      log_.notice("warning: skipping checkpoint: %s", e.what());
    }
  }
  // A failed read may have overwritten part of the model and the optimizer: start clean.
  model_.init(cfg_.seed);
  adam_.reset();
  log_.notice("note: no valid checkpoint in %s; starting from scratch", cfg_.checkpoint_dir.c_str());
  return false;
}

bool Checkpointer::resume() {
  int64_t found = 0;
  if (comm_.rank() == 0) found = load_on_rank0() ? 1 : 0;
  comm_.broadcast(&found, sizeof found, 0);
  broadcast_replica(comm_, model_.arena());  // the checkpoint's, or rank 0's fresh start
  if (!found) return false;
  std::vector<float> m(adam_.count()), v(adam_.count());
  adam_.download_moments(m.data(), v.data());
  comm_.broadcast(m.data(), m.size() * sizeof(float), 0);
  comm_.broadcast(v.data(), v.size() * sizeof(float), 0);
  adam_.upload_moments(m.data(), v.data());
  ResumePosition pos{meta_.global_step, meta_.epoch, meta_.step_in_epoch, adam_.steps()};
  comm_.broadcast(&pos, sizeof pos, 0);
  comm_.broadcast(meta_.epoch_sums.data(), sizeof meta_.epoch_sums, 0);
  meta_.global_step = pos.global_step;
  meta_.epoch = static_cast<int>(pos.epoch);
  meta_.step_in_epoch = pos.step_in_epoch;
  adam_.set_steps(pos.adam_steps);
  return true;
}

void Checkpointer::check_compatible(const CheckpointMeta& m, const std::string& path) const {
  if (m.batch_size != cfg_.batch_size)
    throw UserError(path + " was written with --batch-size " + std::to_string(m.batch_size) +
                    "; resume with the same global batch (the world size may change)");
  // Settings recorded only in the config JSON: a checkpoint from before they existed has the default.
  nlohmann::json recorded = nlohmann::json::object();
  try {
    recorded = nlohmann::json::parse(m.config_json);
  } catch (const nlohmann::json::exception&) {
  }
  if (!recorded.is_object()) recorded = nlohmann::json::object();
  const int accumulate = recorded.value("accumulate", 1);
  if (accumulate != cfg_.accumulate)
    throw UserError(path + " was written with --accumulate " + std::to_string(accumulate) +
                    "; resume with the same (its position counts micro-steps of that group size)");
  const std::string augment = recorded.value("augment", std::string("none"));
  if (augment != data::augment_name(cfg_.augment_shift))
    throw UserError(path + " was written with --augment " + augment +
                    "; resume with the same (the run's images depend on it)");
  const bool deterministic = recorded.value("deterministic", false);
  if (deterministic != cfg_.deterministic)
    throw UserError(path + (deterministic ? " was written with --deterministic; resume with it"
                                          : " was written without --deterministic; resume without it") +
                    " (the run's arithmetic depends on it)");
  if (m.seed != cfg_.seed)
    throw UserError(path + " was written with --seed " + std::to_string(m.seed) + "; resume with the same seed");
  if (m.train_samples != static_cast<int64_t>(train_samples_) || m.drop_last != cfg_.drop_last)
    throw UserError(path + " was written for a training split of " + std::to_string(m.train_samples) +
                    " samples" + (m.drop_last ? " with --drop-last" : "") + "; this data has " +
                    std::to_string(train_samples_));
}

std::string Checkpointer::config_json() const {
  nlohmann::json j = {{"model", cfg_.model},         {"epochs", cfg_.epochs},
                      {"batch_size", cfg_.batch_size}, {"lr", cfg_.lr},
                      {"seed", cfg_.seed},           {"bn", cfg_.sync_bn ? "sync" : "local"},
                      {"drop_last", cfg_.drop_last}, {"data", cfg_.data_dir},
                      {"accumulate", cfg_.accumulate}, {"dropout", cfg_.dropout},
                      {"augment", data::augment_name(cfg_.augment_shift)},
                      {"deterministic", cfg_.deterministic}, {"world_size", comm_.size()}};
  return j.dump();
}

std::string Checkpointer::write(GradientSync& sync, EpochPosition at, EpochSums sums) {
  comm_.allreduce_sum(sums.data(), EpochSums::kSize);
  sync.gather_moments();  // under the sharded exchange each rank's moments are current on its shard only
  std::string path;
  if (comm_.rank() == 0) {
    CheckpointMeta m;
    m.global_step = adam_.steps();
    m.epoch = at.epoch;
    m.step_in_epoch = at.step_in_epoch;
    m.epoch_sums = sums;
    m.model = cfg_.model;
    m.batch_size = cfg_.batch_size;
    m.seed = cfg_.seed;
    m.train_samples = static_cast<int64_t>(train_samples_);
    m.drop_last = cfg_.drop_last;
    m.world_size = comm_.size();
    m.config_json = config_json();
    path = (std::filesystem::path(cfg_.checkpoint_dir) / checkpoint_file_name(m.global_step)).string();
    model_.arena().sync_to_host();
    try {
      write_checkpoint(path, model_, adam_, m);
    } catch (const NoSpaceError& e) {
      throw NoSpaceError(std::string(e.what()) + "; the checkpoints written before are intact in " +
                         cfg_.checkpoint_dir + " (--resume auto continues from the newest)");
    }
    prune_checkpoints(cfg_.checkpoint_dir, cfg_.keep_checkpoints);
  }
  comm_.barrier();
  return path;
}

}  // namespace mnist_dist
