// Checkpoints and exact resume as users hit them: a run killed at any step and resumed ends
// bit for bit where the uninterrupted run ends; SIGTERM under mpirun checkpoints and exits 3;
// a dead rank ends the job within the bound; a corrupt checkpoint is skipped; a diverging run
// stops with the step named and writes no checkpoint of the bad weights; every checkpoint and
// model has a SHA-256 sidecar in sha256sum's format, pruned with its checkpoint.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "core/error.h"
#include "data_pipeline/sha256.h"
#include "e2e_setup.h"
#include "idx_writer.h"
#include "io/checkpoint.h"
#include "io/model_io.h"
#include "io/sidecar.h"
#include "model/model.h"
#include "run_command.h"

namespace fs = std::filesystem;
using mnist_dist::testing::last_value;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
// mnist_dist with the MNIST_DIST_TEST_* fault injection (tests/e2e/fault_main.cpp).
const std::string kFaultyDist = MNIST_DIST_FAULTS_BIN;
const std::string kMpiexec = mnist_dist::testing::mpiexec_prefix(MPIEXEC_BIN);

class CheckpointE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("md_ckpt_e2e_" + std::to_string(getpid()));
    // 3000 samples → 2100 train → 17 steps per epoch at batch 128.
    const auto r = mnist_dist::testing::prepare_block_dataset(root_, MNIST_PREPARE_BIN, 3000, 300);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    full_ = (root_ / "full.h5").string();
    const auto f = run_command(kDist + common() + " --save " + full_);
    ASSERT_EQ(f.exit_code, 0) << f.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  // 40 steps over 3 epochs (17 + 17 + 6), two threads.
  static std::string common() {
    return " --device cpu --data " + (root_ / "h5").string() + " --epochs 3 --max-steps 40 --threads 2";
  }
  static std::string dir(const std::string& name) { return (root_ / name).string(); }

  static mnist_dist::Model load(const std::string& path) {
    mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
    mnist_dist::load_model(m, path);
    return m;
  }
  static bool bitwise_equal(const std::string& a, const std::string& b) {
    mnist_dist::Model ma = load(a), mb = load(b);
    const auto& x = ma.arena();
    const auto& y = mb.arena();
    return std::memcmp(x.params(), y.params(), x.param_count() * sizeof(float)) == 0 &&
           std::memcmp(x.state(), y.state(), x.state_count() * sizeof(float)) == 0;
  }
  static fs::path root_;
  static std::string full_;
};
fs::path CheckpointE2E::root_;
std::string CheckpointE2E::full_;

class KillAndResume : public CheckpointE2E, public ::testing::WithParamInterface<int> {};

