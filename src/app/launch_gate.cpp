// The launch gate (app/launch_gate.h): the launcher's world size against MPI's, then one
// all-gather of a fingerprint hash; only when the hashes differ, per-field all-gathers and one
// broadcast per distinct value build the message.
#include "app/launch_gate.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>

#include "core/error.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/sha256.h"
#include "report/build_info.h"
#include "train/augment.h"

namespace mnist_dist {
namespace {

std::string fmt_float(double v, const char* f) {
  char s[64];
  std::snprintf(s, sizeof s, f, v);
  return s;
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (const unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t field_hash(const GateField& f) { return fnv1a(f.value, fnv1a(f.name + '\0')); }

std::string build_string() {
  const nlohmann::ordered_json b = build_info();
  std::string s = "version " + b.value("version", std::string("?"));
  s += ", commit " + (b["git_commit"].is_string() ? b["git_commit"].get<std::string>() : std::string("unknown"));
  if (b["git_dirty"].is_boolean() && b["git_dirty"].get<bool>()) s += " with local changes";
  s += b.value("cuda", false) ? ", CUDA" : ", no CUDA";
  return s;
}

GateField data_field(const std::string& dir) {
  const std::string path = dir + "/" + data::kManifestFile;
  try {
    const std::string sum = data::sha256_file(path);
    return {"data", sum, "manifest sha256 " + sum.substr(0, 16) + "… (" + path + ")"};
  } catch (const std::exception&) {
    // The trainer reports an unreadable data directory itself (exit 2 on every rank); here it
    // only has to differ from a readable one.
    return {"data", "unreadable " + path, "no readable " + path};
  }
}

const char* first_set(const std::function<const char*(const char*)>& env, std::initializer_list<const char*> vars,
                      const char** which) {
  for (const char* v : vars)
    if (const char* s = env(v); s != nullptr && *s != '\0') {
      *which = v;
      return s;
    }
  return nullptr;
}

// Groups ranks by hash: the lowest rank of each group first, groups in order of their lowest rank.
std::vector<std::vector<int>> group_by(const std::vector<uint64_t>& hashes) {
  std::vector<std::vector<int>> groups;
  std::map<uint64_t, size_t> index;
  for (size_t r = 0; r < hashes.size(); ++r) {
    auto [it, fresh] = index.emplace(hashes[r], groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(static_cast<int>(r));
  }
  return groups;
}

// Root's string to every rank (at most 511 bytes).
std::string broadcast_string(Communicator& comm, const std::string& s, int root) {
  char buf[512] = {0};
  if (comm.rank() == root) std::snprintf(buf, sizeof buf, "%s", s.c_str());
  comm.broadcast(buf, sizeof buf, root);
  buf[sizeof buf - 1] = '\0';
  return buf;
}

constexpr size_t kMaxGroupsShown = 4;

}  // namespace

Fingerprint launch_fingerprint(const TrainConfig& c, const std::string& device) {
  Fingerprint f;
  f.push_back({"build", build_string(), ""});
  f.push_back({"model", c.model, ""});
  f.push_back({"epochs", std::to_string(c.epochs), ""});
  f.push_back({"max-steps", std::to_string(c.max_steps), ""});
  f.push_back({"batch-size", std::to_string(c.batch_size), ""});
  f.push_back({"accumulate", std::to_string(c.accumulate), ""});
  f.push_back({"lr", fmt_float(c.lr, "%.9g"), fmt_float(c.lr, "%g")});
  const LrScheduleConfig& ls = c.lr_schedule;
  f.push_back({"lr-schedule",
               ls.kind + " warmup " + std::to_string(ls.warmup_steps) + " step " + std::to_string(ls.step_size) +
                   " gamma " + fmt_float(ls.gamma, "%.17g") + " min " + fmt_float(ls.min_lr, "%.17g") +
                   " scale-ref " + std::to_string(ls.scale_reference_batch),
               ""});
  f.push_back({"weight-decay", fmt_float(c.weight_decay, "%.9g"), fmt_float(c.weight_decay, "%g")});
  f.push_back({"dropout", fmt_float(c.dropout, "%.9g"), fmt_float(c.dropout, "%g")});
  f.push_back({"tf32", c.tf32 ? "on" : "off", ""});
  // When training ends: every rank must stop after the same epoch.
  f.push_back({"early-stopping",
               std::to_string(c.early_stopping.patience) + " " + c.early_stopping.monitor + " " +
                   fmt_float(c.early_stopping.min_delta, "%.17g"),
               ""});
  f.push_back({"seed", std::to_string(c.seed), ""});
  f.push_back({"bn", c.sync_bn ? "sync" : "local", ""});
  f.push_back({"drop-last", c.drop_last ? "yes" : "no", ""});
  f.push_back({"augment", data::augment_name(c.augment_shift), ""});
  f.push_back({"deterministic", c.deterministic ? "on" : "off", ""});
  f.push_back({"device", device, ""});
  f.push_back({"grad-exchange", c.grad_exchange, ""});
  f.push_back({"bucket-mb", fmt_float(c.bucket_mb, "%.17g"), fmt_float(c.bucket_mb, "%g")});
  // The schedule of collectives: hash checks, checkpoints (written collectively when a directory
  // is set), resuming (every rank loads the same state).
  f.push_back({"hash-check-every", std::to_string(c.hash_check_every), ""});
  f.push_back({"checkpoint-every", c.checkpoint_every == 0 ? "epoch" : std::to_string(c.checkpoint_every), ""});
  f.push_back({"checkpoint-dir", c.checkpoint_dir.empty() ? "none" : "set",
               c.checkpoint_dir.empty() ? "none" : c.checkpoint_dir});
  f.push_back({"resume", c.resume.empty() ? "no" : c.resume, ""});
  f.push_back(data_field(c.data_dir));
  return f;
}

std::string check_launcher_world(int world, const std::function<const char*(const char*)>& env) {
  const char* var = nullptr;
  const char* said = first_set(env, {"OMPI_COMM_WORLD_SIZE"}, &var);
  if (said == nullptr) said = first_set(env, {"PMIX_SIZE", "PMI_SIZE"}, &var);
  if (said == nullptr) said = first_set(env, {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"}, &var);
  if (said == nullptr) return "";
  char* end = nullptr;
  const long n = std::strtol(said, &end, 10);
  if (*end != '\0' || n < 1) return "";  // not a count: nothing to compare
  if (n == world) return "";
  const std::string head = std::string(var) + "=" + said + " but this process is in an MPI world of " +
                           std::to_string(world) + " rank(s)";
  if (world == 1)
    return head + ": the launcher started " + said +
           " separate one-process jobs, not one job of " + said +
           " ranks (Open MPI programs started by plain srun without PMI, or a build of mnist_dist "
           "without MPI). Start the ranks with `srun --mpi=pmix` (or `mpirun`), and check that "
           "`mnist_dist` was built with MPI";
  return head + ": the ranks did not all join one MPI job. Start them with one `mpirun` or "
                "`srun --mpi=pmix` command";
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!s.empty()) s += ",";
    s += std::to_string(ranks[i]);
    if (j > i) s += "-" + std::to_string(ranks[j]);
    i = j + 1;
  }
  return s;
}

std::string describe_disagreement(const std::vector<FieldGroups>& fields) {
  std::string s;
  for (const FieldGroups& f : fields) {
    if (f.ranks.size() < 2) continue;
    s += s.empty() ? "" : "; ";
    s += f.name + ": ";
    for (size_t g = 0; g < f.ranks.size(); ++g) {
      if (g > 0) s += ", ";
      if (g == kMaxGroupsShown) {
        s += "and " + std::to_string(f.ranks.size() - g) + " more value(s)";
        break;
      }
      s += (f.ranks[g].size() == 1 ? "rank " : "ranks ") + rank_list(f.ranks[g]) + " " +
           (g < f.shown.size() ? f.shown[g] : std::string("?"));
    }
  }
  if (s.empty()) return s;
  return "the ranks of this job were started differently (" + s +
         "). Every rank must run the same mnist_dist build with the same flags on the same data: "
         "start them with one mpirun/srun command line (no MPMD ':' with other flags) from a shared "
         "build and data directory";
}

std::string agree_across_ranks(Communicator& comm, const Fingerprint& mine) {
  const size_t W = static_cast<size_t>(comm.size());
  if (W == 1) return "";
  uint64_t all = fnv1a(std::to_string(mine.size()));
  for (const GateField& f : mine) all = fnv1a(std::to_string(field_hash(f)), all);
  std::vector<uint64_t> h(W);
  comm.allgather_u64(all, h.data());
  if (std::all_of(h.begin(), h.end(), [&](uint64_t x) { return x == h[0]; })) return "";

  // They differ. The field list itself (a different build may check other fields): its names.
  uint64_t names = 0;
  for (const GateField& f : mine) names = fnv1a(f.name, names);
  comm.allgather_u64(names, h.data());
  const bool same_fields = std::all_of(h.begin(), h.end(), [&](uint64_t x) { return x == h[0]; });
  // With other field lists only the first field, the build, is compared (every version has it).
  const size_t n = same_fields ? mine.size() : 1;
  std::vector<FieldGroups> out;
  for (size_t i = 0; i < n; ++i) {
    comm.allgather_u64(field_hash(mine[i]), h.data());
    FieldGroups g;
    g.name = mine[i].name;
    g.ranks = group_by(h);
    if (g.ranks.size() < 2) continue;
    for (size_t k = 0; k < g.ranks.size() && k < kMaxGroupsShown; ++k) {
      const GateField& f = mine[i];
      g.shown.push_back(broadcast_string(comm, f.shown.empty() ? f.value : f.shown, g.ranks[k][0]));
    }
    out.push_back(std::move(g));
  }
  std::string msg = describe_disagreement(out);
  if (msg.empty()) msg = "the ranks of this job were started differently (a field list this build cannot compare)";
  return msg;
}

int run_launch_gate(Communicator& comm, const TrainConfig& cfg, const std::string& device) {
  // Each process alone when the launcher and MPI disagree: each reports, none can reach the others.
  const std::string world = check_launcher_world(comm.size(), [](const char* v) { return std::getenv(v); });
  if (!world.empty()) throw UserError(world);
  const std::string msg = agree_across_ranks(comm, launch_fingerprint(cfg, device));
  if (msg.empty()) return kExitOk;
  if (comm.rank() == 0) {
    std::fprintf(stderr, "mnist_dist: error: %s\n", msg.c_str());
    std::fflush(stderr);
  }
  comm.barrier();
  return kExitUsage;
}

}  // namespace mnist_dist
