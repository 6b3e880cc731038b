// End to end, as users see it: the progress output (pipe and pseudo-terminal), the run
// directory against what the run printed, the pictures, predict against the evaluator, and the
// ONNX export against onnx.checker and OpenCV's dnn module.
#include <gtest/gtest.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "export/model_file.h"
#include "png_check.h"
#include "report/image_io.h"
#include "report_files.h"
#include "report/plots.h"
#include "report/run_recorder.h"
#include "report_fixture.h"
#include "train/evaluator.h"
#include "train/split_loader.h"

namespace fs = std::filesystem;
using mnist_dist::testing::run_command;

namespace mnist_dist {
namespace {

const std::string kDist = MNIST_DIST_BIN;

class ReportE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string err = testing::build_report_fixture(false, &fx_);
    if (!err.empty()) FAIL() << err;
    tmp_ = fs::temp_directory_path() / ("md_report_e2e_" + std::to_string(getpid()));
    fs::create_directories(tmp_);
  }
  static void TearDownTestSuite() { fs::remove_all(tmp_); }
  static testing::ReportFixture fx_;
  static fs::path tmp_;
};
testing::ReportFixture ReportE2E::fx_;
fs::path ReportE2E::tmp_;

TEST_F(ReportE2E, PlainProgressLinesWhenNotATerminal) {
  const std::string log = fx_.train_log();
  EXPECT_EQ(log.find('\r'), std::string::npos) << log;
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << log;
  EXPECT_NE(log.find("Epoch 1/2 - step 3/"), std::string::npos) << log;
  EXPECT_NE(log.find("Epoch 2/2 - step 6/"), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("Test accuracy: [01]\\.\\d{4}\\n$"))) << log;
}

TEST_F(ReportE2E, MetricsFilesHoldThePrintedValues) {
  const fs::path run = fx_.run_dir();
  const std::string log = fx_.train_log();
  const auto records = jsonl(run / "metrics.jsonl");
  std::vector<nlohmann::json> steps, epochs, tests;
  for (const auto& r : records) {
    const std::string kind = r.at("kind");
    (kind == "step" ? steps : kind == "epoch" ? epochs : tests).push_back(r);
  }
  EXPECT_EQ(tests.size(), 1u);
  // Epoch lines: "Epoch e/2 - ...s - N samples/s - loss: L - accuracy: A - val_loss: VL - val_accuracy: VA".
  const std::regex epoch_re(
      "Epoch (\\d+)/2 - ([0-9.]+)s - \\d+ samples/s - loss: ([0-9.]+) - accuracy: ([0-9.]+) - val_loss: "
      "([0-9.]+) - val_accuracy: ([0-9.]+) - data wait ([0-9.]+)s, comm ([0-9.]+)s, compute ([0-9.]+)s");
  size_t n = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), epoch_re), end; it != end; ++it, ++n) {
    const auto& m = *it;
    ASSERT_LT(n, epochs.size());
    const nlohmann::json& e = epochs[n];
    EXPECT_EQ(e["epoch"].get<int>(), std::stoi(m[1]));
    EXPECT_NEAR(e["seconds"].get<double>(), std::stod(m[2]), 0.006);
    expect_printed(e["loss"], m[3], "loss");
    expect_printed(e["accuracy"], m[4], "accuracy");
    expect_printed(e["val_loss"], m[5], "val_loss");
    expect_printed(e["val_accuracy"], m[6], "val_accuracy");
    EXPECT_NEAR(e["data_wait_seconds"].get<double>(), std::stod(m[7]), 6e-4);
    EXPECT_NEAR(e["compute_seconds"].get<double>(), std::stod(m[9]), 6e-4);
    EXPECT_DOUBLE_EQ(e["lr"].get<double>(), 0.001);
    EXPECT_GT(e["samples_per_second"].get<double>(), 0.0);
    for (const char* k : {"comm_seconds", "global_step", "step"}) EXPECT_TRUE(e.contains(k)) << k;
  }
  EXPECT_EQ(n, 2u) << log;
  EXPECT_EQ(epochs.size(), 2u);
  // Step lines, one per --log-every steps inside an epoch.
  const std::regex step_re("Epoch (\\d+)/2 - step (\\d+)/\\d+ - [0-9.]+s - loss: ([0-9.]+) - accuracy: ([0-9.]+)");
  size_t matched = 0;
  for (std::sregex_iterator it(log.begin(), log.end(), step_re), end; it != end; ++it) {
    const auto& m = *it;
    bool found = false;
    for (const auto& s : steps)
      if (s["epoch"].get<int>() == std::stoi(m[1]) && s["step"].get<int>() == std::stoi(m[2])) {
        found = true;
        expect_printed(s["loss"], m[3], "step loss");
        expect_printed(s["accuracy"], m[4], "step accuracy");
      }
    EXPECT_TRUE(found) << m[0];
    ++matched;
  }
  EXPECT_GE(matched, 2u);
  for (const auto& s : steps) EXPECT_EQ(s["step"].get<int>() % testing::kFixtureLogEvery, 0);
}

