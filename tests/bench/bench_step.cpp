// md_bench: times mnist_dist's CPU engine without the trainer around it — the training step
// loop (forward, loss, backward, Adam) and inference with the data already in memory, a
// per-layer breakdown, and the machine's sgemm rate. One JSON object per line (rate =
// samples per second) for tests/bench/run_bench.sh; the PyTorch side is torch_bench.py.
// usage (usage() below): md_bench MODE [--data DIR] [--model M] [--batch-size B] [--threads T] ...
//   MODE  step    training steps over contiguous batches of a once-shuffled train split
//         infer   forward passes in inference mode (+ arg-max) over the val split
//         layers  each layer's forward and backward ms per step (the best of R repetitions of
//                 S steps), through the same layers built one by one — the profile
//         sgemm   OpenBLAS sgemm rate at 2048³
#include <cblas.h>
#include <omp.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/aligned.h"
#include "core/error.h"
#include "data_pipeline/shard_reader.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/elementwise.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"

namespace md = mnist_dist;
using Clock = std::chrono::steady_clock;

namespace {

// --clock cpu: process CPU time instead of wall time (development on a shared machine: with one
// thread it ignores the time other processes hold the core; not for the reported numbers).
bool g_cpu_clock = false;

Clock::time_point cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(
      std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

Clock::time_point now() { return g_cpu_clock ? cpu_now() : Clock::now(); }

struct Args {
  std::string mode, data, model = "seed";
  int batch = 128, threads = 1, steps = 100, warmup = 20, reps = 5;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "md_bench: %s\nusage: md_bench step|infer|layers|sgemm [--data DIR] [--model seed|lenet5] "
               "[--batch-size B] [--threads T] [--steps S] [--warmup W] [--reps R] [--clock wall|cpu]\n", msg);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  if (argc < 2) usage("a mode is required");
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + k).c_str());
    const char* v = argv[++i];
    if (k == "--data") a.data = v;
    else if (k == "--model") a.model = v;
    else if (k == "--batch-size") a.batch = std::atoi(v);
    else if (k == "--threads") a.threads = std::atoi(v);
    else if (k == "--steps") a.steps = std::atoi(v);
    else if (k == "--warmup") a.warmup = std::atoi(v);
    else if (k == "--reps") a.reps = std::atoi(v);
    else if (k == "--clock") g_cpu_clock = std::string(v) == "cpu";
    else usage(("unknown option " + k).c_str());
  }
  if (a.mode != "step" && a.mode != "infer" && a.mode != "layers" && a.mode != "sgemm")
    usage(("unknown mode " + a.mode).c_str());
  if (a.batch < 1 || a.threads < 1 || a.steps < 1 || a.reps < 1 || a.warmup < 0)
    usage("sizes must be positive");
  return a;
}

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(now() - t0).count(); }

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

// A split in memory, pixels / 255, optionally shuffled once; synthetic when no --data.
struct Data {
  size_t n = 0;
  int rows = 28, cols = 28, classes = 10;
  md::AlignedVector<float> images;
  std::vector<uint8_t> labels;
};

Data load(const std::string& dir, const std::string& split, bool shuffle) {
  Data d;
  std::vector<uint8_t> raw;
  if (dir.empty()) {
    d.n = 8192;
    raw.resize(d.n * 784);
    d.labels.resize(d.n);
    std::mt19937 g(7);
    for (auto& p : raw) p = static_cast<uint8_t>(g() & 0xff);
    for (auto& l : d.labels) l = static_cast<uint8_t>(g() % 10);
  } else {
    md::data::ShardReader r = md::data::ShardReader::open(dir, split);
    d.n = r.size();
    d.rows = static_cast<int>(r.rows());
    d.cols = static_cast<int>(r.cols());
    d.classes = r.num_classes();
    raw.resize(d.n * d.rows * d.cols);
    d.labels.resize(d.n);
    r.read_range(0, d.n, raw.data(), d.labels.data());
  }
  const size_t px = static_cast<size_t>(d.rows) * d.cols;
  std::vector<uint32_t> order(d.n);
  std::iota(order.begin(), order.end(), 0u);
  if (shuffle) std::shuffle(order.begin(), order.end(), std::mt19937(1));
  d.images.resize(d.n * px);
  std::vector<uint8_t> labels(d.n);
  for (size_t i = 0; i < d.n; ++i) {
    const uint8_t* src = raw.data() + order[i] * px;
    float* dst = d.images.data() + i * px;
    for (size_t j = 0; j < px; ++j) dst[j] = src[j] * (1.0f / 255.0f);
    labels[i] = d.labels[order[i]];
  }
  d.labels.swap(labels);
  return d;
}

