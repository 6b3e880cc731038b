// `mnist_dist predict --checkpoint PATH IMAGE...`: classifies PNG/PGM pictures (28×28 as they
// are; larger ones fitted and centred like MNIST) and prints the class and its probabilities;
// `--data DIR --split test` evaluates the model on a split with the training evaluator.
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/threads.h"
#include "core/cli.h"
#include "core/error.h"
#include "export/model_file.h"
#include "io/output_file.h"
#include "layers/softmax_xent.h"
#include "report/digit_image.h"
#include "report/image_io.h"
#include "report/run_dir.h"
#include "report/test_report.h"
#include "train/evaluator.h"
#include "train/split_loader.h"

namespace mnist_dist {
namespace {

constexpr int kBatch = 256;

std::vector<double> softmax(const float* logits, int k) {
  double mx = logits[0];
  for (int c = 1; c < k; ++c) mx = std::max<double>(mx, logits[c]);
  std::vector<double> p(static_cast<size_t>(k));
  double sum = 0.0;
  for (int c = 0; c < k; ++c) sum += p[c] = std::exp(logits[c] - mx);
  for (double& v : p) v /= sum;
  return p;
}

int argmax(const float* v, int k) { return static_cast<int>(std::max_element(v, v + k) - v); }

void predict_images(Context& ctx, Model& model, const std::vector<std::string>& paths, Invert invert, bool json) {
  const Shape in = model.input_shape();
  const int k = model.num_classes();
  if (in.c != 1) throw UserError("predicting from pictures needs a one-channel model");
  DigitPrepOptions opt;
  opt.rows = in.h;
  opt.cols = in.w;
  opt.box = in.h * 20 / 28;
  opt.invert = invert;
  for (const std::string& path : paths) {
    const GrayImage img = read_image(path);
    const PreparedDigit d = prepare_digit(img, opt);
    const Tensor& logits = model.forward(ctx, d.pixels.data(), 1, false);
    const std::vector<double> p = softmax(logits.data, k);
    const int cls = argmax(logits.data, k);
    if (json) {
      nlohmann::json j = {{"image", path},
                          {"class", cls},
                          {"probability", p[cls]},
                          {"probabilities", p},
                          {"logits", std::vector<float>(logits.data, logits.data + k)},
                          {"width", img.width},
                          {"height", img.height},
                          {"inverted", d.inverted},
                          {"resized", d.resized}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::string probs;
      for (int c = 0; c < k; ++c) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%d: %.4f", c ? ", " : "", c, p[c]);
        probs += buf;
      }
      std::string how;
      if (d.inverted) how += "inverted (dark ink on light paper)";
      if (d.resized) how += std::string(how.empty() ? "" : ", ") + "fitted and centred like MNIST";
      if (d.blank) how += std::string(how.empty() ? "" : ", ") + "no ink found: the picture is blank";
      if (!how.empty()) how = "  (" + std::to_string(img.width) + "x" + std::to_string(img.height) + " picture: " + how + ")";
      std::printf("%s: %d  p=%.4f  [%s]%s\n", path.c_str(), cls, p[cls], probs.c_str(), how.c_str());
    }
    std::fflush(stdout);
  }
}

void evaluate_split(Context& ctx, Model& model, const std::string& dir, const std::string& split,
                    const std::string& report_path, const std::string& predictions_path) {
  const LoadedSplit s = load_split_data(dir, split);
  const Shape in = model.input_shape();
  if (s.rows != in.h || s.cols != in.w || s.num_classes != model.num_classes())
    throw UserError(dir + ": images are " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " with " +
                    std::to_string(s.num_classes) + " classes; the model takes " + std::to_string(in.h) + "x" +
                    std::to_string(in.w) + " with " + std::to_string(model.num_classes()));
  auto loss = make_softmax_xent(Backend::kCpu);
  std::vector<int32_t> predictions;
  const EvalResult r = evaluate(ctx, model, *loss, s.data, &predictions);
  std::string name = split;
  if (!name.empty()) name[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(name[0])));
  std::printf("mnist_dist: %s split of %s: %lld samples\n%s loss: %.4f\n%s accuracy: %.4f\n", split.c_str(),
              dir.c_str(), static_cast<long long>(r.count), name.c_str(), r.loss, name.c_str(), r.accuracy);
  if (!report_path.empty()) {
    write_file_atomic(report_path,
                      test_report_text(make_test_report(r, predictions, s.data.labels, model.num_classes(), split)));
    std::printf("mnist_dist: wrote %s\n", report_path.c_str());
  }
  if (!predictions_path.empty()) {
    // index, label, predicted, probability of the predicted class, one forward pass per batch.
    std::string csv = "index,label,predicted,probability\n";
    const size_t pixels = in.per_sample();
    const int k = model.num_classes();
    for (size_t begin = 0; begin < s.data.n; begin += kBatch) {
      const int n = static_cast<int>(std::min<size_t>(kBatch, s.data.n - begin));
      const Tensor& logits = model.forward(ctx, s.data.images.data() + begin * pixels, n, false);
      for (int i = 0; i < n; ++i) {
        const float* l = logits.data + static_cast<size_t>(i) * k;
        const int cls = argmax(l, k);
        char line[96];
        std::snprintf(line, sizeof line, "%zu,%d,%d,%.6f\n", begin + i, s.data.labels[begin + i], cls,
                      softmax(l, k)[cls]);
        csv += line;
      }
    }
    write_file_atomic(predictions_path, csv);
    std::printf("mnist_dist: wrote %s\n", predictions_path.c_str());
  }
}

}  // namespace