TEST_P(KillAndResume, EqualsTheUninterruptedRunBitForBit) {
  const int kill_at = GetParam();
  const std::string ck = dir("ck_kill_" + std::to_string(kill_at));
  const std::string out = dir("resumed_" + std::to_string(kill_at) + ".h5");
  const auto killed = run_command("MNIST_DIST_TEST_KILL=0:" + std::to_string(kill_at) + " " + kFaultyDist +
                                  common() + " --checkpoint-dir " + ck + " --checkpoint-every 4");
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;  // SIGKILL
  ASSERT_FALSE(mnist_dist::list_checkpoints(ck).empty());
  const auto resumed = run_command(kDist + common() + " --checkpoint-dir " + ck +
                                   " --checkpoint-every 4 --resume auto --save " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const int from = kill_at / 4 * 4;
  EXPECT_NE(resumed.output.find("resuming from " + ck + "/" + mnist_dist::checkpoint_file_name(from)),
            std::string::npos)
      << resumed.output;
  EXPECT_TRUE(bitwise_equal(out, full_)) << "killed after step " << kill_at;
}

// Mid-epoch, just after an epoch boundary (17), and in the last epoch.
INSTANTIATE_TEST_SUITE_P(ThreePoints, KillAndResume, ::testing::Values(6, 18, 31));

// A learning-rate schedule is a function of the global step: a run killed mid-warm-up-and-cosine
// and resumed ends bit for bit where the uninterrupted scheduled run ends (and not where the
// constant-LR run ends).
TEST_F(CheckpointE2E, AScheduledRunKilledAndResumedEqualsTheUninterruptedOne) {
  const std::string sched = " --lr-schedule cosine --warmup-steps 5 --lr-min 1e-5";
  const std::string full = dir("sched_full.h5"), out = dir("sched_resumed.h5"), ck = dir("ck_sched");
  const std::string run = dir("sched_run");
  ASSERT_EQ(run_command(kDist + common() + sched + " --save " + full + " --run-dir " + run).exit_code, 0);
  // metrics.jsonl: each epoch's "lr" is its last step's, from the closed form (PyTorch's
  // values are checked step by step in test_lr_schedule).
  std::ifstream metrics(run + "/metrics.jsonl");
  std::vector<double> lrs;
  for (std::string line; std::getline(metrics, line);)
    if (line.find("\"kind\": \"epoch\"") != std::string::npos || line.find("\"kind\":\"epoch\"") != std::string::npos)
      lrs.push_back(last_value(line.substr(line.find("\"lr\"")), "\"lr\":"));
  ASSERT_EQ(lrs.size(), 3u);
  const double pi = std::acos(-1.0);
  for (const auto& [epoch, last_step] : std::vector<std::pair<int, int>>{{0, 17}, {1, 34}, {2, 40}}) {
    const double t = last_step - 1 - 5;  // 0-based step after the warm-up
    const double expect = 1e-5 + (1e-3 - 1e-5) * (1.0 + std::cos(pi * t / 35.0)) / 2.0;
    EXPECT_NEAR(lrs[epoch], expect, 1e-5 * expect) << "epoch " << epoch + 1;
  }
  const auto killed = run_command("MNIST_DIST_TEST_KILL=0:14 " + kFaultyDist + common() + sched +
                                  " --checkpoint-dir " + ck + " --checkpoint-every 4");
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;
  const auto resumed = run_command(kDist + common() + sched + " --checkpoint-dir " + ck + " --resume auto --save " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("cosine to 1e-05 over 35 steps after 5 linear warm-up steps"), std::string::npos)
      << resumed.output;
  EXPECT_TRUE(bitwise_equal(out, full));
  EXPECT_FALSE(bitwise_equal(full, full_)) << "the schedule changed nothing";
}

TEST_F(CheckpointE2E, SigtermUnderMpirunCheckpointsAllRanksAgreeAndResumeCompletes) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string ck = dir("ck_term");
  // Only rank 1 gets the signal, mid-epoch 2; both ranks must stop at the same step.
  const auto stopped = run_command("MNIST_DIST_TEST_SIGNAL=1:23 " + kMpiexec + "2 " + kFaultyDist + common() +
                                   " --threads 1 --checkpoint-dir " + ck);
  EXPECT_EQ(stopped.exit_code, 3) << stopped.output;
  EXPECT_NE(stopped.output.find("stopped by a signal (SIGTERM/SIGUSR1) at global step 23"), std::string::npos) << stopped.output;
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_FALSE(cks.empty());
  EXPECT_EQ(fs::path(cks.front()).filename().string(), mnist_dist::checkpoint_file_name(23));
  const std::string out = dir("term_resumed.h5");
  const auto resumed = run_command(kMpiexec + "2 " + kDist + common() + " --threads 1 --checkpoint-dir " +
                                   ck + " --resume auto --save " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("Test accuracy: "), std::string::npos);
  // Same world size before and after the stop: the 2-rank run ends where it would have.
  const std::string full2 = dir("full2.h5");
  const auto f2 = run_command(kMpiexec + "2 " + kDist + common() + " --threads 1 --save " + full2);
  ASSERT_EQ(f2.exit_code, 0) << f2.output;
  EXPECT_TRUE(bitwise_equal(out, full2));
}

TEST_F(CheckpointE2E, ResumingOnAnotherWorldSizeContinuesTheTrajectory) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string ck1 = dir("ck_ws1"), ck2 = dir("ck_ws2");
  const std::string first = kDist + " --device cpu --data " + (root_ / "h5").string() + " --epochs 3 --threads 1";
  ASSERT_EQ(run_command(first + " --max-steps 10 --checkpoint-dir " + ck1).exit_code, 0);
  fs::copy(ck1, ck2);
  const auto same = run_command(first + " --max-steps 30 --checkpoint-dir " + ck1 + " --resume auto");
  const auto other = run_command(kMpiexec + "2 " + first + " --max-steps 30 --checkpoint-dir " + ck2 + " --resume auto");
  ASSERT_EQ(same.exit_code, 0) << same.output;
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("written by 1 rank(s)"), std::string::npos) << other.output;
  const double a = last_value(same.output, "Test loss: "), b = last_value(other.output, "Test loss: ");
  std::printf("test loss after resuming at step 10 and 20 more steps: 1 rank %.6f, 2 ranks %.6f\n", a, b);
  EXPECT_NEAR(a, b, 2e-3);
}