TEST_F(ReportE2E, TestRecordAndReportHoldThePrintedTestLines) {
  const std::string log = fx_.train_log();
  const fs::path run = fx_.run_dir();
  std::vector<nlohmann::json> tests;
  for (const auto& r : jsonl(run / "metrics.jsonl"))
    if (r.at("kind") == "test") tests.push_back(r);
  ASSERT_EQ(tests.size(), 1u);
  std::smatch tm;
  ASSERT_TRUE(std::regex_search(log, tm, std::regex("Test loss: ([0-9.]+)\nTest accuracy: ([0-9.]+)")));
  expect_printed(tests[0]["loss"], tm[1], "test loss");
  expect_printed(tests[0]["accuracy"], tm[2], "test accuracy");
  const nlohmann::json rep = nlohmann::json::parse(slurp(run / "test_report.json"));
  expect_printed(rep["accuracy"], tm[2], "report accuracy");
  expect_printed(rep["loss"], tm[1], "report loss");
  int64_t total = 0, diag = 0;
  for (size_t t = 0; t < 10; ++t)
    for (size_t p = 0; p < 10; ++p) {
      total += rep["confusion_matrix"][t][p].get<int64_t>();
      if (t == p) diag += rep["confusion_matrix"][t][p].get<int64_t>();
    }
  EXPECT_EQ(total, rep["count"].get<int64_t>());
  EXPECT_NEAR(static_cast<double>(diag) / total, rep["accuracy"].get<double>(), 1e-12);
  ASSERT_EQ(rep["per_class"].size(), 10u);
  for (const auto& c : rep["per_class"])
    for (const char* k : {"precision", "recall", "f1", "support"}) EXPECT_TRUE(c.contains(k)) << k;
}

// metrics.csv: the header, then the same records in the same order with the same values.
TEST_F(ReportE2E, MetricsCsvHoldsTheJsonlRecords) {
  const fs::path run = fx_.run_dir();
  const auto records = jsonl(run / "metrics.jsonl");
  std::ifstream csv(run / "metrics.csv");
  std::string line;
  std::getline(csv, line);
  std::string header;
  for (const auto& c : metrics_columns()) header += (header.empty() ? "" : ",") + c;
  EXPECT_EQ(line, header);
  size_t row = 0;
  while (std::getline(csv, line)) {
    ASSERT_LT(row, records.size());
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    cells.resize(metrics_columns().size());
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string& col = metrics_columns()[i];
      if (!records[row].contains(col)) {
        EXPECT_EQ(cells[i], "") << col;
      } else if (col == "kind") {
        EXPECT_EQ(cells[i], records[row][col].get<std::string>());
      } else {
        EXPECT_DOUBLE_EQ(std::stod(cells[i]), records[row][col].get<double>()) << col << " row " << row;
      }
    }
    ++row;
  }
  EXPECT_EQ(row, records.size());
}

