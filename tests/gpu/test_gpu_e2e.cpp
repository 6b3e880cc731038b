// The real mnist_dist on a GPU (label gpu; each test skips with the reason without one):
// --resume auto with nothing to resume trains like a fresh run (once the GPU run stepped a CPU
// Adam over device pointers), a GPU checkpoint resumes on the CPU, a diverging run is stopped
// within its loss window before any checkpoint of the bad weights, two ranks sharing the GPU
// through --comm host-staged match two CPU ranks, and NCCL refuses two ranks on one GPU with
// the way out named. TF32 off wherever GPU and CPU numbers are compared. --deterministic on the
// GPU: one rank, two micro-steps of half the batch and two host-staged ranks save the same
// weights bit for bit (the default mode does not), and a diverging run exits 4.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "cuda/cuda_runtime_api.h"
#include "e2e_setup.h"
#include "io/checkpoint.h"
#include "io/model_io.h"
#include "model/model.h"
#include "optim/adam.h"
#include "run_command.h"
#include "saved_models.h"

namespace fs = std::filesystem;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
const std::string kMpiexec = mnist_dist::testing::mpiexec_prefix(MPIEXEC_BIN);

#define MD_REQUIRE_GPU_HERE()                                               \
  do {                                                                      \
    std::string why_;                                                       \
    if (mnist_dist::usable_gpu_count(&why_) == 0) GTEST_SKIP() << "no usable GPU: " << why_; \
  } while (0)

using mnist_dist::testing::saved_bitwise_equal;
using mnist_dist::testing::saved_rel_l2;

class GpuE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string why;
    if (mnist_dist::usable_gpu_count(&why) == 0) return;
    root_ = fs::temp_directory_path() / ("md_gpu_e2e_" + std::to_string(getpid()));
    const auto r = mnist_dist::testing::prepare_block_dataset(root_, MNIST_PREPARE_BIN, 3000, 300);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    if (!root_.empty()) fs::remove_all(root_);
  }
  void SetUp() override { MD_REQUIRE_GPU_HERE(); }
  static std::string data() { return " --data " + (root_ / "h5").string() + " --threads 2 --progress lines"; }
  static std::string path(const std::string& name) { return (root_ / name).string(); }
  static fs::path root_;
};
fs::path GpuE2E::root_;

TEST_F(GpuE2E, ResumeAutoWithAnEmptyCheckpointDirTrainsLikeAFreshRun) {
  const std::string fresh = path("fresh.h5"), resumed = path("resume_auto.h5"), ck = path("ck_empty");
  fs::create_directories(ck);
  const auto a = run_command(kDist + " --device cuda" + data() + " --max-steps 20 --save " + fresh);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_NE(a.output.find("TF32 on"), std::string::npos) << "the start line names the math";
  const auto b = run_command(kDist + " --device cuda" + data() + " --max-steps 20 --checkpoint-dir " + ck +
                             " --resume auto --save " + resumed);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(b.output.find("resuming from"), std::string::npos) << b.output;
  EXPECT_LE(saved_rel_l2(resumed, fresh), 1e-6) << "weights differ from the run without --resume";
}

TEST_F(GpuE2E, AGpuCheckpointResumesOnTheCpu) {
  const std::string ck = path("ck_gpu"), gpu_only = path("gpu20.h5"), mixed = path("gpu10_cpu10.h5");
  const std::string common = data() + " --tf32 off --max-steps 20";
  ASSERT_EQ(run_command(kDist + " --device cuda" + common + " --save " + gpu_only).exit_code, 0);
  const auto first = run_command(kDist + " --device cuda" + data() + " --tf32 off --max-steps 10 --checkpoint-dir " +
                                 ck + " --checkpoint-every 10");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto second = run_command(kDist + " --device cpu" + common + " --checkpoint-dir " + ck +
                                  " --resume auto --save " + mixed);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resuming from"), std::string::npos) << second.output;
  EXPECT_LE(saved_rel_l2(mixed, gpu_only), 1e-3) << "10 GPU + 10 CPU steps vs 20 GPU steps";
}

