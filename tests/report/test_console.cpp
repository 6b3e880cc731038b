// ConsoleObserver formatting in its three modes, written into a temporary file.
#include <gtest/gtest.h>
#include <pty.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "report/console.h"

namespace mnist_dist {
namespace {

// Runs `f` against a ConsoleObserver writing into a temporary file; returns what it wrote.
template <class F>
std::string capture(ProgressMode mode, int log_every, F&& f) {
  std::FILE* out = std::tmpfile();
  {
    ConsoleObserver c(mode, log_every, out, 100);
    TrainConfig cfg;
    cfg.epochs = 2;
    c.on_train_begin(cfg, RunInfo{});
    f(c);
  }
  std::fflush(out);
  std::rewind(out);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0) s.append(buf, n);
  std::fclose(out);
  return s;
}

Progress progress(int epoch, size_t step, size_t steps, double seconds) {
  Progress p;
  p.epoch = epoch;
  p.step = step;
  p.steps_per_epoch = steps;
  p.global_step = static_cast<int64_t>(step);
  p.loss = 0.5 + 0.01 * static_cast<double>(step);
  p.accuracy = 0.75;
  p.seconds = seconds;
  return p;
}

EpochMetrics epoch_metrics() {
  EpochMetrics m;
  m.epoch = 1;
  m.loss = 0.4835;
  m.accuracy = 0.82;
  m.val_loss = 0.5483;
  m.val_accuracy = 0.7834;
  m.seconds = 6.39;
  m.samples_per_second = 6573;
  m.steps = 10;
  return m;
}

void run_epoch(ConsoleObserver& c) {
  for (size_t s = 1; s <= 10; ++s) c.on_progress(progress(1, s, 10, 0.5 * static_cast<double>(s)));
  c.on_epoch_end(epoch_metrics());
  TrainResult r;
  r.test = EvalResult{0.3, 0.9, 100};
  c.on_train_end(r);
}

TEST(Console, PlainLinesEveryLogEveryStepsWithoutControlCharacters) {
  const std::string s = capture(ProgressMode::kLines, 4, run_epoch);
  EXPECT_NE(s.find("Epoch 1/2 - step 4/10 - 2.00s - loss: 0.5400 - accuracy: 0.7500\n"), std::string::npos) << s;
  EXPECT_NE(s.find("Epoch 1/2 - step 8/10 -"), std::string::npos) << s;
  EXPECT_EQ(s.find("step 10/10"), std::string::npos) << "the epoch line stands for the last step";
  EXPECT_NE(s.find("Epoch 1/2 - 6.39s - 6573 samples/s - loss: 0.4835 - accuracy: 0.8200 - val_loss: "
                   "0.5483 - val_accuracy: 0.7834"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("Test loss: 0.3000\nTest accuracy: 0.9000\n"), std::string::npos) << s;
  for (char ch : s) EXPECT_TRUE(ch == '\n' || (ch >= 32 && ch < 127)) << "control character " << int(ch);
}

TEST(Console, LiveBarRedrawsOneLineThenKeepsTheSummary) {
  const std::string s = capture(ProgressMode::kBar, 4, run_epoch);
  EXPECT_EQ(s.rfind("Epoch 1/2\n", 0), 0u) << s;
  EXPECT_NE(s.find("\r 1/10 [===>..."), std::string::npos) << s;
  EXPECT_NE(s.find(" 2/10 [======>...") , std::string::npos) << s;
  EXPECT_NE(s.find("ETA: 4s - loss: 0.5200 - accuracy: 0.7500"), std::string::npos) << s;  // 8 steps × 0.5 s
  EXPECT_NE(s.find("\r10/10 [==============================] - 6s 639ms/step - 6573 samples/s - loss: 0.4835"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("val_accuracy: 0.7834\nTest loss: 0.3000"), std::string::npos) << s;
  EXPECT_EQ(s.find('\x1b'), std::string::npos) << "no escape sequences";
}

TEST(Console, BarRedrawsAreThrottled) {
  const std::string s = capture(ProgressMode::kBar, 1, [](ConsoleObserver& c) {
    for (size_t st = 1; st <= 100; ++st) c.on_progress(progress(1, st, 100, 0.001 * static_cast<double>(st)));
  });
  size_t redraws = 0;
  for (char ch : s) redraws += ch == '\r';
  EXPECT_LE(redraws, 3u) << "0.1 s of progress: the first step, at most one more, the last step";
  EXPECT_NE(s.find("100/100 [="), std::string::npos);
}

TEST(Console, BarFitsNarrowTerminals) {
  for (int cols : {40, 60, 80, 120}) {
    const std::string line = ConsoleObserver::bar_line(progress(1, 37, 329, 12.0), cols);
    EXPECT_LT(line.size(), static_cast<size_t>(cols)) << line;
    EXPECT_NE(line.find(" 37/329 ["), std::string::npos) << line;
  }
}

TEST(Console, QuietPrintsOnlyTheTestLines) {
  const std::string s = capture(ProgressMode::kQuiet, 1, run_epoch);
  EXPECT_EQ(s, "Test loss: 0.3000\nTest accuracy: 0.9000\n");
}

TEST(Console, ModeChoice) {
  std::FILE* file = std::tmpfile();
  EXPECT_EQ(progress_mode_for("auto", file, false, false), ProgressMode::kLines);
  EXPECT_EQ(progress_mode_for("bar", file, false, false), ProgressMode::kBar);
  EXPECT_EQ(progress_mode_for("bar", file, true, false), ProgressMode::kQuiet);
  std::fclose(file);
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  std::FILE* tty = fdopen(slave, "w");
  EXPECT_EQ(progress_mode_for("auto", tty, false, false), ProgressMode::kBar);
  EXPECT_EQ(progress_mode_for("auto", tty, false, true), ProgressMode::kLines)
      << "mpirun/srun give ranks a pseudo-terminal whatever their own output is";
  EXPECT_EQ(progress_mode_for("lines", tty, false, false), ProgressMode::kLines);
  std::fclose(tty);
  close(master);
}

TEST(Console, TimeFormats) {
  EXPECT_EQ(format_eta(4.4), "4s");
  EXPECT_EQ(format_eta(65), "1:05");
  EXPECT_EQ(format_eta(3723), "1:02:03");
  EXPECT_EQ(format_step_time(0.0193), "19ms");
  EXPECT_EQ(format_step_time(2.2), "2s");
  EXPECT_EQ(format_step_time(0.00025), "250us");
  EXPECT_EQ(progress_interval(ProgressMode::kBar, 50), 1);
  EXPECT_EQ(progress_interval(ProgressMode::kLines, 50), 50);
  EXPECT_EQ(progress_interval(ProgressMode::kQuiet, 50), 50);
}

}  // namespace
}  // namespace mnist_dist
