// End to end: IDX → mnist_prepare → mnist_dist, as a user runs them; asserts on the printed
// accuracy, the exit codes and the saved model file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "core/context.h"
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
  const auto r = run_command(kDist + " --device cpu --data " + data() + " --epochs 2 --threads 2 --save " + model);
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
  const auto r = run_command(kDist + " --device cpu --data " + data() + " --model lenet5 --epochs 5 --max-steps 10 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped after --max-steps 10"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 2/5"), std::string::npos) << "10 steps < one epoch of 17";
  EXPECT_GE(last_value(r.output, "Test accuracy: "), 0.5) << r.output;
}

// AdamW: named in the start line, and it learns.
TEST_F(TrainE2E, AdamWIsNamedAndLearns) {
  const auto r = run_command(kDist + " --device cpu --data " + data() +
                             " --optimizer adamw --weight-decay 0.05 --max-steps 10 --threads 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("AdamW (weight decay 0.05) lr 0.001"), std::string::npos) << r.output;
  EXPECT_GE(last_value(r.output, "Test accuracy: "), 0.5) << r.output;
}

// Dropout: named in the start line; it learns; the saved model exports to ONNX without any
// dropout node (dropout is the identity at inference).
TEST_F(TrainE2E, DropoutIsNamedLearnsAndStaysOutOfTheExport) {
  const fs::path dir = fs::temp_directory_path() / ("md_drop_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string model = (dir / "m.h5").string(), onnx = (dir / "m.onnx").string();
  const auto r = run_command(kDist + " --device cpu --data " + data() + " --dropout 0.3 --max-steps 10 --threads 1 --save " + model);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("bn sync; dropout 0.3; Adam"), std::string::npos) << r.output;
  EXPECT_GE(last_value(r.output, "Test accuracy: "), 0.5) << r.output;
  const auto e = run_command(kDist + " export --checkpoint " + model + " --onnx " + onnx);
  ASSERT_EQ(e.exit_code, 0) << e.output;
  std::ifstream f(onnx, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("Gemm"), std::string::npos);
  for (const char* node : {"Dropout", "dropout1", "dropout2"})  // the op type, our layers' names
    EXPECT_EQ(bytes.find(node), std::string::npos) << node << " in the ONNX graph";
  fs::remove_all(dir);
}

// Early stopping with a min-delta no epoch can beat: epoch 1 stays the best, the run stops after
// patience 2 more epochs, and the test and --save use epoch 1's weights — the very weights
// --save-best wrote after epoch 1 — and the test report says so.
TEST_F(TrainE2E, EarlyStoppingRestoresTheBestEpochForTheTestAndSave) {
  const fs::path dir = fs::temp_directory_path() / ("md_early_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string last = (dir / "last.h5").string(), best = (dir / "best.h5").string();
  const auto r = run_command(kDist + " --device cpu --data " + data() + " --epochs 10 --threads 1 --early-stopping 2 " +
                             "--min-delta 100 --save " + last + " --save-best " + best + " --run-dir " + (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("early stopping: val_loss did not improve for 2 epoch(s); the best was epoch 1"),
            std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("Epoch 4/10"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("restored the weights of epoch 1"), std::string::npos) << r.output;
  mnist_dist::Model ml("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::Model mb("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::load_model(ml, last);
  mnist_dist::load_model(mb, best);
  EXPECT_EQ(std::memcmp(ml.arena().params(), mb.arena().params(), ml.arena().param_count() * sizeof(float)), 0)
      << "--save holds other weights than --save-best's epoch 1";
  EXPECT_EQ(std::memcmp(ml.arena().state(), mb.arena().state(), ml.arena().state_count() * sizeof(float)), 0);
  std::ifstream report(dir / "run" / "test_report.json");
  const std::string text((std::istreambuf_iterator<char>(report)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"weights_epoch\": 1"), std::string::npos) << text;
  fs::remove_all(dir);
}

// Two runs with the same seed save the same model: every parameter and BatchNorm statistic
// compared bit for bit (read back through load_model, so HDF5 metadata plays no part), not only
// the printed 4-decimal loss.
TEST_F(TrainE2E, SameSeedSameWeights) {
  const std::string cmd = kDist + " --device cpu --data " + data() + " --max-steps 10 --threads 2 -q --save ";
  const std::string pa = (dir_ / "same_a.h5").string(), pb = (dir_ / "same_b.h5").string();
  const auto a = run_command(cmd + pa), b = run_command(cmd + pb);
  ASSERT_EQ(a.exit_code, 0) << a.output;
  ASSERT_EQ(b.exit_code, 0) << b.output;
  EXPECT_EQ(last_value(a.output, "Test loss: "), last_value(b.output, "Test loss: "));
  mnist_dist::Model ma("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::Model mb("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, 1);
  mnist_dist::load_model(ma, pa);
  mnist_dist::load_model(mb, pb);
  for (const auto& p : ma.arena().infos()) {
    const float* x = (p.trainable ? ma.arena().params() : ma.arena().state()) + p.offset;
    const float* y = (p.trainable ? mb.arena().params() : mb.arena().state()) + p.offset;
    size_t diff = 0, first = 0;
    for (size_t i = p.count; i-- > 0;)
      if (std::memcmp(x + i, y + i, sizeof(float)) != 0) ++diff, first = i;
    EXPECT_EQ(diff, 0u) << p.name << ": " << diff << " of " << p.count << " values differ; first at "
                        << first << ": " << x[first] << " vs " << y[first];
  }
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
  const std::string cmd = kDist + " --device cpu --data " + data() + " --max-steps 3 --threads 1 -q";
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
      {"--data " + data() + " --weight-decay 0.1", "add --optimizer adamw"},
      {"--data " + data() + " --accumulate 0", "--accumulate"},
      {"--data " + data() + " --dropout 1", "--dropout"},
      {"--data " + data() + " --dropout -0.1", "--dropout"},
      {"--data " + data() + " --lr-schedule exponential --max-steps 1", "needs --lr-gamma"},
      {"--data " + data() + " --lr-schedule cosine --warmup-steps 5 --max-steps 5", "leaves no steps"},
      {"--data " + data() + " --tf32 maybe", "--tf32"},
      {"--data " + data() + " --augment shift:9", "--augment: 'shift:9' is not accepted: use none or shift:N with 1 <= N <= 8"},
      {"--data " + data() + " --augment shift:0", "--augment: 'shift:0' is not accepted"},
      {"--data " + data() + " --augment flip", "--augment: 'flip' is not accepted"},
      {"--data /nonexistent/dir --augment shift", "--augment: 'shift' is not accepted"},  // before any work
      {"--data " + data() + " --comm host-staged --max-steps 1", "--comm host-staged is for GPU ranks"},
      {"--data " + data() + " --save /nonexistent/dir/m.h5 --max-steps 1", "does not exist"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(kDist + " --device cpu " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expect), std::string::npos) << c.args << "\n" << r.output;
  }
}

// The seed network's convolution weight gradients (the real model and its fused CPU path, on a
// batch of the synthetic digits) against a central finite difference in double along the
// gradient itself: for L = Σ r·logits, (L(w + ηg) − L(w − ηg)) / 2η must equal g·g. The learning
// test above cannot catch a broken convolution gradient: with dW zeroed, the dense layers still
// learn the blocks on frozen random convolutions (≥ 0.97). A zero, scaled, sign-flipped or
// mis-indexed dW fails here.
TEST(SeedNetConv, GradientMatchesAFiniteDifferenceAlongIt) {
  const int n = 16;
  std::vector<uint8_t> img, lab;
  mnist_dist::testing::make_blocks(n, 11, img, lab);
  std::vector<float> x(img.begin(), img.end());
  for (float& v : x) v /= 255.0f;
  mnist_dist::Model m("seed", mnist_dist::Backend::kCpu, {1, 1, 28, 28}, 10, n);
  m.init(1);
  mnist_dist::Context ctx;
  mnist_dist::Rng rng(5);
  std::vector<float> r(static_cast<size_t>(n) * 10);
  for (float& v : r) v = static_cast<float>(2.0 * rng.uniform() - 1.0);
  auto loss = [&] {
    const mnist_dist::Tensor& y = m.forward(ctx, x.data(), n, true);
    double s = 0.0;
    for (size_t i = 0; i < r.size(); ++i) s += static_cast<double>(r[i]) * y.data[i];
    return s;
  };
  loss();
  m.backward(ctx, r.data());
  auto& a = m.arena();
  for (const std::string name : {"conv1/weight", "conv2/weight"}) {
    int id = -1;
    for (size_t i = 0; i < a.infos().size(); ++i)
      if (a.infos()[i].name == name) id = static_cast<int>(i);
    ASSERT_GE(id, 0) << name;
    const size_t count = a.infos()[id].count;
    float* w = a.params() + a.infos()[id].offset;
    const std::vector<float> w0(w, w + count), g(a.grad(id), a.grad(id) + count);
    double gg = 0.0, ww = 0.0;
    for (size_t i = 0; i < count; ++i) gg += double(g[i]) * g[i], ww += double(w0[i]) * w0[i];
    ASSERT_GT(gg, 0.0) << name << ": the gradient is zero";
    const double eta = 1e-3 * std::sqrt(ww / gg);  // moves w by 0.1 % of its norm
    for (size_t i = 0; i < count; ++i) w[i] = static_cast<float>(w0[i] + eta * g[i]);
    const double lp = loss();
    for (size_t i = 0; i < count; ++i) w[i] = static_cast<float>(w0[i] - eta * g[i]);
    const double lm = loss();
    std::copy(w0.begin(), w0.end(), w);
    const double fd = (lp - lm) / (2.0 * eta);
    EXPECT_NEAR(fd / gg, 1.0, 0.05) << name << ": finite difference along g " << fd << ", g·g " << gg;
  }
}

TEST(TrainHelp, DocumentsEveryFlag) {
  const auto r = run_command(kDist + " --help");
  ASSERT_EQ(r.exit_code, 0);
  for (const char* flag : {"--data", "--model", "--epochs", "--max-steps", "--batch-size", "--lr",
                           "--seed", "--threads", "--save", "--bn", "--tf32 TEXT:{on,off}=on",
                           "--comm TEXT:{auto,nccl,host-staged}=auto", "--lr-schedule TEXT:{constant,step,exponential,cosine}=constant",
                           "--warmup-steps INT:NON-NEGATIVE=0", "--lr-step-size", "--lr-gamma", "--lr-min",
                           "--scale-lr-with-batch INT:NON-NEGATIVE=0", "--optimizer TEXT:{adam,adamw}=adam",
                           "--weight-decay", "--accumulate INT:POSITIVE=1", "--early-stopping", "--monitor",
                           "--min-delta", "--save-best", "--dropout FLOAT:FLOAT in [0 - 0.95]=0",
                           "--augment TEXT:{none,shift:N}=none"})
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
}

}  // namespace