TEST_F(GpuE2E, DivergenceIsCaughtWithinTheLossWindowBeforeAnyCheckpoint) {
  const std::string ck = path("ck_nan");
  const auto r = run_command(kDist + " --device cuda" + data() + " --lr 1e30 --log-every 7 --checkpoint-dir " + ck +
                             " --checkpoint-every 3");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("non-finite loss at epoch 1, step "), std::string::npos) << r.output;
  for (const auto& file : mnist_dist::list_checkpoints(ck)) {
    mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
    mnist_dist::Adam adam({}, m.arena().param_count());
    mnist_dist::read_checkpoint(file, m, adam);
    for (size_t i = 0; i < m.arena().param_count(); ++i) ASSERT_TRUE(std::isfinite(m.arena().params()[i])) << file;
  }
}

TEST_F(GpuE2E, TwoRanksSharingTheGpuHostStagedMatchTwoCpuRanks) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string gpu = path("staged2.h5"), cpu = path("cpu2.h5");
  const std::string common = data() + " --threads 1 --tf32 off --max-steps 10 --grad-exchange buckets --bucket-mb 0.05";
  const auto g = run_command(kMpiexec + "2 " + kDist + " --device cuda --comm host-staged" + common + " --save " + gpu);
  ASSERT_EQ(g.exit_code, 0) << g.output;
  EXPECT_NE(g.output.find("world 2 rank(s)"), std::string::npos) << g.output;
  EXPECT_NE(g.output.find("comm host-staged"), std::string::npos) << g.output;
  const auto c = run_command(kMpiexec + "2 " + kDist + " --device cpu" + common + " --save " + cpu);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_LE(saved_rel_l2(gpu, cpu), 1e-3) << "SyncBN and the buckets over two GPU ranks vs two CPU ranks";
}

TEST_F(GpuE2E, NcclRefusesTwoRanksOnOneGpuAndNamesTheWayOut) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  std::string why;
  if (mnist_dist::usable_gpu_count(&why) > 1) GTEST_SKIP() << "this machine has several GPUs";
  for (const std::string env : {"", "CUDA_VISIBLE_DEVICES=0 "}) {
    const auto r = run_command(env + kMpiexec + "2 " + kDist + " --device cuda" + data() + " --max-steps 2");
    EXPECT_EQ(r.exit_code, 2) << env << r.output;
    EXPECT_NE(r.output.find("--comm host-staged"), std::string::npos) << env << r.output;
  }
}

// A whole epoch (its last batch partial: a short chunk) of the seed net, whose BatchNorm sums go
// through the chunk slots.
static std::string deterministic_epoch(const std::string& data) {
  return data + " --device cuda --epochs 1 --deterministic --batch-size 128";
}

TEST_F(GpuE2E, DeterministicMicroStepsEqualTheWholeBatchBitForBit) {
  // LeNet-5: without BatchNorm, whose statistics are per micro-step, K x b is one batch of K·b.
  const std::string one = path("det_one.h5"), halves = path("det_halves.h5"), plain = path("det_plain.h5");
  const std::string lenet = " --model lenet5";
  const auto a = run_command(kDist + deterministic_epoch(data()) + lenet + " --save " + one);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_NE(a.output.find("exact integer all-reduce"), std::string::npos) << a.output;
  const auto b = run_command(kDist + deterministic_epoch(data()) + lenet + " --batch-size 64 --accumulate 2 --save " +
                             halves);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_TRUE(saved_bitwise_equal(one, halves, "lenet5"))
      << "--accumulate 2 x 64 vs 128, rel L2 " << saved_rel_l2(halves, one, "lenet5");
  const auto c = run_command(kDist + data() + lenet + " --device cuda --epochs 1 --batch-size 64 --accumulate 2 --save " +
                             plain);
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_FALSE(saved_bitwise_equal(one, plain, "lenet5")) << "the default mode should differ in the last bits";
}

TEST_F(GpuE2E, DeterministicTwoHostStagedRanksEqualOneBitForBit) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string one = path("det_one_b.h5"), two = path("det_two.h5");
  const auto a = run_command(kDist + deterministic_epoch(data()) + " --save " + one);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  const auto b = run_command(kMpiexec + "2 " + kDist + deterministic_epoch(data()) + " --comm host-staged --save " + two);
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_TRUE(saved_bitwise_equal(one, two)) << "2 host-staged ranks vs 1, rel L2 " << saved_rel_l2(two, one);
}

TEST_F(GpuE2E, ADeterministicRunThatDivergesExits4) {
  const auto r = run_command(kDist + " --device cuda" + data() + " --deterministic --max-steps 40 --lr 1e5");
  EXPECT_EQ(r.exit_code, 4) << r.output;
  EXPECT_NE(r.output.find("training diverged"), std::string::npos) << r.output;
}

}  // namespace