void print_rates(const Args& a, const char* mode, const std::vector<double>& rates, double extra_ms) {
  std::printf("{\"side\": \"ours\", \"mode\": \"%s\", \"model\": \"%s\", \"threads\": %d, \"batch\": %d, "
              "\"rates\": [",
              mode, a.model.c_str(), a.threads, a.batch);
  for (size_t i = 0; i < rates.size(); ++i) std::printf("%s%.1f", i ? ", " : "", rates[i]);
  std::printf("], \"peak_rss_mib\": %.1f, \"setup_ms\": %.1f}\n", peak_rss_mib(), extra_ms);
  std::fflush(stdout);
}

int run_step(const Args& a) {
  const auto t0 = now();
  Data d = load(a.data, "train", true);
  md::Model model(a.model, md::Backend::kCpu, md::Shape{1, 1, d.rows, d.cols}, d.classes, a.batch);
  model.init(1);
  auto loss = md::make_softmax_xent(md::Backend::kCpu);
  md::Adam adam(md::AdamConfig{}, model.arena().param_count());
  md::AlignedVector<float> dlogits(static_cast<size_t>(a.batch) * d.classes);
  md::Context ctx;
  ctx.threads = a.threads;
  const size_t px = static_cast<size_t>(d.rows) * d.cols;
  const size_t nb = d.n / a.batch;
  size_t step = 0;
  auto run = [&](int steps) {
    for (int s = 0; s < steps; ++s, ++step) {
      const size_t first = (step % nb) * a.batch;
      const md::Tensor& logits = model.forward(ctx, d.images.data() + first * px, a.batch, true);
      const md::LossStats st = loss->run(ctx, logits, d.labels.data() + first, 1.0f / a.batch,
                                         dlogits.data(), nullptr);
      if (!(st.loss_sum == st.loss_sum)) md::fatal("md_bench: non-finite loss", __FILE__, __LINE__);
      // as mnist_dist's trainer on one rank: each layer's Adam update as its backward ends
      adam.begin_step();
      model.backward(ctx, dlogits.data(), [&](int layer) {
        const auto r = model.grad_range(static_cast<size_t>(layer));
        adam.update(model.arena().params(), model.arena().grads(), r.first, r.second);
      });
    }
  };
  const double setup_ms = seconds(t0) * 1e3;
  run(a.warmup);
  std::vector<double> rates;
  for (int r = 0; r < a.reps; ++r) {
    const auto t = now();
    run(a.steps);
    rates.push_back(static_cast<double>(a.steps) * a.batch / seconds(t));
  }
  print_rates(a, "step", rates, setup_ms);
  return 0;
}

int run_infer(const Args& a) {
  const auto t0 = now();
  Data d = load(a.data, "val", false);
  md::Model model(a.model, md::Backend::kCpu, md::Shape{1, 1, d.rows, d.cols}, d.classes, a.batch);
  model.init(1);
  auto loss = md::make_softmax_xent(md::Backend::kCpu);
  std::vector<int32_t> pred(a.batch);
  md::Context ctx;
  ctx.threads = a.threads;
  const size_t px = static_cast<size_t>(d.rows) * d.cols;
  const size_t nb = std::max<size_t>(1, d.n / a.batch);
  MD_CHECK(d.n >= static_cast<size_t>(a.batch), "md_bench: split smaller than the batch");
  size_t step = 0;
  auto run = [&](int steps) {
    for (int s = 0; s < steps; ++s, ++step) {
      const size_t first = (step % nb) * a.batch;
      const md::Tensor& logits = model.forward(ctx, d.images.data() + first * px, a.batch, false);
      loss->run(ctx, logits, d.labels.data() + first, 1.0f, nullptr, pred.data());
    }
  };
  const double setup_ms = seconds(t0) * 1e3;
  run(a.warmup);
  std::vector<double> rates;
  for (int r = 0; r < a.reps; ++r) {
    const auto t = now();
    run(a.steps);
    rates.push_back(static_cast<double>(a.steps) * a.batch / seconds(t));
  }
  print_rates(a, "infer", rates, setup_ms);
  return 0;
}

