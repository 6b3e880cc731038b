// mnist_dist under a real mpiexec: multi-rank training gives the single-process result, and a
// failing or diverging rank ends the whole job quickly with the rank named.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "idx_writer.h"
#include "e2e_setup.h"
#include "run_command.h"

namespace fs = std::filesystem;
using mnist_dist::testing::last_value;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
// mnist_dist with the MNIST_DIST_TEST_* fault injection (tests/e2e/fault_main.cpp).
const std::string kFaultyDist = MNIST_DIST_FAULTS_BIN;
const std::string kMpiexec = mnist_dist::testing::mpiexec_prefix(MPIEXEC_BIN);

class MpiE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("md_mpi_e2e_" + std::to_string(getpid()));
    const auto r = mnist_dist::testing::prepare_block_dataset(dir_, MNIST_PREPARE_BIN, 2000, 400);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  void SetUp() override { MD_SKIP_WITHOUT_MPIEXEC(MPIEXEC_BIN); }
  static std::string args() { return " --device cpu --data " + (dir_ / "h5").string() + " --threads 1"; }
  static fs::path dir_;
};
fs::path MpiE2E::dir_;

TEST_F(MpiE2E, TwoAndFourRanksReproduceTheSingleProcessRun) {
  const auto one = run_command(kDist + args() + " --max-steps 20");
  const auto two = run_command(kMpiexec + "2 " + kDist + args() + " --max-steps 20");
  const auto four = run_command(kMpiexec + "4 " + kDist + args() + " --max-steps 20");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  ASSERT_EQ(two.exit_code, 0) << two.output;
  ASSERT_EQ(four.exit_code, 0) << four.output;
  EXPECT_NE(four.output.find("world 4 rank(s) on 1 node(s), 4 per node"), std::string::npos) << four.output;
  const double l1 = last_value(one.output, "Test loss: ");
  EXPECT_NEAR(last_value(two.output, "Test loss: "), l1, 2e-3 * l1 + 1e-4) << two.output;
  EXPECT_NEAR(last_value(four.output, "Test loss: "), l1, 2e-3 * l1 + 1e-4) << four.output;
  // Only rank 0 prints: one result line, not four.
  EXPECT_EQ(four.output.find("Test accuracy"), four.output.rfind("Test accuracy"));
}

TEST_F(MpiE2E, ARankThatThrowsEndsTheJobNamingTheRank) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run_command("MNIST_DIST_TEST_FAIL=1:3 " + kMpiexec + "2 " + kFaultyDist + args() + " --epochs 50");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 1/"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("injected failure at step 3"), std::string::npos) << r.output;
  EXPECT_LT(s, 30.0);
}

// With the bucketed all-reduce every rank keeps its own parameters (as across nodes); under
// --grad-exchange sharded the ranks of one node share a single parameter buffer, so a replica
// cannot diverge there and the check guards the copies on other nodes and the BN state.
TEST_F(MpiE2E, APerturbedReplicaIsCaughtByTheHashCheck) {
  const auto r = run_command("MNIST_DIST_TEST_PERTURB=2:4 " + kMpiexec + "4 " + kFaultyDist + args() +
                             " --epochs 50 --hash-check-every 2 --grad-exchange buckets");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("replicas diverged at step 4: the parameters of rank(s) 2 differ"),
            std::string::npos)
      << r.output;
}

TEST_F(MpiE2E, BadInputOnEveryRankIsAUserError) {
  const auto r = run_command(kMpiexec + "2 " + kDist + " --device cpu --data /nonexistent --threads 1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/nonexistent"), std::string::npos) << r.output;
}

}  // namespace