TEST_F(ReportE2E, ConfigRecordsSettingsVersionsAndWorld) {
  const nlohmann::json c = nlohmann::json::parse(slurp(fs::path(fx_.run_dir()) / "config.json"));
  EXPECT_EQ(c["config"]["batch_size"], 128);
  EXPECT_EQ(c["config"]["epochs"], 2);
  EXPECT_EQ(c["config"]["model"], "seed");
  EXPECT_EQ(c["config"]["bn"], "sync");
  EXPECT_DOUBLE_EQ(c["config"]["lr"].get<double>(), 0.001);
  EXPECT_EQ(c["config"]["log_every"], testing::kFixtureLogEvery);
  EXPECT_EQ(c["flags"]["log-every"], std::to_string(testing::kFixtureLogEvery));
  EXPECT_EQ(c["flags"]["batch-size"], "128") << "defaults are recorded too";
  EXPECT_EQ(c["world"]["ranks"], 1);
  EXPECT_EQ(c["devices"].size(), 1u);
  EXPECT_TRUE(c["mnist_dist"]["version"].is_string());
  EXPECT_TRUE(c["mnist_dist"]["git_commit"].is_string() || c["mnist_dist"]["git_commit"].is_null());
  EXPECT_TRUE(c["mnist_dist"]["libraries"].contains("hdf5"));
  EXPECT_EQ(c["data"]["test"], 300);
  EXPECT_EQ(c["data"]["num_classes"], 10);
  EXPECT_EQ(c["command_line"].size(), 15u);  // mnist_dist and the fixture's 14 arguments
}

TEST_F(ReportE2E, PicturesAreValidPngsOfTheExpectedSize) {
  if (find_gnuplot().empty()) GTEST_SKIP() << "gnuplot not installed (Debian: gnuplot-nox)";
  const std::pair<const char*, ImageSize> expected[] = {
      {"curves.png", kCurvesSize}, {"confusion.png", kConfusionSize}, {"mistakes.png", kMistakesSize}};
  for (const auto& [name, size] : expected) {
    const testing::PngCheck c = testing::check_png((fs::path(fx_.run_dir()) / name).string());
    EXPECT_TRUE(c.ok) << name << ": " << c.error;
    EXPECT_EQ(c.width, size.width) << name;
    EXPECT_EQ(c.height, size.height) << name;
  }
}

// A short run on a pseudo-terminal: the live bar, redrawn with '\r', then the kept summary.
TEST_F(ReportE2E, LiveProgressBarOnATerminal) {
  const std::string run = (tmp_ / "pty_run").string();
  std::vector<std::string> args = {kDist,       "--data",     fx_.data(), "--epochs", "2",       "--threads",
                                   "2",         "--run-dir",  run,        "--max-steps", "10"};
  winsize ws{};
  ws.ws_col = 100;
  ws.ws_row = 30;
  int master = -1;
  const pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("MNIST_DIST_GNUPLOT", "", 1);  // pictures are another test's business
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(master, buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    else if (n < 0 && errno == EINTR) continue;
    else break;  // EIO: the child closed the terminal
  }
  close(master);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  EXPECT_NE(out.find("Epoch 1/2\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r1/7 [====>"), std::string::npos) << out;
  EXPECT_NE(out.find("ETA: "), std::string::npos) << out;
  EXPECT_TRUE(std::regex_search(out, std::regex("\r7/7 \\[=+\\] - \\d+s \\d+m?s/step - \\d+ samples/s - loss: "
                                                "[0-9.]+ - accuracy: [0-9.]+ - val_loss: [0-9.]+ - "
                                                "val_accuracy: [0-9.]+\r\n")))
      << out;
  EXPECT_NE(out.find("Epoch 2/2\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r3/3 [="), std::string::npos) << "10 steps = 7 + 3";
  EXPECT_EQ(out.find('\x1b'), std::string::npos) << "no escape sequences";
  // Each redrawn bar fits the 100 columns, so '\r' can always return to its start.
  size_t pos = 0;
  while ((pos = out.find('\r', pos)) != std::string::npos) {
    const size_t end = out.find_first_of("\r\n", pos + 1);
    // A '\r' that starts a redraw (not the terminal's "\r\n" line end) ends a bar line.
    if (end != std::string::npos && out[end] == '\r' && out[end + 1] != '\n' && end > pos + 1) {
      EXPECT_LT(end - pos - 1, 100u);
    }
    pos = end == std::string::npos ? out.size() : end;
  }
  EXPECT_TRUE(std::regex_search(out, std::regex("Test accuracy: [01]\\.\\d{4}\r\n$"))) << out;
  // gnuplot "missing": said once, and the run still succeeded.
  size_t notes = 0;
  for (size_t p = 0; (p = out.find("gnuplot not found", p)) != std::string::npos; ++p) ++notes;
  EXPECT_EQ(notes, 1u) << out;
  EXPECT_TRUE(fs::exists(fs::path(run) / "metrics.jsonl"));
  EXPECT_FALSE(fs::exists(fs::path(run) / "curves.png"));
}

