// The run directory's pieces without training: test report arithmetic, atomic and append-only
// writers, mistakes.h5, picture reading and MNIST-style fitting, and the gnuplot pictures.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "png_check.h"
#include "report/digit_image.h"
#include "report/image_io.h"
#include "report/mistakes.h"
#include "report/plots.h"
#include "report/run_dir.h"
#include "report/run_recorder.h"
#include "report/test_report.h"

namespace fs = std::filesystem;

namespace mnist_dist {
namespace {

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("md_report_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string slurp(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(TestReport, ConfusionMatrixAndPerClassMetrics) {
  // true:      0 0 0 1 1 2
  // predicted: 0 0 1 1 2 2
  const std::vector<uint8_t> labels = {0, 0, 0, 1, 1, 2};
  const std::vector<int32_t> pred = {0, 0, 1, 1, 2, 2};
  const TestReport r = make_test_report(EvalResult{0.5, 4.0 / 6.0, 6}, pred, labels, 3);
  EXPECT_EQ(r.confusion, (std::vector<std::vector<int64_t>>{{2, 1, 0}, {0, 1, 1}, {0, 0, 1}}));
  EXPECT_EQ(r.mistakes, 2);
  EXPECT_DOUBLE_EQ(r.classes[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(r.classes[0].recall, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.classes[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.classes[1].recall, 0.5);
  EXPECT_DOUBLE_EQ(r.classes[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.classes[2].recall, 1.0);
  EXPECT_NEAR(r.classes[2].f1, 2 * 0.5 / 1.5, 1e-12);
  EXPECT_EQ(r.classes[0].support, 3);
  // Text form: valid JSON, same content, one line per matrix row, and it reads back.
  const std::string text = test_report_text(r);
  const nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["confusion_matrix"], nlohmann::json(r.confusion));
  EXPECT_NE(text.find("    [2,1,0],\n"), std::string::npos) << text;
  EXPECT_DOUBLE_EQ(j["per_class"][1]["recall"].get<double>(), 0.5);
  const TestReport back = test_report_from_json(j);
  EXPECT_EQ(back.confusion, r.confusion);
  EXPECT_DOUBLE_EQ(back.macro_f1, r.macro_f1);
}

TEST_F(TempDirTest, AtomicAndAppendWriters) {
  write_file_atomic(path("a.json"), "{}\n");
  EXPECT_EQ(slurp(path("a.json")), "{}\n");
  EXPECT_FALSE(fs::exists(path("a.json.tmp")));
  append_line(path("m.jsonl"), "{\"a\": 1}");
  append_line(path("m.jsonl"), "{\"a\": 2}");
  EXPECT_EQ(slurp(path("m.jsonl")), "{\"a\": 1}\n{\"a\": 2}\n");
  EXPECT_THROW(write_file_atomic(path("missing/x"), "x"), UserError);
}

TEST_F(TempDirTest, RunDirectoryRules) {
  const std::string d = create_run_dir(path("runs/one"));
  EXPECT_TRUE(fs::is_directory(d));
  write_file_atomic(d + "/config.json", "{}");
  EXPECT_THROW(create_run_dir(d), UserError) << "a directory holding a run is not reused";
  // Default names: runs/<timestamp>, then -2 for a second run in the same second.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const std::string a = create_run_dir(""), b = create_run_dir("");
  fs::current_path(cwd);
  EXPECT_EQ(a.rfind("runs/", 0), 0u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(fs::is_directory(dir_ / a) && fs::is_directory(dir_ / b));
}

TEST_F(TempDirTest, MistakesRoundTrip) {
  SplitData d;
  d.n = 3;
  d.images.assign(3 * 4 * 4, 0.0f);
  d.images[16] = 1.0f;  // first pixel of sample 1
  d.labels = {1, 2, 3};
  const Mistakes m = collect_mistakes(d, {1, 0, 0}, 4, 4);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m.index, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(m.images[0], 255);
  write_mistakes(m, path("mistakes.h5"));
  const Mistakes r = read_mistakes(path("mistakes.h5"));
  EXPECT_EQ(r.rows, 4);
  EXPECT_EQ(r.images, m.images);
  EXPECT_EQ(r.labels, m.labels);
  EXPECT_EQ(r.predicted, (std::vector<int32_t>{0, 0}));
  EXPECT_EQ(r.index, m.index);
}

TEST_F(TempDirTest, PgmAndPngRead) {
  std::vector<uint8_t> px(6 * 5);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 8);
  write_pgm(path("a.pgm"), 6, 5, px.data());
  GrayImage g = read_image(path("a.pgm"));
  ASSERT_EQ(g.width, 6);
  ASSERT_EQ(g.height, 5);
  EXPECT_FLOAT_EQ(g.at(1, 2), 13 * 8 / 255.0f);
  std::ofstream(path("b.pgm")) << "P2\n# a comment\n2 1\n15\n0 15\n";
  g = read_image(path("b.pgm"));
  EXPECT_FLOAT_EQ(g.pixels[1], 1.0f);
  if (png_supported()) {
    write_png_gray(path("a.png"), 6, 5, px.data());
    g = read_image(path("a.png"));
    EXPECT_FLOAT_EQ(g.at(5, 4), 29 * 8 / 255.0f);
  }
  std::ofstream(path("c.txt")) << "hello";
  EXPECT_THROW(read_image(path("c.txt")), UserError);
  std::ofstream(path("d.pgm")) << "P5\n4 4\n255\nab";
  EXPECT_THROW(read_image(path("d.pgm")), UserError) << "truncated";
}

TEST(DigitImage, ModelSizedImageIsUsedAsItIs) {
  GrayImage im{28, 28, std::vector<float>(784, 0.0f)};
  im.pixels[100] = 0.7f;
  const PreparedDigit d = prepare_digit(im);
  EXPECT_FALSE(d.resized);
  EXPECT_FALSE(d.inverted);
  EXPECT_EQ(d.pixels, im.pixels);
}

TEST(DigitImage, LargeDarkOnLightIsInvertedFittedAndCentred) {
  // A 200×120 white page with a black 40×80 bar in the top-left corner.
  GrayImage im{200, 120, std::vector<float>(200 * 120, 1.0f)};
  for (int y = 10; y < 90; ++y)
    for (int x = 5; x < 45; ++x) im.pixels[static_cast<size_t>(y) * 200 + x] = 0.0f;
  const PreparedDigit d = prepare_digit(im);
  EXPECT_TRUE(d.inverted);
  EXPECT_TRUE(d.resized);
  // The bar becomes 10×20 of full ink, centred: mass centre at (14, 14), box inside 20×20.
  double m = 0, mx = 0, my = 0;
  int x0 = 28, x1 = -1, y0 = 28, y1 = -1;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) {
      const float v = d.pixels[static_cast<size_t>(y) * 28 + x];
      m += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
      if (v > 0.05f) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
    }
  EXPECT_NEAR(m, 200.0, 1.0);
  EXPECT_NEAR(mx / m, 14.0, 0.51);
  EXPECT_NEAR(my / m, 14.0, 0.51);
  EXPECT_EQ(x1 - x0 + 1, 10);
  EXPECT_EQ(y1 - y0 + 1, 20);
}

TEST(DigitImage, BlankAndResampling) {
  GrayImage blank{50, 50, std::vector<float>(2500, 0.0f)};
  EXPECT_TRUE(prepare_digit(blank).blank);
  // Area resampling keeps the mean.
  std::vector<float> src(9 * 9);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i % 7) / 7.0f;
  const std::vector<float> dst = resample_area(src, 9, 9, 4, 4);
  double a = 0, b = 0;
  for (float v : src) a += v;
  for (float v : dst) b += v;
  EXPECT_NEAR(a / src.size(), b / dst.size(), 1e-5);
}

// RunRecorder driven by hand: the records, and a resumed run continuing its run directory.
TEST_F(TempDirTest, RecorderRecordsAndContinuesAfterResume) {
  const Logger log(0, /*quiet=*/true);
  auto run = [&](const std::string& resume, int64_t first_step, int64_t last_step) {
    RunRecorder rec({path("run"), 2, /*plots=*/false, {"mnist_dist"}, {{"epochs", "1"}}}, log);
    TrainConfig cfg;
    cfg.resume = resume;
    cfg.epochs = 1;
    rec.on_train_begin(cfg, RunInfo{});
    for (int64_t g = first_step; g <= last_step; ++g) {
      Progress p;
      p.epoch = 1;
      p.step = static_cast<size_t>(g);
      p.steps_per_epoch = static_cast<size_t>(last_step);
      p.global_step = g;
      p.loss = 1.0 / static_cast<double>(g);
      rec.on_progress(p);
    }
    EpochMetrics m;
    m.epoch = 1;
    m.steps = last_step - first_step + 1;
    rec.on_epoch_end(m);
    SplitData test;
    test.n = 2;
    test.images.assign(2 * 784, 0.0f);
    test.labels = {3, 4};
    rec.on_test(EvalResult{0.1, 0.5, 2}, {3, 5}, test);
    rec.on_train_end(TrainResult{});
  };
  run("", 1, 6);  // steps 2, 4, 6, the epoch (global step 6), the test
  auto kinds = [&] {
    std::vector<std::string> v;
    std::ifstream f(path("run/metrics.jsonl"));
    for (std::string line; std::getline(f, line);) {
      const auto j = nlohmann::json::parse(line);
      v.push_back(j["kind"].get<std::string>() + std::to_string(j["global_step"].get<int>()));
    }
    return v;
  };
  EXPECT_EQ(kinds(), (std::vector<std::string>{"step2", "step4", "step6", "epoch6", "test6"}));
  const auto report = nlohmann::json::parse(slurp(path("run/test_report.json")));
  EXPECT_EQ(report["confusion_matrix"][4][5], 1);
  EXPECT_EQ(read_mistakes(path("run/mistakes.h5")).size(), 1u);
  EXPECT_THROW(run("", 1, 6), UserError) << "the directory holds a run and this one does not resume";
  // Resumed from global step 3: the records from step 4 on and the old test are replaced.
  run("auto", 4, 8);
  EXPECT_EQ(kinds(), (std::vector<std::string>{"step2", "step4", "step6", "step8", "epoch8", "test8"}));
  const auto config = nlohmann::json::parse(slurp(path("run/config.json")));
  EXPECT_EQ(config["attempt"], 2);
  std::ifstream csv(path("run/metrics.csv"));
  std::vector<std::string> rows;
  for (std::string line; std::getline(csv, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 7u) << "header + 6 records";
  EXPECT_EQ(rows[0].rfind("kind,epoch,step,global_step,loss", 0), 0u);
  EXPECT_EQ(rows[3].rfind("step,1,6,6,", 0), 0u) << rows[3];
}

// The three pictures from a hand-made run directory, if gnuplot is installed.
TEST_F(TempDirTest, PicturesFromRunFiles) {
  const std::string gnuplot = find_gnuplot();
  if (gnuplot.empty()) GTEST_SKIP() << "gnuplot not installed (Debian: gnuplot-nox)";
  EXPECT_THROW(render_plots(dir_.string(), gnuplot), UserError) << "no metrics.jsonl";
  for (int e = 1; e <= 3; ++e)
    append_line(path("metrics.jsonl"), "{\"kind\": \"epoch\", \"epoch\": " + std::to_string(e) +
                                           ", \"loss\": " + std::to_string(1.0 / e) + ", \"accuracy\": 0." +
                                           std::to_string(5 + e) + ", \"val_loss\": 0.9, \"val_accuracy\": 0.7}");
  PlotOutcome out = render_plots(dir_.string(), gnuplot);
  EXPECT_EQ(out.written.size(), 1u);
  EXPECT_EQ(out.skipped.size(), 2u);
  std::vector<uint8_t> labels(50);
  std::vector<int32_t> pred(50);
  for (int i = 0; i < 50; ++i) {
    labels[i] = static_cast<uint8_t>(i % 10);
    pred[i] = i % 7 == 0 ? (i + 1) % 10 : i % 10;
  }
  write_file_atomic(path("test_report.json"), test_report_text(make_test_report(EvalResult{0.4, 0.86, 50}, pred, labels, 10)));
  SplitData d;
  d.n = 50;
  d.images.assign(50 * 784, 0.0f);
  for (size_t i = 0; i < d.images.size(); i += 3) d.images[i] = 0.8f;
  d.labels = labels;
  write_mistakes(collect_mistakes(d, pred, 28, 28), path("mistakes.h5"));
  out = render_plots(dir_.string(), gnuplot);
  ASSERT_EQ(out.written.size(), 3u);
  const std::pair<const char*, ImageSize> expected[] = {
      {"curves.png", kCurvesSize}, {"confusion.png", kConfusionSize}, {"mistakes.png", kMistakesSize}};
  for (const auto& [name, size] : expected) {
    const testing::PngCheck c = testing::check_png(path(name));
    EXPECT_TRUE(c.ok) << name << ": " << c.error;
    EXPECT_EQ(c.width, size.width) << name;
    EXPECT_EQ(c.height, size.height) << name;
    EXPECT_FALSE(fs::exists(path(std::string(name) + ".tmp")));
  }
}

// The curves picture draws the learning rate (right axis) when a schedule changed it, and only
// then: the gnuplot script is caught by a stand-in gnuplot; a real one (when installed) must
// accept it.
TEST_F(TempDirTest, CurvesShowTheLearningRateWhenItChanges) {
  const std::string fake = path("fake_gnuplot.sh");
  std::ofstream(fake) << "#!/bin/sh\ncp \"$1\" \"$(dirname \"$0\")/caught.gp\"\n"
                         "out=$(sed -n \"s/^set output '\\(.*\\)'$/\\1/p\" \"$1\")\n: > \"$out\"\n";
  fs::permissions(fake, fs::perms::owner_all);
  for (const bool varies : {false, true}) {
    fs::remove(path("metrics.jsonl"));
    for (int e = 1; e <= 3; ++e)
      append_line(path("metrics.jsonl"), "{\"kind\": \"epoch\", \"epoch\": " + std::to_string(e) +
                                             ", \"loss\": 0.5, \"accuracy\": 0.8, \"val_loss\": 0.6, \"val_accuracy\": 0.7, \"lr\": " +
                                             (varies ? std::to_string(0.001 / e) : std::string("0.001")) + "}");
    ASSERT_EQ(render_plots(dir_.string(), fake).written.size(), 1u);
    const std::string script = slurp(path("caught.gp"));
    EXPECT_EQ(script.find("title 'learning rate'") != std::string::npos, varies) << script;
    const std::string gnuplot = find_gnuplot();
    if (varies && !gnuplot.empty()) {
      ASSERT_EQ(render_plots(dir_.string(), gnuplot).written.size(), 1u);
      EXPECT_TRUE(testing::check_png(path("curves.png")).ok);
    }
  }
}

}  // namespace
}  // namespace mnist_dist
