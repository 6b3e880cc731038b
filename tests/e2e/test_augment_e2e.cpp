// --augment shift:N as users run it: it changes the training, a run killed mid-epoch resumes bit
// for bit (the shifts are drawn from seed, epoch and sample, not from the position in the run),
// two ranks train as one (the same shift for the same sample on every world size), and a
// checkpoint written with another --augment is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "e2e_setup.h"
#include "io/checkpoint.h"
#include "run_command.h"
#include "saved_models.h"

namespace fs = std::filesystem;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
const std::string kFaultyDist = MNIST_DIST_FAULTS_BIN;

class AugmentE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("md_augment_e2e_" + std::to_string(getpid()));
    // 2000 samples → 1400 train: 22 batches of 64 per epoch (the last 56).
    const auto r = mnist_dist::testing::prepare_block_dataset(root_, MNIST_PREPARE_BIN, 2000, 200);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }
  static std::string data() { return " --device cpu --data " + (root_ / "h5").string() + " -q"; }
  static std::string path(const std::string& name) { return (root_ / name).string(); }

  static double rel_l2(const std::string& a, const std::string& b) { return mnist_dist::testing::saved_rel_l2(a, b); }
  static bool bitwise_equal(const std::string& a, const std::string& b) {
    return mnist_dist::testing::saved_bitwise_equal(a, b);
  }
  static fs::path root_;
};
fs::path AugmentE2E::root_;

TEST_F(AugmentE2E, KilledMidEpochAndResumedEqualsTheUninterruptedRun) {
  const std::string full = path("s3_full.h5"), out = path("s3_resumed.h5"), ck = path("ck_s3");
  const std::string plain = path("none.h5");
  const std::string common = data() + " --threads 2 --batch-size 64 --epochs 2";
  ASSERT_EQ(run_command(kDist + common + " --augment shift:3 --save " + full).exit_code, 0);
  ASSERT_EQ(run_command(kDist + common + " --save " + plain).exit_code, 0);
  EXPECT_GT(rel_l2(full, plain), 1e-3) << "--augment shift:3 changed nothing";
  // Killed after step 30 (epoch 2), resumed from the checkpoint of step 28.
  const auto killed = run_command("MNIST_DIST_TEST_KILL=0:30 " + kFaultyDist + common + " --augment shift:3 --checkpoint-dir " +
                                  ck + " --checkpoint-every 4");
  EXPECT_EQ(killed.exit_code, 128 + 9) << killed.output;
  const auto resumed = run_command(kDist + common + " --augment shift:3 --checkpoint-dir " + ck +
                                   " --checkpoint-every 4 --resume auto --save " + out);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_TRUE(bitwise_equal(out, full)) << "resumed after step 28 of 44";

  // Another --augment: that checkpoint is refused (--resume FILE: exit 2, naming the setting).
  const auto cks = mnist_dist::list_checkpoints(ck);
  ASSERT_FALSE(cks.empty());
  const auto other = run_command(kDist + common + " --resume " + cks.front());
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("was written with --augment shift:3"), std::string::npos) << other.output;
}

#ifdef MPIEXEC_BIN
TEST_F(AugmentE2E, TwoRanksEqualOneRank) {
  MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN);
  const std::string one = path("s2_one.h5"), two = path("s2_two.h5");
  const std::string common = data() + " --threads 1 --batch-size 64 --max-steps 8 --augment shift:2";
  ASSERT_EQ(run_command(kDist + common + " --save " + one).exit_code, 0);
  const auto r = run_command(mnist_dist::testing::mpiexec_prefix(MPIEXEC_BIN) + "2 " + kDist + common + " --save " + two);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // Float summation order only (SyncBN over the global batch): as the equivalence tests bound it.
  EXPECT_LE(rel_l2(two, one), 1e-5);
}
#endif

}  // namespace
