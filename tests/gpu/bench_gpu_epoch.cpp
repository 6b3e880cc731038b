// bench_gpu_epoch: full epochs of the seed net on one GPU through the engine API — forward, fused
// softmax-CE, backward, Adam (the trainer's one-rank step minus the exchange and the loader) —
// with the whole train set uploaded to the device once, like tests/gpu/torch_gpu_bench.py does
// for PyTorch. One JSON line per epoch (same keys as torch_gpu_bench.py) for
// tests/gpu/bench_table.py. A benchmark target, not a test: built with the CUDA backend only.
// usage: bench_gpu_epoch IDX_DIR [--batch-size B] [--epochs N] [--samples N] [--tf32 on|off]
//                        [--seed S] [--model seed|lenet5]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/buffer.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_runtime_api.h"
#include "data_pipeline/idx_reader.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"

namespace md = mnist_dist;

namespace {

struct Args {
  std::string idx_dir, model = "seed";
  int batch = 128, epochs = 3;
  size_t samples = 60000;  // the train set is tiled up to this many (a carried subset)
  bool tf32 = true;
  unsigned seed = 1;
};

[[noreturn]] void usage(const std::string& msg, int code = 2) {
  std::fprintf(code == 0 ? stdout : stderr,
               "bench_gpu_epoch: %s\nusage: bench_gpu_epoch IDX_DIR [--batch-size B] [--epochs N] "
               "[--samples N] [--tf32 on|off] [--seed S] [--model seed|lenet5]\n",
               msg.c_str());
  std::exit(code);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "-h" || k == "--help") usage("times training epochs on the GPU", 0);
    if (k.rfind("--", 0) != 0) {
      if (!a.idx_dir.empty()) usage("more than one IDX_DIR");
      a.idx_dir = k;
      continue;
    }
    if (i + 1 >= argc) usage("missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--batch-size") a.batch = std::atoi(v.c_str());
    else if (k == "--epochs") a.epochs = std::atoi(v.c_str());
    else if (k == "--samples") a.samples = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--seed") a.seed = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
    else if (k == "--model") a.model = v;
    else if (k == "--tf32" && (v == "on" || v == "off")) a.tf32 = v == "on";
    else usage("unknown option or value: " + k + " " + v);
  }
  if (a.idx_dir.empty()) usage("IDX_DIR is required");
  if (a.batch < 1 || a.epochs < 1 || a.samples < 1) usage("sizes must be positive");
  return a;
}

// The train images as floats in [0, 1], tiled to `samples` and shuffled once (fixed order: the
// epochs then read contiguous batches, as torch_gpu_bench.py --shuffle once does).
struct HostData {
  std::vector<float> images;  // (samples, 1, rows, cols)
  std::vector<uint8_t> labels;
  int rows = 0, cols = 0;
};

HostData load(const Args& a) {
  namespace d = md::data;
  const d::IdxDataset raw = d::load_idx_pair(d::find_idx_file(a.idx_dir, "train-images-idx3-ubyte"),
                                             d::find_idx_file(a.idx_dir, "train-labels-idx1-ubyte"));
  HostData h;
  h.rows = static_cast<int>(raw.rows);
  h.cols = static_cast<int>(raw.cols);
  const size_t px = static_cast<size_t>(h.rows) * h.cols;
  std::vector<size_t> order(a.samples);
  for (size_t i = 0; i < a.samples; ++i) order[i] = i % raw.count;
  std::shuffle(order.begin(), order.end(), std::mt19937(a.seed));
  h.images.resize(a.samples * px);
  h.labels.resize(a.samples);
  for (size_t i = 0; i < a.samples; ++i) {
    const uint8_t* src = raw.images.data() + order[i] * px;
    for (size_t j = 0; j < px; ++j) h.images[i * px + j] = static_cast<float>(src[j]) * (1.0f / 255.0f);
    h.labels[i] = raw.labels[order[i]];
  }
  return h;
}

int run(const Args& a) {
  const HostData h = load(a);  // first: a bad IDX_DIR is reported even without a GPU
  std::string why;
  if (md::usable_gpu_count(&why) == 0) {
    std::fprintf(stderr, "bench_gpu_epoch: %zu samples read; no usable GPU (%s)\n", h.labels.size(), why.c_str());
    return 2;
  }
  const size_t n = h.labels.size(), px = static_cast<size_t>(h.rows) * h.cols;
  std::unique_ptr<md::CudaContext> cuda = md::CudaContext::create(md::select_local_gpu(0, 1));
  cuda->set_allow_tf32(a.tf32);
  md::Context ctx;  // no communicator: one replica, BatchNorm over the batch
  ctx.backend = md::Backend::kCuda;
  ctx.cuda = cuda.get();

  md::Buffer<float> x(md::Backend::kCuda, h.images.size());  // uploaded once
  md::Buffer<uint8_t> y(md::Backend::kCuda, n);
  x.upload(h.images.data(), h.images.size());
  y.upload(h.labels.data(), n);
  md::Model model(a.model, md::Backend::kCuda, md::Shape{1, 1, h.rows, h.cols}, 10, a.batch);
  model.init(a.seed);
  auto loss = md::make_softmax_xent(md::Backend::kCuda);
  md::Adam adam(md::AdamConfig{}, model.arena().param_count(), md::Backend::kCuda);
  md::Buffer<float> dlogits(md::Backend::kCuda, static_cast<size_t>(a.batch) * 10);
  std::fprintf(stderr, "bench_gpu_epoch: %s, %zu samples resident (%.0f MiB), batch %d, tf32 %s\n",
               cuda->describe().c_str(), n, static_cast<double>(h.images.size()) * 4 / (1 << 20), a.batch,
               a.tf32 ? "on" : "off");

  for (int epoch = 1; epoch <= a.epochs; ++epoch) {
    md::device_synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    // As the trainer: the loss sums stay on the device (accumulate) and are read back once per
    // 100 steps (its default --log-every) and at the end of the epoch — no host wait per step.
    double loss_sum = 0.0;
    int64_t step = 0;
    for (size_t first = 0; first < n; first += static_cast<size_t>(a.batch), ++step) {
      const int nb = static_cast<int>(std::min<size_t>(static_cast<size_t>(a.batch), n - first));
      const md::Tensor& logits = model.forward(ctx, x.data() + first * px, nb, true);
      loss->accumulate(ctx, logits, y.data() + first, 1.0f / static_cast<float>(nb), dlogits.data(), step);
      model.backward(ctx, dlogits.data());
      adam.step(ctx, model.arena().params(), model.arena().grads());
      if ((step + 1) % 100 == 0) loss_sum += loss->read_back().sums.loss_sum;
    }
    loss_sum += loss->read_back().sums.loss_sum;
    md::device_synchronize();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!std::isfinite(loss_sum)) md::fatal("bench_gpu_epoch: non-finite loss", __FILE__, __LINE__);
    std::printf("{\"impl\": \"mnist_dist\", \"device\": \"cuda\", \"batch\": %d, \"epoch\": %d, "
                "\"samples\": %zu, \"seconds\": %.4f, \"rate\": %.1f, \"loss\": %.4f, \"tf32\": %s}\n",
                a.batch, epoch, n, dt, static_cast<double>(n) / dt, loss_sum / static_cast<double>(n),
                a.tf32 ? "true" : "false");
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    return run(a);
  } catch (const md::UserError& e) {  // a bad IDX_DIR or file
    std::fprintf(stderr, "bench_gpu_epoch: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu_epoch: %s\n", e.what());
    return 1;
  }
}
