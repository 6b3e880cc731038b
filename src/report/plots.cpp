// gnuplot scripts for the three pictures; data handed over in a private temporary directory.
#include "report/plots.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "report/mistakes.h"
#include "report/test_report.h"

extern char** environ;

namespace mnist_dist {
namespace fs = std::filesystem;
namespace {

// A gnuplot single-quoted string ('' stands for one quote inside).
std::string q(const std::string& s) {
  std::string r = "'";
  for (char c : s) r += c == '\'' ? std::string("''") : std::string(1, c);
  return r + "'";
}

std::string terminal(ImageSize s) {
  return "set terminal pngcairo size " + std::to_string(s.width) + "," + std::to_string(s.height) +
         " noenhanced font 'DejaVu Sans,10' background rgb 'white'\n";
}

std::string read_text(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A temporary directory removed on scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mnist_dist_plot_XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr)
      throw UserError("cannot create a temporary directory for plotting: " + std::string(std::strerror(errno)));
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// Runs `gnuplot script`; output and errors go to a log file that is quoted on failure.
void run_gnuplot(const std::string& gnuplot, const fs::path& script, const fs::path& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  const std::string s = script.string();
  char* argv[] = {const_cast<char*>(gnuplot.c_str()), const_cast<char*>(s.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, gnuplot.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw UserError("cannot run " + gnuplot + ": " + std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string msg = read_text(log);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    throw UserError(gnuplot + " failed on " + script.filename().string() + ": " + msg);
  }
}

// Renders one picture: script → run_dir/name.tmp → run_dir/name.
void draw(const std::string& gnuplot, const TempDir& tmp, const fs::path& run_dir, const std::string& name,
          const std::string& body, PlotOutcome& out) {
  const fs::path target = run_dir / name;
  const fs::path partial = run_dir / (name + ".tmp");
  const fs::path script = tmp.path / (name + ".gp");
  {
    std::ofstream f(script);
    f << "set output " << q(partial.string()) << "\n" << body << "unset output\n";
  }
  run_gnuplot(gnuplot, script, tmp.path / (name + ".log"));
  std::error_code ec;
  fs::rename(partial, target, ec);
  if (ec) throw UserError("cannot rename " + partial.string() + " to " + target.string() + ": " + ec.message());
  out.written.push_back(target.string());
}

std::string curves_script(const fs::path& run_dir, const TempDir& tmp) {
  std::ifstream in(run_dir / "metrics.jsonl");
  std::ostringstream dat;
  int epochs = 0;
  bool val = false, lr_varies = false;  // the LR is drawn only when a schedule changed it
  double first_lr = NAN;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw UserError((run_dir / "metrics.jsonl").string() + ": a line is not JSON: " + line.substr(0, 80));
    }
    if (j.value("kind", "") != "epoch") continue;
    auto num = [&](const char* k) { return j.contains(k) && j[k].is_number() ? j[k].get<double>() : NAN; };
    const double vl = num("val_loss"), va = num("val_accuracy"), lr = num("lr");
    val = val || !std::isnan(vl);
    if (!std::isnan(lr)) {
      lr_varies = lr_varies || (!std::isnan(first_lr) && lr != first_lr);
      if (std::isnan(first_lr)) first_lr = lr;
    }
    dat << j.value("epoch", 0) << ' ' << num("loss") << ' ' << vl << ' ' << num("accuracy") << ' ' << va << ' '
        << lr << '\n';
    epochs = std::max(epochs, j.value("epoch", 0));
  }
  const fs::path data = tmp.path / "curves.dat";
  std::ofstream(data) << dat.str();
  if (epochs == 0) return "";
  std::ostringstream s;
  s << terminal(kCurvesSize) << "set datafile missing 'nan'\n"
    << "set multiplot layout 1,2 title " << q("Training curves: " + run_dir.filename().string()) << "\n"
    << "set grid\nset xlabel 'epoch'\nset key box opaque\n"
    << "set xrange [" << (epochs > 1 ? 1.0 : 0.5) << ":" << (epochs > 1 ? epochs : 1.5) << "]\n"
    << (epochs <= 20 ? "set xtics 1\n" : "") << "set style data linespoints\n"
    << "set ylabel 'loss'\nset key top right\nset title 'loss'\n"
    << (lr_varies ? "set y2label 'learning rate (last step of the epoch)'\nset y2tics\nset ytics nomirror\n" : "")
    << "plot " << q(data.string()) << " using 1:2 lw 2 pt 7 lc rgb '#1f77b4' title 'train'"
    << (val ? ", '' using 1:3 lw 2 pt 5 lc rgb '#ff7f0e' title 'validation'" : "")
    << (lr_varies ? ", '' using 1:6 axes x1y2 lw 1 dt 2 pt 1 lc rgb '#2ca02c' title 'learning rate'" : "") << "\n"
    << (lr_varies ? "unset y2label\nunset y2tics\nset ytics mirror\n" : "")
    << "set ylabel 'accuracy'\nset key bottom right\nset title 'accuracy'\n"
    << "plot " << q(data.string()) << " using 1:4 lw 2 pt 7 lc rgb '#1f77b4' title 'train'"
    << (val ? ", '' using 1:5 lw 2 pt 5 lc rgb '#ff7f0e' title 'validation'" : "") << "\n"
    << "unset multiplot\n";
  return s.str();
}

std::string confusion_script(const TestReport& r, const TempDir& tmp) {
  const int k = static_cast<int>(r.confusion.size());
  int64_t max = 1;
  for (const auto& row : r.confusion) for (int64_t v : row) max = std::max(max, v);
  const fs::path data = tmp.path / "confusion.dat";
  {
    std::ofstream f(data);
    // x (predicted) y (true) count label-colour
    for (int t = 0; t < k; ++t)
      for (int p = 0; p < k; ++p) {
        const int64_t v = r.confusion[t][p];
        f << p << ' ' << t << ' ' << v << ' ' << (v * 2 > max ? 0xFFFFFF : 0x202020) << '\n';
      }
  }
  std::ostringstream s;
  char acc[64];
  std::snprintf(acc, sizeof acc, "%.4f", r.eval.accuracy);
  s << terminal(kConfusionSize)
    << "set title " << q("Confusion matrix, " + r.split + " split: " + std::to_string(r.eval.count) +
                          " samples, accuracy " + acc) << "\n"
    << "set xlabel 'predicted class'\nset ylabel 'true class'\n"
    << "set xrange [-0.5:" << k - 0.5 << "]\nset yrange [" << k - 0.5 << ":-0.5]\n"
    << "set xtics 0,1," << k - 1 << " scale 0\nset ytics 0,1," << k - 1 << " scale 0\n"
    << "set size square\nset cbrange [0:" << max << "]\nset cblabel 'samples'\n"
    << "set palette defined (0 '#ffffff', 1 '#c6dbef', 2 '#6baed6', 3 '#2171b5', 4 '#08306b')\n"
    << "plot " << q(data.string()) << " using 1:2:3 with image notitle, \\\n"
    << "     '' using 1:2:(sprintf('%d', $3)):4 with labels tc rgb variable font ',9' notitle\n";
  return s.str();
}

std::string mistakes_script(const Mistakes& m, const TempDir& tmp) {
  const int g = kMistakesGrid, pad = 4, label = 12;
  const int cw = m.cols + 2 * pad, ch = m.rows + 2 * pad + label;  // cell, label band on top
  const int W = g * cw, H = g * ch;
  std::vector<uint8_t> canvas(static_cast<size_t>(W) * H, 255);  // row 0 = top
  const size_t shown = std::min<size_t>(m.size(), static_cast<size_t>(g * g));
  std::ostringstream labels;
  for (size_t i = 0; i < shown; ++i) {
    const int cx = static_cast<int>(i % g) * cw, cy = static_cast<int>(i / g) * ch;
    for (int y = 0; y < m.rows; ++y)
      for (int x = 0; x < m.cols; ++x) {
        const uint8_t v = m.images[(i * m.rows + y) * m.cols + x];
        canvas[static_cast<size_t>(cy + label + pad + y) * W + cx + pad + x] = static_cast<uint8_t>(255 - v);
      }
    // A thin frame around the digit.
    for (int x = cx + pad - 1; x <= cx + pad + m.cols; ++x) {
      canvas[static_cast<size_t>(cy + label + pad - 1) * W + x] = 160;
      canvas[static_cast<size_t>(cy + label + pad + m.rows) * W + x] = 160;
    }
    for (int y = cy + label + pad - 1; y <= cy + label + pad + m.rows; ++y) {
      canvas[static_cast<size_t>(y) * W + cx + pad - 1] = 160;
      canvas[static_cast<size_t>(y) * W + cx + pad + m.cols] = 160;
    }
    labels << "set label " << i + 1 << " " << q("true " + std::to_string(m.labels[i]) + "  pred " +
                                                std::to_string(m.predicted[i]))
           << " at " << cx + cw / 2.0 << "," << cy + label / 2.0 + pad / 2.0
           << " center front font ',9' tc rgb '" << "#b00020" << "'\n";
  }
  const fs::path data = tmp.path / "mistakes.u8";
  std::ofstream(data, std::ios::binary).write(reinterpret_cast<const char*>(canvas.data()),
                                                static_cast<std::streamsize>(canvas.size()));
  std::ostringstream s;
  s << terminal(kMistakesSize)
    << "set title " << q(m.size() == 0 ? std::string("No misclassified test images")
                                       : "Misclassified test images: first " + std::to_string(shown) +
                                             " (true and predicted class)") << "\n"
    << "unset xtics\nunset ytics\nunset border\nunset colorbox\nunset key\n"
    // The grid fills the picture below the title at exactly 3 screen pixels per image pixel.
    << "set lmargin at screen 0\nset rmargin at screen " << 3.0 * W / kMistakesSize.width << "\n"
    << "set bmargin at screen 0\nset tmargin at screen " << 3.0 * H / kMistakesSize.height << "\n"
    << "set xrange [-0.5:" << W - 0.5 << "]\nset yrange [" << H - 0.5 << ":-0.5]\n"
    << "set palette gray\nset cbrange [0:255]\n"
    << labels.str()
    << "plot " << q(data.string()) << " binary array=(" << W << "," << H
    << ") format='%uchar' origin=(0,0) with image notitle\n";
  return s.str();
}

}  // namespace

std::string find_gnuplot() {
  if (const char* env = std::getenv("MNIST_DIST_GNUPLOT"); env != nullptr) {
    if (*env == '\0' || access(env, X_OK) != 0) return "";
    return env;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / "gnuplot";
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

PlotOutcome render_plots(const std::string& run_dir_str, const std::string& gnuplot) {
  const fs::path run_dir(run_dir_str);
  if (!fs::is_regular_file(run_dir / "metrics.jsonl"))
    throw UserError(run_dir_str + " is not a run directory of mnist_dist (no metrics.jsonl)");
  if (gnuplot.empty())
    throw UserError("gnuplot is not installed: apt-get install gnuplot-nox (then: mnist_dist plot " +
                    run_dir_str + ")");
  TempDir tmp;
  PlotOutcome out;
  const std::string curves = curves_script(run_dir, tmp);
  if (curves.empty()) out.skipped.push_back("curves.png: metrics.jsonl has no epoch yet");
  else draw(gnuplot, tmp, run_dir, "curves.png", curves, out);

  if (fs::is_regular_file(run_dir / "test_report.json")) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text(run_dir / "test_report.json"));
    } catch (const nlohmann::json::exception& e) {
      throw UserError((run_dir / "test_report.json").string() + " is not JSON: " + e.what());
    }
    draw(gnuplot, tmp, run_dir, "confusion.png", confusion_script(test_report_from_json(j), tmp), out);
  } else {
    out.skipped.push_back("confusion.png: no test_report.json (the test split was not evaluated)");
  }
  if (fs::is_regular_file(run_dir / "mistakes.h5"))
    draw(gnuplot, tmp, run_dir, "mistakes.png", mistakes_script(read_mistakes((run_dir / "mistakes.h5").string()), tmp), out);
  else
    out.skipped.push_back("mistakes.png: no mistakes.h5 (the test split was not evaluated)");
  return out;
}

}  // namespace mnist_dist