// The same layer sequence as model/model.cpp, built through the public factories so each
// layer can be timed on its own (Model keeps its layers private).
struct Stack {
  std::vector<md::LayerPtr> layers;
  std::vector<md::Shape> shapes;  // shapes[i] = input of layer i; back() = logits
  md::ParamArena arena;
};

void build_stack(Stack& s, const std::string& arch, md::Shape in, int classes) {
  const md::Backend b = md::Backend::kCpu;
  auto add = [&](md::LayerPtr l, const char* name) {
    l->set_name(name);
    s.layers.push_back(std::move(l));
  };
  using md::Padding;
  if (arch == "seed") {
    add(md::make_conv2d(b, {in.c, 6, 5, Padding::kSame}), "conv1");
    add(md::make_batchnorm(b, {6}), "bn1");
    add(md::make_relu(b), "relu1");
    add(md::make_maxpool2(b), "pool1");
    add(md::make_conv2d(b, {6, 12, 5, Padding::kSame}), "conv2");
    add(md::make_batchnorm(b, {12}), "bn2");
    add(md::make_relu(b), "relu2");
    add(md::make_maxpool2(b), "pool2");
    add(md::make_flatten(b), "flatten");
    add(md::make_dense(b, {12 * (in.h / 4) * (in.w / 4), 1200}), "dense1");
    add(md::make_relu(b), "relu3");
    add(md::make_dense(b, {1200, 840}), "dense2");
    add(md::make_relu(b), "relu4");
    add(md::make_dense(b, {840, classes}), "dense3");
  } else {
    add(md::make_conv2d(b, {in.c, 6, 5, Padding::kSame}), "conv1");
    add(md::make_relu(b), "relu1");
    add(md::make_maxpool2(b), "pool1");
    add(md::make_conv2d(b, {6, 16, 5, Padding::kValid}), "conv2");
    add(md::make_relu(b), "relu2");
    add(md::make_maxpool2(b), "pool2");
    add(md::make_flatten(b), "flatten");
    add(md::make_dense(b, {16 * ((in.h / 2 - 4) / 2) * ((in.w / 2 - 4) / 2), 120}), "dense1");
    add(md::make_relu(b), "relu3");
    add(md::make_dense(b, {120, 84}), "dense2");
    add(md::make_relu(b), "relu4");
    add(md::make_dense(b, {84, classes}), "dense3");
  }
  md::Shape sh = in;
  for (auto& l : s.layers) {
    l->declare(s.arena);
    l->reserve(sh);
    s.shapes.push_back(sh);
    sh = l->output_shape(sh);
  }
  s.shapes.push_back(sh);
  s.arena.finalize();
  md::Rng rng(1, 0x1417);
  for (auto& l : s.layers) l->init(s.arena, rng);
}