TEST_F(ReportE2E, QuietPrintsOnlyTheTestLinesAndPlotRedraws) {
  const std::string run = (tmp_ / "quiet_run").string();
  const auto r = run_command("(MNIST_DIST_GNUPLOT= " + kDist + " --device cpu --data " + fx_.data() +
                             " --epochs 1 --max-steps 4 --threads 2 -q --run-dir " + run + " 2>/dev/null)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::regex_match(r.output, std::regex("Test loss: [0-9.]+\nTest accuracy: [0-9.]+\n"))) << r.output;
  // `mnist_dist plot` draws what training could not.
  const auto nope = run_command("MNIST_DIST_GNUPLOT= " + kDist + " plot " + run);
  EXPECT_EQ(nope.exit_code, 2) << nope.output;
  EXPECT_NE(nope.output.find("gnuplot-nox"), std::string::npos) << nope.output;
  EXPECT_EQ(run_command(kDist + " plot " + tmp_.string()).exit_code, 2) << "not a run directory";
  if (find_gnuplot().empty()) GTEST_SKIP() << "gnuplot not installed (Debian: gnuplot-nox)";
  const auto p = run_command(kDist + " plot " + run);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  for (const char* name : {"curves.png", "confusion.png", "mistakes.png"}) {
    EXPECT_NE(p.output.find(name), std::string::npos) << p.output;
    EXPECT_TRUE(testing::check_png((fs::path(run) / name).string()).ok) << name;
  }
}

// The evaluator's predictions on the test split, computed here from the saved model.
std::vector<int32_t> evaluator_predictions(const std::string& model_path, const SplitData& test, EvalResult* r) {
  Model model = load_model_file(model_path, 256);
  Context ctx;
  auto loss = make_softmax_xent(Backend::kCpu);
  std::vector<int32_t> pred;
  *r = evaluate(ctx, model, *loss, test, &pred);
  return pred;
}

TEST_F(ReportE2E, PredictGivesTheEvaluatorsClasses) {
  const LoadedSplit s = load_split_data(fx_.data(), "test");
  EvalResult eval;
  const std::vector<int32_t> pred = evaluator_predictions(fx_.model(), s.data, &eval);
  // The first 60 test images as files, PGM and PNG alternately.
  std::string cmd = kDist + " predict --checkpoint " + fx_.model();
  const size_t n = 60;
  for (size_t i = 0; i < n; ++i) {
    std::vector<uint8_t> px(784);
    for (size_t p = 0; p < 784; ++p) px[p] = static_cast<uint8_t>(std::lround(s.data.images[i * 784 + p] * 255.0f));
    const bool png = i % 2 == 1 && png_supported();
    const std::string file = (tmp_ / ("t" + std::to_string(i) + (png ? ".png" : ".pgm"))).string();
    if (png) write_png_gray(file, 28, 28, px.data());
    else write_pgm(file, 28, 28, px.data());
    cmd += " " + file;
  }
  const auto r = run_command(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::regex line_re("t(\\d+)\\.p[gn][mg]: (\\d)  p=([0-9.]+)  \\[0: ");
  size_t seen = 0;
  for (std::sregex_iterator it(r.output.begin(), r.output.end(), line_re), end; it != end; ++it, ++seen) {
    const size_t i = std::stoul((*it)[1]);
    EXPECT_EQ(std::stoi((*it)[2]), pred[i]) << (*it)[0];
  }
  EXPECT_EQ(seen, n) << r.output;

  // --data --split test: the evaluator's loss, accuracy and per-sample classes.
  const std::string csv = (tmp_ / "pred.csv").string(), rep = (tmp_ / "rep.json").string();
  const auto d = run_command(kDist + " predict --checkpoint " + fx_.model() + " --data " + fx_.data() +
                             " --split test --predictions " + csv + " --report " + rep);
  ASSERT_EQ(d.exit_code, 0) << d.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(d.output, m, std::regex("Test loss: ([0-9.]+)\nTest accuracy: ([0-9.]+)")));
  expect_printed(eval.loss, m[1], "loss");
  expect_printed(eval.accuracy, m[2], "accuracy");
  // ... which are the training run's final numbers.
  const std::string log = fx_.train_log();
  EXPECT_NE(log.find(m[0].str()), std::string::npos) << log;
  std::ifstream f(csv);
  std::string line;
  std::getline(f, line);
  EXPECT_EQ(line, "index,label,predicted,probability");
  size_t rows = 0;
  while (std::getline(f, line)) {
    size_t idx;
    int label, cls;
    double prob;
    ASSERT_EQ(std::sscanf(line.c_str(), "%zu,%d,%d,%lf", &idx, &label, &cls, &prob), 4) << line;
    EXPECT_EQ(idx, rows);
    EXPECT_EQ(label, s.data.labels[rows]);
    EXPECT_EQ(cls, pred[rows]) << line;
    EXPECT_GT(prob, 0.0);
    ++rows;
  }
  EXPECT_EQ(rows, s.data.n);
  EXPECT_NEAR(nlohmann::json::parse(slurp(rep))["accuracy"].get<double>(), eval.accuracy, 1e-12);
}

TEST_F(ReportE2E, PredictFitsLargePicturesAndRejectsBadInput) {
  // A 140×140 white page with a dark stroke: inverted and fitted, one JSON line.
  std::vector<uint8_t> px(140 * 140, 255);
  for (int y = 20; y < 120; ++y)
    for (int x = 60; x < 75; ++x) px[static_cast<size_t>(y) * 140 + x] = 10;
  const std::string file = (tmp_ / "big.pgm").string();
  write_pgm(file, 140, 140, px.data());
  const auto r = run_command(kDist + " predict --json --checkpoint " + fx_.model() + " " + file);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json j = nlohmann::json::parse(r.output);
  EXPECT_TRUE(j["inverted"].get<bool>());
  EXPECT_TRUE(j["resized"].get<bool>());
  EXPECT_EQ(j["probabilities"].size(), 10u);
  double sum = 0;
  for (const auto& p : j["probabilities"]) sum += p.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_EQ(run_command(kDist + " predict --checkpoint " + fx_.model() + " " + tmp_.string() + "/none.png").exit_code, 2);
  EXPECT_EQ(run_command(kDist + " predict --checkpoint " + file + " " + file).exit_code, 2) << "not a model";
  EXPECT_EQ(run_command(kDist + " predict --checkpoint " + fx_.model()).exit_code, 2) << "nothing to do";
}

// Export, then onnx.checker and OpenCV dnn on 100 test images against mnist_dist's logits.
TEST_F(ReportE2E, OnnxExportPassesCheckerAndMatchesOpenCvDnn) {
  const std::string python = "/usr/bin/python3";
  if (run_command(python + " -c 'import onnx, cv2, numpy'").exit_code != 0)
    GTEST_SKIP() << "needs python3-onnx, python3-opencv, python3-numpy for " << python;
  const LoadedSplit s = load_split_data(fx_.data(), "test");
  const int n = 100;
  ASSERT_GE(s.data.n, static_cast<size_t>(n));
  Model model = load_model_file(fx_.model(), n);
  Context ctx;
  const Tensor& logits = model.forward(ctx, s.data.images.data(), n, false);
  const fs::path images = tmp_ / "images.f32", want = tmp_ / "logits.f32";
  std::ofstream(images, std::ios::binary).write(reinterpret_cast<const char*>(s.data.images.data()), n * 784 * 4);
  std::ofstream(want, std::ios::binary).write(reinterpret_cast<const char*>(logits.data), n * 10 * 4);
  for (const std::string fold : {"", " --fold-bn"}) {
    const std::string onnx = (tmp_ / ("model" + std::to_string(fold.size()) + ".onnx")).string();
    const auto e = run_command(kDist + " export --checkpoint " + fx_.model() + " --onnx " + onnx + fold);
    ASSERT_EQ(e.exit_code, 0) << e.output;
    const auto c = run_command(python + " " + MD_CHECK_ONNX_PY + " " + onnx + " " + images.string() + " " +
                               want.string() + " " + std::to_string(n) + " 1e-4");
    std::printf("export%s: %s", fold.c_str(), c.output.c_str());  // the measured difference, for the log
    EXPECT_EQ(c.exit_code, 0) << fold << "\n" << c.output;
    EXPECT_NE(c.output.find("onnx.checker: ok"), std::string::npos) << c.output;
  }
}

}  // namespace
}  // namespace mnist_dist