TEST_F(CheckpointE2E, KillingOneRankOfFourEndsTheJobWithinTheBound) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string ck = dir("ck_rankdeath");
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_command("MNIST_DIST_TEST_KILL=2:9 " + kMpiexec + "4 " + kFaultyDist + common() +
                             " --threads 1 --epochs 50 --max-steps 0 --timeout 20 --checkpoint-dir " + ck +
                             " --checkpoint-every 4");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_LT(s, 60.0) << r.output;
  // The last checkpoint (step 8) is intact.
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_FALSE(cks.empty());
  mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::Adam adam({}, m.arena().param_count());
  EXPECT_EQ(mnist_dist::read_checkpoint(cks.front(), m, adam).global_step, 8);
}

// The first attempt of a preemptible job: --resume auto finds nothing to resume and must train
// exactly like a run without it (fresh weights, fresh Adam on the run's backend).
TEST_F(CheckpointE2E, ResumeAutoWithAnEmptyCheckpointDirTrainsLikeAFreshRun) {
  const std::string ck = dir("ck_empty"), out = dir("resume_auto_fresh.h5");
  fs::create_directories(ck);
  const auto r = run_command(kDist + common() + " --checkpoint-dir " + ck + " --resume auto --save " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("resuming from"), std::string::npos) << r.output;
  EXPECT_TRUE(bitwise_equal(full_, out)) << "weights differ from the run without --resume";
}

