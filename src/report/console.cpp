// ConsoleObserver: the live bar (terminals) and plain lines (pipes, Slurm logs), flushed at once.
#include "report/console.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>

namespace mnist_dist {
namespace {

constexpr int kBarWidth = 30;         // Keras's bar width
constexpr double kRedrawSeconds = 0.1;  // at most ten redraws a second

std::string printf_string(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string printf_string(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// "[=====>........]" with `width` cells between the brackets.
std::string bar(size_t step, size_t steps, int width) {
  std::string s = "[";
  const int done = steps == 0 ? width : static_cast<int>(static_cast<double>(width) * step / steps);
  for (int i = 0; i < width; ++i) {
    if (i < done) s += '=';
    else if (i == done && step < steps) s += '>';
    else s += '.';
  }
  if (done >= width) s.back() = '=';
  return s + "]";
}

}  // namespace

ProgressMode progress_mode_for(const std::string& choice, std::FILE* out, bool quiet, bool under_launcher) {
  if (quiet) return ProgressMode::kQuiet;
  if (choice == "bar") return ProgressMode::kBar;
  if (choice == "lines") return ProgressMode::kLines;
  return isatty(fileno(out)) && !under_launcher ? ProgressMode::kBar : ProgressMode::kLines;
}

int progress_interval(ProgressMode mode, int log_every) {
  return mode == ProgressMode::kBar ? 1 : std::max(1, log_every);
}

std::string format_eta(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return printf_string("%ld:%02ld", s / 60, s % 60);
  return printf_string("%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
}

std::string format_step_time(double seconds) {
  if (seconds >= 1.0) return printf_string("%.0fs", seconds);
  if (seconds >= 1e-3) return printf_string("%.0fms", seconds * 1e3);
  return printf_string("%.0fus", seconds * 1e6);
}

ConsoleObserver::ConsoleObserver(ProgressMode mode, int log_every, std::FILE* out, int width)
    : mode_(mode), log_every_(std::max(1, log_every)), out_(out), width_(width) {}

void ConsoleObserver::on_train_begin(const TrainConfig& config, const RunInfo&) {
  epochs_ = config.epochs;
  evaluate_ = config.evaluate;
}

int ConsoleObserver::columns() const {
  if (width_ > 0) return width_;
  winsize ws{};
  if (ioctl(fileno(out_), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

std::string ConsoleObserver::bar_line(const Progress& p, int columns) {
  const int digits = static_cast<int>(std::to_string(p.steps_per_epoch).size());
  const double per_step = p.step > 0 ? p.seconds / static_cast<double>(p.step) : 0.0;
  const std::string eta = p.step < p.steps_per_epoch
                              ? "ETA: " + format_eta(per_step * static_cast<double>(p.steps_per_epoch - p.step))
                              : format_eta(p.seconds) + " " + format_step_time(per_step) + "/step";
  const std::string head = printf_string("%*zu/%zu ", digits, p.step, p.steps_per_epoch);
  const std::string tail =
      printf_string(" - %s - loss: %.4f - accuracy: %.4f", eta.c_str(), p.loss, p.accuracy);
  // Shrink the bar (not below 10 cells), then cut, so that the line never wraps: a wrapped
  // line cannot be redrawn with '\r'.
  const int room = columns - 1 - static_cast<int>(head.size() + tail.size()) - 2;
  const int width = std::clamp(room, 10, kBarWidth);
  std::string line = head + bar(p.step, p.steps_per_epoch, width) + tail;
  if (columns > 1 && line.size() > static_cast<size_t>(columns - 1)) line.resize(columns - 1);
  return line;
}

void ConsoleObserver::draw(const std::string& line) {
  std::string s = "\r" + line;
  if (line.size() < last_len_) s.append(last_len_ - line.size(), ' ');
  last_len_ = line.size();
  std::fputs(s.c_str(), out_);
  std::fflush(out_);
}

void ConsoleObserver::on_progress(const Progress& p) {
  if (mode_ == ProgressMode::kQuiet) return;
  if (mode_ == ProgressMode::kLines) {
    // The epoch's last step is followed by the epoch line.
    if (p.step % static_cast<size_t>(log_every_) != 0 || p.step == p.steps_per_epoch) return;
    std::fprintf(out_, "Epoch %d/%d - step %zu/%zu - %.2fs - loss: %.4f - accuracy: %.4f\n", p.epoch,
                 epochs_, p.step, p.steps_per_epoch, p.seconds, p.loss, p.accuracy);
    std::fflush(out_);
    return;
  }
  if (header_epoch_ != p.epoch) {
    std::fprintf(out_, "Epoch %d/%d\n", p.epoch, epochs_);
    header_epoch_ = p.epoch;
    last_len_ = 0;
    last_draw_ = -1.0;
  }
  const bool last = p.step == p.steps_per_epoch;
  if (!last && last_draw_ >= 0.0 && p.seconds - last_draw_ < kRedrawSeconds) return;
  last_draw_ = p.seconds;
  draw(bar_line(p, columns()));
}

void ConsoleObserver::on_epoch_end(const EpochMetrics& m) {
  if (mode_ == ProgressMode::kQuiet) return;
  const std::string val = evaluate_ ? printf_string(" - val_loss: %.4f - val_accuracy: %.4f", m.val_loss,
                                                    m.val_accuracy)
                                    : std::string();
  if (mode_ == ProgressMode::kLines) {
    std::fprintf(out_,
                 "Epoch %d/%d - %.2fs - %.0f samples/s - loss: %.4f - accuracy: %.4f%s - data wait "
                 "%.3fs, comm %.3fs, compute %.3fs\n",
                 m.epoch, epochs_, m.seconds, m.samples_per_second, m.loss, m.accuracy, val.c_str(),
                 m.data_wait_seconds, m.comm_seconds, m.compute_seconds);
    std::fflush(out_);
    return;
  }
  // Bar mode: the full bar with the epoch's time per step and the validation metrics, kept.
  if (header_epoch_ != m.epoch) std::fprintf(out_, "Epoch %d/%d\n", m.epoch, epochs_);
  header_epoch_ = m.epoch;
  const size_t steps = static_cast<size_t>(std::max<int64_t>(m.steps, 0));
  const double per_step = steps > 0 ? m.seconds / static_cast<double>(steps) : 0.0;
  const int digits = static_cast<int>(std::to_string(steps).size());
  const std::string line = printf_string(
      "%*zu/%zu %s - %s %s/step - %.0f samples/s - loss: %.4f - accuracy: %.4f%s", digits, steps, steps,
      bar(steps, steps, kBarWidth).c_str(), format_eta(m.seconds).c_str(),
      format_step_time(per_step).c_str(), m.samples_per_second, m.loss, m.accuracy, val.c_str());
  draw(line);
  std::fputc('\n', out_);
  std::fflush(out_);
  last_len_ = 0;
}

void ConsoleObserver::on_train_end(const TrainResult& r) {
  if (r.test.count == 0) return;
  std::fprintf(out_, "Test loss: %.4f\nTest accuracy: %.4f\n", r.test.loss, r.test.accuracy);
  std::fflush(out_);
}

}  // namespace mnist_dist
