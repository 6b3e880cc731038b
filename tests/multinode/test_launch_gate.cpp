// The launch gate's pure parts (app/launch_gate.h): the launcher's world size against MPI's, the
// fingerprint's fields, the message naming ranks and fields. The collective part runs for real in
// test_launch_gate.sh (MPMD mpirun with different flags, a job of singletons).
#include "app/launch_gate.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace mnist_dist {
namespace {

std::function<const char*(const char*)> env_of(const std::map<std::string, std::string>& vars) {
  return [vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(LaunchGate, WorldSizeAgreesWithTheLauncher) {
  EXPECT_EQ(check_launcher_world(1, env_of({})), "");
  EXPECT_EQ(check_launcher_world(4, env_of({{"OMPI_COMM_WORLD_SIZE", "4"}})), "");
  EXPECT_EQ(check_launcher_world(4, env_of({{"PMIX_SIZE", "4"}, {"SLURM_STEP_NUM_TASKS", "4"}})), "");
  EXPECT_EQ(check_launcher_world(4, env_of({{"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_NTASKS", "8"}})), "");
  // mpirun -np 2 inside a 4-task allocation: Open MPI's count is the one that holds.
  EXPECT_EQ(check_launcher_world(2, env_of({{"OMPI_COMM_WORLD_SIZE", "2"}, {"SLURM_NTASKS", "4"}})), "");
}

TEST(LaunchGate, AJobOfSingletonsIsRefusedWithTheFix) {
  // srun without PMI: four processes, each "rank 0 of 1".
  const std::string m = check_launcher_world(1, env_of({{"SLURM_NTASKS", "4"}}));
  EXPECT_NE(m.find("SLURM_NTASKS=4 but this process is in an MPI world of 1 rank(s)"), std::string::npos) << m;
  EXPECT_NE(m.find("srun --mpi=pmix"), std::string::npos) << m;
  EXPECT_NE(m.find("mpirun"), std::string::npos) << m;
  const std::string s = check_launcher_world(1, env_of({{"SLURM_STEP_NUM_TASKS", "2"}, {"SLURM_NTASKS", "2"}}));
  EXPECT_NE(s.find("SLURM_STEP_NUM_TASKS=2"), std::string::npos) << s;
  // mpirun started a build without MPI: each process alone.
  EXPECT_NE(check_launcher_world(1, env_of({{"OMPI_COMM_WORLD_SIZE", "3"}})).find("OMPI_COMM_WORLD_SIZE=3"), std::string::npos);
  // A world smaller than announced but not of one: the ranks did not all join.
  EXPECT_NE(check_launcher_world(2, env_of({{"PMI_SIZE", "4"}})).find("did not all join one MPI job"), std::string::npos);
}

TEST(LaunchGate, RankListsAreCompact) {
  EXPECT_EQ(rank_list({0}), "0");
  EXPECT_EQ(rank_list({1, 2, 3}), "1-3");
  EXPECT_EQ(rank_list({0, 2, 5, 6, 7}), "0,2,5-7");
}

TEST(LaunchGate, TheMessageNamesFieldsRanksAndValues) {
  const std::string m = describe_disagreement(
      {{"lr", {"0.001", "0.01"}, {{0}, {1}}}, {"batch-size", {"128", "64"}, {{0, 2}, {1, 3}}}, {"seed", {"1"}, {{0, 1, 2, 3}}}});
  EXPECT_NE(m.find("lr: rank 0 0.001, rank 1 0.01"), std::string::npos) << m;
  EXPECT_NE(m.find("batch-size: ranks 0,2 128, ranks 1,3 64"), std::string::npos) << m;
  EXPECT_EQ(m.find("seed"), std::string::npos) << m;  // all agree: not named
  EXPECT_EQ(describe_disagreement({{"seed", {"1"}, {{0, 1}}}}), "");
}

TEST(LaunchGate, FingerprintHoldsTheMathSettingsAndTheDataChecksum) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("md_gate_" + std::to_string(::getpid()));
  fs::create_directories(dir / "a");
  fs::create_directories(dir / "b");
  fs::create_directories(dir / "c");
  std::ofstream(dir / "a" / "manifest.json") << "{\"same\": 1}";
  std::ofstream(dir / "b" / "manifest.json") << "{\"same\": 1}";
  std::ofstream(dir / "c" / "manifest.json") << "{\"other\": 2}";
  TrainConfig c;
  c.data_dir = (dir / "a").string();
  auto value = [](const Fingerprint& f, const std::string& name) {
    for (const GateField& g : f)
      if (g.name == name) return g.value;
    return std::string("<missing>");
  };
  const Fingerprint base = launch_fingerprint(c, "cpu");
  EXPECT_EQ(base.front().name, "build");
  for (const char* name : {"model", "epochs", "max-steps", "batch-size", "lr", "seed", "bn", "drop-last", "device",
                           "grad-exchange", "bucket-mb", "hash-check-every", "checkpoint-every", "checkpoint-dir",
                           "resume", "data", "lr-schedule", "weight-decay", "tf32", "early-stopping",
                           "accumulate", "dropout", "augment"})
    EXPECT_NE(value(base, name), "<missing>") << name;
  TrainConfig d = c;
  d.lr = 0.01f;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "lr"), value(base, "lr"));
  d = c;
  d.lr_schedule.kind = "cosine";
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "lr-schedule"), value(base, "lr-schedule"));
  d = c;
  d.lr_schedule.warmup_steps = 10;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "lr-schedule"), value(base, "lr-schedule"));
  d = c;
  d.weight_decay = 0.01f;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "weight-decay"), value(base, "weight-decay"));
  d = c;
  d.dropout = 0.3f;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "dropout"), value(base, "dropout"));
  d = c;
  d.augment_shift = 2;
  EXPECT_EQ(value(launch_fingerprint(d, "cpu"), "augment"), "shift:2");
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "augment"), value(base, "augment"));
  d = c;
  d.tf32 = false;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "tf32"), value(base, "tf32"));
  d = c;
  d.early_stopping.patience = 3;
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "early-stopping"), value(base, "early-stopping"));
  d = c;
  d.data_dir = (dir / "b").string();  // another directory, the same bytes: the same data
  EXPECT_EQ(value(launch_fingerprint(d, "cpu"), "data"), value(base, "data"));
  d.data_dir = (dir / "c").string();
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "data"), value(base, "data"));
  d.data_dir = (dir / "missing").string();
  EXPECT_NE(value(launch_fingerprint(d, "cpu"), "data"), value(base, "data"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mnist_dist