int run_predict(int argc, char** argv) {
  std::string checkpoint, data_dir, split = "test", invert = "auto", report, predictions;
  std::vector<std::string> images;
  bool json = false;
  int threads = 0;
  CLI::App app{"mnist_dist predict: classifies pictures with a trained model, or evaluates it on a split.\n"
               "Pictures: PNG or PGM, 28x28 used as they are; larger (or smaller) ones are fitted like\n"
               "MNIST (ink box scaled to 20x20, centre of mass at the centre). Dark ink on light paper is\n"
               "inverted (MNIST digits are light on dark).",
               "mnist_dist predict"};
  app.add_option("--checkpoint", checkpoint, "A model written with --save, or a training checkpoint")
      ->required();
  app.add_option("images", images, "PNG / PGM pictures to classify");
  app.add_option("--data", data_dir, "Evaluate on a split of this prepared data set (made by mnist_prepare)");
  app.add_option("--split", split, "The split for --data")
      ->check(CLI::IsMember({"train", "val", "test"}))
      ->capture_default_str();
  app.add_option("--report", report, "With --data: write the evaluation report (as test_report.json) here");
  app.add_option("--predictions", predictions,
                 "With --data: write index,label,predicted,probability per sample (CSV) here");
  app.add_option("--invert", invert, "Invert pictures: auto (when the border is light), yes, no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))
      ->capture_default_str();
  app.add_flag("--json", json, "One JSON object per picture (class, probabilities, logits)");
  app.add_option("--threads", threads, "CPU threads (0 = the cores this process may use)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.footer("Examples:\n  mnist_dist predict --checkpoint model.h5 seven.png digit.pgm\n"
             "  mnist_dist predict --checkpoint model.h5 --data data/mnist-h5 --split test\n"
             "Exit codes: 0 success, 1 internal error, 2 bad input (flags, paths, files),\n"
             "  5 no space left to write --report or --predictions (nothing half-written).");
  const auto check = [&] {
    if (threads > max_threads())
      throw CLI::ValidationError("--threads " + std::to_string(threads) + " is more than 4 x the " +
                                 std::to_string(usable_cores()) + " cores this process may use; use at most " +
                                 std::to_string(max_threads()));
    if (images.empty() && data_dir.empty())
      throw CLI::ValidationError("nothing to do: give pictures to classify and/or --data DIR");
    if (data_dir.empty() && (!report.empty() || !predictions.empty()))
      throw CLI::ValidationError("--report and --predictions need --data DIR");
  };
  if (auto code = parse_command_line(app, argc, argv, check)) return *code;
  return run_reporting_errors("mnist_dist predict", [&] {
    set_threads(threads > 0 ? threads : default_threads(1));
    Context ctx;
    ctx.threads = threads > 0 ? threads : default_threads(1);
    // Outputs first: a path that cannot be written fails before any work.
    check_output_file("--report", report, kSmallOutputBytes, "report.json");
    check_output_file("--predictions", predictions, kSmallOutputBytes, "predictions.csv");
    // The file named here may predate sidecars: read it, unverified, after saying so.
    if (std::filesystem::is_regular_file(checkpoint) && !has_sidecar(checkpoint))
      std::fprintf(stderr, "mnist_dist predict: %s\n", unverified_warning(checkpoint).c_str());
    Model model = load_model_file(checkpoint, kBatch, nullptr, MissingSidecar::kAllow);
    const Invert inv = invert == "yes" ? Invert::kYes : invert == "no" ? Invert::kNo : Invert::kAuto;
    if (!images.empty()) predict_images(ctx, model, images, inv, json);
    if (!data_dir.empty()) evaluate_split(ctx, model, data_dir, split, report, predictions);
    return kExitOk;
  });
}

}  // namespace mnist_dist