// Same when every checkpoint present is unusable: all are skipped, training starts afresh.
TEST_F(CheckpointE2E, ResumeAutoWithOnlyCorruptCheckpointsTrainsLikeAFreshRun) {
  const std::string ck = dir("ck_all_corrupt"), out = dir("resume_auto_corrupt.h5");
  ASSERT_EQ(run_command(kDist + common() + " --max-steps 4 --checkpoint-dir " + ck + " --checkpoint-every 4").exit_code, 0);
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_EQ(cks.size(), 1u);
  fs::resize_file(cks.front(), fs::file_size(cks.front()) / 2);
  const auto r = run_command(kDist + common() + " --checkpoint-dir " + ck + " --resume auto --save " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping checkpoint: " + cks.front()), std::string::npos) << r.output;
  EXPECT_TRUE(bitwise_equal(full_, out)) << "weights differ from the run without --resume";
}

// The release binary has no fault injection: the test variables change nothing.
TEST_F(CheckpointE2E, ReleaseBinaryIgnoresTheTestFaultVariables) {
  const std::string out = dir("release_ignores_faults.h5");
  const auto r = run_command("MNIST_DIST_TEST_KILL=0:3 MNIST_DIST_TEST_SIGNAL=0:5 MNIST_DIST_TEST_FAIL=0:7 " + kDist +
                             common() + " --save " + out);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(bitwise_equal(full_, out));
}

TEST_F(CheckpointE2E, ACorruptNewestCheckpointIsSkippedWithAWarning) {
  const std::string ck = dir("ck_corrupt");
  ASSERT_EQ(run_command(kDist + common() + " --max-steps 8 --checkpoint-dir " + ck + " --checkpoint-every 4").exit_code, 0);
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_EQ(cks.size(), 2u);
  fs::resize_file(cks.front(), fs::file_size(cks.front()) / 2);  // a partial write
  const auto r = run_command(kDist + common() + " --max-steps 10 --checkpoint-dir " + ck + " --resume auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("warning: skipping checkpoint: " + cks.front() + ": SHA-256 mismatch"),
            std::string::npos) << r.output;  // caught before HDF5 opened it
  EXPECT_NE(r.output.find("resuming from " + cks.back()), std::string::npos) << r.output;
}

TEST_F(CheckpointE2E, SidecarsAreSha256sumLinesAndArePrunedWithTheirCheckpoints) {
  const std::string ck = dir("ck_sidecars");
  const std::string model = dir("sidecar_model.h5");
  const auto r = run_command(kDist + common() + " --max-steps 6 --checkpoint-dir " + ck +
                             " --checkpoint-every 1 --keep-checkpoints 2 --save " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Exactly the two newest checkpoints and their sidecars: the others went with theirs.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ck)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-0000000005.h5", "ckpt-0000000005.h5.sha256",
                                             "ckpt-0000000006.h5", "ckpt-0000000006.h5.sha256"}));
  // list_checkpoints lists checkpoints, not sidecars.
  EXPECT_EQ(mnist_dist::list_checkpoints(ck),
            (std::vector<std::string>{ck + "/ckpt-0000000006.h5", ck + "/ckpt-0000000005.h5"}));
  // "<sha256 of the file>  <basename>\n", for checkpoints and for the --save model alike.
  for (const std::string& file : {ck + "/ckpt-0000000006.h5", ck + "/ckpt-0000000005.h5", model}) {
    std::ifstream f(file + ".sha256", std::ios::binary);
    const std::string line((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(line, mnist_dist::data::sha256_file(file) + "  " + fs::path(file).filename().string() + "\n");
  }
  const auto check = run_command("cd " + ck + " && sha256sum --check --strict *.sha256");
  EXPECT_EQ(check.exit_code, 0) << check.output;
}

// check_sidecar on real files: sha256sum's variants (upper-case digits, binary-mode " *name",
// another name) pass; anything but one such line is refused, naming the sidecar.
TEST(Sidecar, AcceptsSha256sumLinesAndRefusesOthers) {
  const fs::path dir = fs::temp_directory_path() / ("md_sidecar_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string file = (dir / "f.h5").string();
  std::ofstream(file, std::ios::binary) << "some bytes\n";
  const std::string sum = mnist_dist::data::sha256_file(file);
  std::string upper = sum;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto with_sidecar = [&](const std::string& text) {
    std::ofstream(mnist_dist::sidecar_path(file), std::ios::binary | std::ios::trunc) << text;
    return mnist_dist::check_sidecar(file, "FIX");
  };
  EXPECT_EQ(mnist_dist::check_sidecar(file, "FIX"), mnist_dist::SidecarCheck::kMissing);
  EXPECT_FALSE(mnist_dist::has_sidecar(file));
  for (const std::string& ok : {sum + "  f.h5\n", upper + "  f.h5\n", sum + " *f.h5\n", sum + "  renamed.h5\n"})
    EXPECT_EQ(with_sidecar(ok), mnist_dist::SidecarCheck::kMatches) << ok;
  EXPECT_TRUE(mnist_dist::has_sidecar(file));
  for (const std::string& bad : {std::string(), sum + "\n", sum + "  f.h5", sum + "\tf.h5\n", sum.substr(1) + "  f.h5\n",
                                 "g" + sum.substr(1) + "  f.h5\n", sum + "  f.h5\n" + sum + "  f.h5\n",
                                 std::string(5000, 'a')}) {
    try {
      with_sidecar(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const mnist_dist::UserError& e) {
      EXPECT_NE(std::string(e.what()).find("f.h5.sha256 is not a sha256sum line"), std::string::npos) << e.what();
    }
  }
  try {
    with_sidecar(std::string(64, '0') + "  f.h5\n");
    ADD_FAILURE() << "a wrong digest was accepted";
  } catch (const mnist_dist::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("f.h5: SHA-256 mismatch"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("the file's is " + sum + "); FIX"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

// The loss sums are read once per --log-every steps (and before each checkpoint): the step named
// is the first non-finite one, not the step of the read-back, and no checkpoint follows it.
TEST_F(CheckpointE2E, NonFiniteLossIsCaughtWithinTheLossWindowNamingItsStep) {
  const std::string ck = dir("ck_nan_window");
  const auto r = run_command(kDist + common() + " --lr 1e30 --log-every 50 --checkpoint-dir " + ck +
                             " --checkpoint-every 6");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  const size_t at = r.output.find("non-finite loss at epoch 1, step ");
  ASSERT_NE(at, std::string::npos) << r.output;
  const int step = std::stoi(r.output.substr(at + std::strlen("non-finite loss at epoch 1, step ")));
  EXPECT_GE(step, 2) << r.output;
  EXPECT_LT(step, 6) << "named the read-back's step, not the first non-finite one:\n" << r.output;
  EXPECT_TRUE(mnist_dist::list_checkpoints(ck).empty()) << "a checkpoint after the first non-finite step";
}

TEST_F(CheckpointE2E, NonFiniteLossStopsWithTheStepAndNoCheckpointOfBadWeights) {
  const std::string ck = dir("ck_nan");
  const auto r = run_command(kDist + common() + " --lr 1e30 --checkpoint-dir " + ck + " --checkpoint-every 1");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("non-finite loss at epoch 1, step "), std::string::npos) << r.output;
  // Every checkpoint written holds finite weights (written before the bad step).
  for (const auto& path : mnist_dist::list_checkpoints(ck)) {
    mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
    mnist_dist::Adam adam({}, m.arena().param_count());
    mnist_dist::read_checkpoint(path, m, adam);
    for (size_t i = 0; i < m.arena().param_count(); ++i) ASSERT_TRUE(std::isfinite(m.arena().params()[i])) << path;
  }
}

}  // namespace