int run_layers(const Args& a) {
  Data d = load(a.data, "train", true);
  Stack s;
  build_stack(s, a.model, md::Shape{a.batch, 1, d.rows, d.cols}, d.classes);
  const size_t L = s.layers.size();
  std::vector<md::AlignedVector<float>> act(L + 1), dact(L + 1);
  for (size_t i = 0; i <= L; ++i) {
    act[i].assign(s.shapes[i].size(), 0.0f);
    dact[i].assign(s.shapes[i].size(), 0.0f);
  }
  auto loss = md::make_softmax_xent(md::Backend::kCpu);
  md::Adam adam(md::AdamConfig{}, s.arena.param_count());
  md::Context ctx;
  ctx.threads = a.threads;
  // Per-layer mean over `steps` steps, `reps` times; the minimum over repetitions is printed
  // (robust against other processes on a shared machine).
  std::vector<double> tf(L, 1e30), tb(L, 1e30), f(L), bk(L);
  double tloss = 1e30, tadam = 1e30;
  const size_t px = static_cast<size_t>(d.rows) * d.cols;
  const size_t nb = d.n / a.batch;
  size_t step = 0;
  for (int rep = -1; rep < a.reps; ++rep) {  // rep −1: warm-up
    std::fill(f.begin(), f.end(), 0.0);
    std::fill(bk.begin(), bk.end(), 0.0);
    double fl = 0.0, fa = 0.0;
    const int count = rep < 0 ? a.warmup : a.steps;
    for (int s2 = 0; s2 < count; ++s2, ++step) {
      const size_t first = (step % nb) * a.batch;
      std::copy_n(d.images.data() + first * px, act[0].size(), act[0].data());
      for (size_t i = 0; i < L; ++i) {
        md::Tensor x{act[i].data(), s.shapes[i]}, y{act[i + 1].data(), s.shapes[i + 1]};
        const auto t = now();
        s.layers[i]->forward(ctx, s.arena, x, y, true);
        f[i] += seconds(t);
      }
      auto t = now();
      loss->run(ctx, md::Tensor{act[L].data(), s.shapes[L]}, d.labels.data() + first,
                1.0f / a.batch, dact[L].data(), nullptr);
      fl += seconds(t);
      for (size_t i = L; i-- > 0;) {
        md::Tensor x{act[i].data(), s.shapes[i]}, y{act[i + 1].data(), s.shapes[i + 1]};
        md::Tensor dy{dact[i + 1].data(), s.shapes[i + 1]};
        md::Tensor dx{i == 0 ? nullptr : dact[i].data(), s.shapes[i]};
        const auto tt = now();
        s.layers[i]->backward(ctx, s.arena, x, y, dy, dx);
        bk[i] += seconds(tt);
      }
      t = now();
      adam.step(s.arena.params(), s.arena.grads());
      fa += seconds(t);
    }
    if (rep < 0) continue;
    for (size_t i = 0; i < L; ++i) {
      tf[i] = std::min(tf[i], f[i]);
      tb[i] = std::min(tb[i], bk[i]);
    }
    tloss = std::min(tloss, fl);
    tadam = std::min(tadam, fa);
  }
  double sum = tloss + tadam;
  for (size_t i = 0; i < L; ++i) sum += tf[i] + tb[i];
  const double per = 1e3 / a.steps;
  std::printf("# %s, batch %d, %d thread(s): ms per step, mean over %d steps, best of %d\n",
              a.model.c_str(), a.batch, a.threads, a.steps, a.reps);
  std::printf("%-10s %9s %9s %7s\n", "layer", "forward", "backward", "share");
  for (size_t i = 0; i < L; ++i)
    std::printf("%-10s %9.3f %9.3f %6.1f%%\n", s.layers[i]->name().c_str(), tf[i] * per,
                tb[i] * per, 100.0 * (tf[i] + tb[i]) / sum);
  std::printf("%-10s %9.3f %9s %6.1f%%\n", "loss", tloss * per, "", 100.0 * tloss / sum);
  std::printf("%-10s %9.3f %9s %6.1f%%\n", "adam", tadam * per, "", 100.0 * tadam / sum);
  std::printf("%-10s %9.3f ms/step = %.0f samples/s\n", "total", sum * per,
              a.batch * a.steps / sum);
  return 0;
}

int run_sgemm(const Args& a) {
  struct Shape3 {
    const char* name;
    int m, n, k;
  };
  const Shape3 shapes[] = {{"2048^3", 2048, 2048, 2048}};
  for (const Shape3& s : shapes) {
    md::AlignedVector<float> A(static_cast<size_t>(s.m) * s.k, 0.5f), B(static_cast<size_t>(s.k) * s.n, 0.25f),
        C(static_cast<size_t>(s.m) * s.n, 0.0f);
    auto once = [&] {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.m, s.n, s.k, 1.0f, A.data(), s.k,
                  B.data(), s.n, 0.0f, C.data(), s.n);
    };
    for (int i = 0; i < 2; ++i) once();
    std::vector<double> g;
    for (int r = 0; r < a.reps; ++r) {
      const auto t = now();
      once();
      g.push_back(2.0 * s.m * s.n * s.k / seconds(t) / 1e9);
    }
    std::printf("{\"side\": \"ours\", \"mode\": \"sgemm\", \"shape\": \"%s\", \"threads\": %d, \"gflops\": [",
                s.name, a.threads);
    for (size_t i = 0; i < g.size(); ++i) std::printf("%s%.1f", i ? ", " : "", g[i]);
    std::printf("]}\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  omp_set_num_threads(a.threads);
  openblas_set_num_threads(a.threads);
  try {
    if (a.mode == "step") return run_step(a);
    if (a.mode == "infer") return run_infer(a);
    if (a.mode == "layers") return run_layers(a);
    return run_sgemm(a);
  } catch (const md::UserError& e) {
    std::fprintf(stderr, "md_bench: error: %s\n", e.what());
    return 2;
  }
}
