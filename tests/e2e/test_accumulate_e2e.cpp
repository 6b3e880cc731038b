// Gradient accumulation (--accumulate K) as users run it: K micro-batches of B equal one batch
// of K·B where no BatchNorm ties the statistics to the micro-batch (LeNet-5 here; the seed net's
// BatchNorm normalises each micro-batch, as PyTorch does, so there the two differ), two ranks
// equal one, --max-steps and checkpoints count optimizer steps, a run killed mid-epoch resumes
// bit for bit, and resuming with another K is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

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
const std::string kFaultyDist = MNIST_DIST_FAULTS_BIN;
const std::string kMpiexec = mnist_dist::testing::mpiexec_prefix(MPIEXEC_BIN);

class AccumulateE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("md_accum_e2e_" + std::to_string(getpid()));
    // 3000 samples → 2100 train: 33 micro-batches of 64 (the last 52), 17 batches of 128.
    const auto r = mnist_dist::testing::prepare_block_dataset(root_, MNIST_PREPARE_BIN, 3000, 300);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data() { return " --device cpu --data " + (root_ / "h5").string() + " -q"; }
  static std::string path(const std::string& name) { return (root_ / name).string(); }

  static double rel_l2(const std::string& a, const std::string& b, const std::string& model = "seed") {
    return mnist_dist::testing::saved_rel_l2(a, b, model);
  }
  static bool bitwise_equal(const std::string& a, const std::string& b) {
    return mnist_dist::testing::saved_bitwise_equal(a, b);
  }
  static fs::path root_;
};
fs::path AccumulateE2E::root_;

TEST_F(AccumulateE2E, TwoMicroBatchesOf64EqualOneBatchOf128WithoutBatchNorm) {
  const std::string a = path("lenet_k2.h5"), b = path("lenet_b128.h5"), c = path("lenet_b64.h5");
  const std::string common = data() + " --model lenet5 --threads 1 --epochs 2 --max-steps 20";
  ASSERT_EQ(run_command(kDist + common + " --batch-size 64 --accumulate 2 --save " + a).exit_code, 0);
  ASSERT_EQ(run_command(kDist + common + " --batch-size 128 --save " + b).exit_code, 0);
  ASSERT_EQ(run_command(kDist + common + " --batch-size 64 --save " + c).exit_code, 0);
  // 20 optimizer steps over an epoch boundary (the last group of epoch 1 is one micro-batch of 52).
  EXPECT_LE(rel_l2(a, b, "lenet5"), 1e-5) << "accumulated vs one batch of twice the size";
  EXPECT_GT(rel_l2(c, b, "lenet5"), 1e-2) << "the control: batch 64 without accumulation differs";
}

TEST_F(AccumulateE2E, MaxStepsAndCheckpointsCountOptimizerSteps) {
  const std::string ck = path("ck_count");
  const auto r = run_command(kDist + data() + " --threads 2 --batch-size 64 --accumulate 3 --max-steps 5 --checkpoint-dir " +
                             ck + " --checkpoint-every 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_FALSE(cks.empty());
  mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::Adam adam({}, m.arena().param_count());
  const mnist_dist::CheckpointMeta meta = mnist_dist::read_checkpoint(cks.front(), m, adam);
  EXPECT_EQ(meta.global_step, 5);
  EXPECT_EQ(meta.step_in_epoch, 15) << "15 micro-batches of the epoch done";
  // Another K: that checkpoint is refused (--resume FILE: exit 2; --resume auto skips it, saying why).
  const std::string other_k = kDist + data() + " --threads 2 --batch-size 64 --accumulate 2 --max-steps 8 ";
  const auto named = run_command(other_k + "--resume " + cks.front());
  EXPECT_EQ(named.exit_code, 2) << named.output;
  EXPECT_NE(named.output.find("was written with --accumulate 3"), std::string::npos) << named.output;
  const auto any = run_command(other_k + "--checkpoint-dir " + ck + " --resume auto");
  EXPECT_EQ(any.exit_code, 0) << any.output;
  EXPECT_NE(any.output.find("skipping checkpoint: " + cks.front() + " was written with --accumulate 3"),
            std::string::npos) << any.output;
}

TEST_F(AccumulateE2E, KilledMidEpochAndResumedEqualsTheUninterruptedRun) {
  const std::string full = path("k3_full.h5"), out = path("k3_resumed.h5"), ck = path("ck_k3");
  // 33 micro-batches per epoch: 11 optimizer steps of 3; 2 epochs = 22 steps.
  const std::string common = data() + " --threads 2 --batch-size 64 --accumulate 3 --epochs 2";
  ASSERT_EQ(run_command(kDist + common + " --save " + full).exit_code, 0);
  const auto killed = run_command("MNIST_DIST_TEST_KILL=0:14 " + kFaultyDist + common + " --checkpoint-dir " + ck +
                                  " --checkpoint-every 4");
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;
  const auto resumed = run_command(kDist + common + " --checkpoint-dir " + ck + " --checkpoint-every 4 --resume auto --save " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(bitwise_equal(out, full)) << "resumed after step 12 of 22";
}

TEST_F(AccumulateE2E, TwoRanksEqualOneRank) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string one = path("k2_one.h5");
  const std::string common = data() + " --threads 1 --batch-size 64 --accumulate 2 --max-steps 6";
  ASSERT_EQ(run_command(kDist + common + " --save " + one).exit_code, 0);
  for (const char* exchange : {"sharded", "buckets"}) {
    const std::string two = path(std::string("k2_two_") + exchange + ".h5");
    const auto r = run_command(kMpiexec + "2 " + kDist + common + " --grad-exchange " + exchange + " --save " + two);
    ASSERT_EQ(r.exit_code, 0) << exchange << "\n" << r.output;
    EXPECT_LE(rel_l2(two, one), 1e-5) << exchange;
  }
}

}  // namespace
