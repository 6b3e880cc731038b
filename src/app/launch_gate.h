// The launch gate: before the first collective of training, the world size must be what the
// launcher meant, and every rank must run the same build with the same math settings on the same
// data. A job that fails either is refused with one message and exit 2 (docs/cluster.md).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "train/trainer.h"

namespace mnist_dist {

// One thing the ranks must agree on. `value` is compared; `shown` is what the message prints
// (e.g. the manifest's path next to its checksum, which alone is compared).
struct GateField {
  std::string name;   // the flag's name ("lr", "batch-size") or "build", "data"
  std::string value;
  std::string shown;  // empty: value
};
using Fingerprint = std::vector<GateField>;

// This rank's fingerprint: the build first (version, commit, dirty), then every setting that
// changes the computation or the schedule of collectives, then the data manifest's SHA-256.
Fingerprint launch_fingerprint(const TrainConfig& cfg, const std::string& device);

// The world size this process is in against the size its launcher announced
// (OMPI_COMM_WORLD_SIZE; PMIX_SIZE / PMI_SIZE; without an MPI launcher SLURM_STEP_NUM_TASKS, else
// SLURM_NTASKS). Returns "" when they agree, else the refusal (a job of singletons: "use srun
// --mpi=pmix or mpirun"). `env` reads a variable (nullptr when unset).
std::string check_launcher_world(int world, const std::function<const char*(const char*)>& env);

// The ranks that hold each distinct value of one field, lowest rank first.
struct FieldGroups {
  std::string name;
  std::vector<std::string> shown;         // per group
  std::vector<std::vector<int>> ranks;    // per group
};

// The one message naming the fields that differ and which ranks hold which value ("" if none).
std::string describe_disagreement(const std::vector<FieldGroups>& fields);

// "0", "1-3", "0,2,5-7".
std::string rank_list(const std::vector<int>& ranks);

// Collective over comm, before any other collective of the run. Returns "" when every rank agrees;
// otherwise the same message on every rank. One all-gather of a hash when they agree.
std::string agree_across_ranks(Communicator& comm, const Fingerprint& mine);

// Both checks for mnist_dist train: returns 0 to go on, or kExitUsage after rank 0 printed
// "mnist_dist: error: ..." (a launcher mismatch is reported by every process: each is alone).
int run_launch_gate(Communicator& comm, const TrainConfig& cfg, const std::string& device);

}  // namespace mnist_dist
