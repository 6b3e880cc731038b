// End to end: IDX → mnist_prepare → mnist_dist, as a user runs them; asserts on the printed
// accuracy, the exit codes and the saved model file.
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "io/model_io.h"
#include "model/model.h"
#include "e2e_setup.h"
#include "run_command.h"
#include "idx_writer.h"

namespace fs = std::filesystem;
using mnist_dist::testing::last_value;
using mnist_dist::testing::run_command;

namespace {

const std::string kDist = MNIST_DIST_BIN;
const std::string kPrepare = MNIST_PREPARE_BIN;

class TrainE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("md_e2e_" + std::to_string(getpid()));
    const auto r = mnist_dist::testing::prepare_block_dataset(dir_, kPrepare, 3000, 600, " --shards 2");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static std::string data() { return (dir_ / "h5").string(); }
  static fs::path dir_;
};
fs::path TrainE2E::dir_;

TEST_F(TrainE2E, SeedNetLearnsSyntheticDigits) {
  const std::string model = (dir_ / "model.h5").string();
  const auto r = run_command(kDist + " --data " + data() + " --epochs 2 --threads 2 --save " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Epoch 1/2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("val_accuracy"), std::string::npos) << r.output;
  const double acc = last_value(r.output, "Test accuracy: ");
  EXPECT_GE(acc, 0.97) << r.output;
  // The last line is the reference program's.
  EXPECT_TRUE(std::regex_search(r.output, std::regex("Test accuracy: [01]\\.\\d{4}\\n$"))) << r.output;

  // The saved model holds every tensor under its documented name and shape, and loads back.
  ASSERT_TRUE(fs::exists(model));
  EXPECT_FALSE(fs::exists(model + ".tmp"));
  EXPECT_EQ(mnist_dist::read_model_arch(model), "seed");
  mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 4);
  mnist_dist::load_model(m, model);
  bool found = false;
  for (const auto& p : m.arena().infos())
    if (p.name == "dense1/weight") {
      found = true;
      EXPECT_EQ(p.shape, (std::vector<int>{1200, 588}));
    }
  EXPECT_TRUE(found);
  if (fs::exists("/usr/bin/h5dump")) {
    const auto d = run_command("/usr/bin/h5dump -H " + model);
    EXPECT_EQ(d.exit_code, 0);
    EXPECT_NE(d.output.find("DATASET \"weight\""), std::string::npos) << d.output;
    EXPECT_NE(d.output.find("( 6, 1, 5, 5 )"), std::string::npos) << d.output;
  }
}

TEST_F(TrainE2E, LeNet5LearnsAndMaxStepsStopsEarly) {
  const auto r = run_command(kDist + " --data " + data() + " --model lenet5 --epochs 5 --max-steps 10 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped after --max-steps 10"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 2/5"), std::string::npos) << "10 steps < one epoch of 17";
  EXPECT_GE(last_value(r.output, "Test accuracy: "), 0.5) << r.output;
}

TEST_F(TrainE2E, SameSeedSameResult) {
  const std::string cmd = kDist + " --data " + data() + " --max-steps 10 --threads 2";
  const auto a = run_command(cmd), b = run_command(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(last_value(a.output, "Test loss: "), last_value(b.output, "Test loss: "));
}

// On a machine without the NVIDIA kernel driver, the CUDA runtime's own words ("CUDA driver
// version is insufficient") read like an old driver; the notice says what is missing.
TEST_F(TrainE2E, WithoutAnNvidiaDriverTheNoticeSaysSo) {
  if (!MD_BUILT_WITH_CUDA) GTEST_SKIP() << "built without CUDA: the notice says 'built without CUDA'";
  if (fs::exists("/proc/driver/nvidia/version")) GTEST_SKIP() << "this machine has an NVIDIA driver";
  const auto r = run_command(kDist + " --data " + data() + " --device auto --max-steps 1 --threads 1 -q");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("mnist_dist: note: no usable GPU (no NVIDIA driver: /proc/driver/nvidia/version is "
                          "absent); training on the CPU"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("insufficient"), std::string::npos) << r.output;
}

// An evaluation batch larger than the data is one pass over it (was std::bad_alloc at 2e9).
TEST_F(TrainE2E, AnEvaluationBatchLargerThanTheDataIsOnePass) {
  const std::string cmd = kDist + " --data " + data() + " --max-steps 3 --threads 1 -q";
  const auto big = run_command(cmd + " --eval-batch-size 2000000000");
  ASSERT_EQ(big.exit_code, 0) << big.output;
  const auto exact = run_command(cmd + " --eval-batch-size 900");  // the validation split: 900
  ASSERT_EQ(exact.exit_code, 0) << exact.output;
  EXPECT_EQ(last_value(big.output, "Test loss: "), last_value(exact.output, "Test loss: "));
}

TEST_F(TrainE2E, UserErrorsExitTwoWithOneLine) {
  struct Case { std::string args, expect; };
  const std::vector<Case> cases = {
      {"", "--data is required"},
      {"--data /nonexistent/dir", "/nonexistent/dir"},
      {"--data " + data() + " --batch-size 0", "--batch-size"},
      {"--data " + data() + " --epochs -1", "--epochs"},
      {"--data " + data() + " --model vgg", "--model"},
      {"--data " + data() + " --lr abc", "--lr"},
      {"--data " + data() + " --bn global", "--bn"},
      {"--data " + data() + " --save /nonexistent/dir/m.h5 --max-steps 1", "does not exist"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(kDist + " " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
}

TEST(TrainHelp, DocumentsEveryFlag) {
  const auto r = run_command(kDist + " --help");
  ASSERT_EQ(r.exit_code, 0);
  for (const char* flag : {"--data", "--model", "--epochs", "--max-steps", "--batch-size", "--lr",
                           "--seed", "--threads", "--save", "--bn"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
}

}  // namespace
