// simd_paths_probe: runs the CPU kernels that have an AVX-512 and a portable path on fixed inputs
// and writes every output to one file; test_simd_paths.cpp runs it with MNIST_DIST_NO_AVX512=0
// and =1 (one process each: Context and the probe take the choice from kernels_from_env()) and compares the two files.
// Usage: simd_paths_probe OUT_FILE
// Record: uint32 name length, name, uint8 claim (1 = same bits claimed, 0 = within rounding),
// uint64 count, count doubles (floats and arg-max bytes converted exactly).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/kernel_choice.h"
#include "core/rng.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/conv2d_direct.h"
#include "layers/cpu_simd.h"
#include "optim/adam_cpu_kernel.h"
#include "test_util.h"

namespace md = mnist_dist;
using md::test::LayerHarness;
using md::test::random_vector;

namespace {

FILE* g_out = nullptr;
bool g_avx512 = false;  // the Context default: the CPU has AVX-512F and MNIST_DIST_NO_AVX512 is unset

template <typename T>
void put(const std::string& name, bool same_bits, const T* p, size_t n) {
  const uint32_t len = static_cast<uint32_t>(name.size());
  const uint8_t claim = same_bits ? 1 : 0;
  const uint64_t count = n;
  std::fwrite(&len, sizeof len, 1, g_out);
  std::fwrite(name.data(), 1, len, g_out);
  std::fwrite(&claim, 1, 1, g_out);
  std::fwrite(&count, sizeof count, 1, g_out);
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(p[i]);
    std::fwrite(&d, sizeof d, 1, g_out);
  }
}
template <typename T>
void put(const std::string& name, bool same_bits, const std::vector<T>& v) {
  put(name, same_bits, v.data(), v.size());
}

// Element-wise kernels of cpu_simd.h: the same bits on both paths (n is not a multiple of 16).
void elementwise() {
  namespace s = md::cpu_simd;
  const size_t n = 1031;
  std::vector<float> x = random_vector(n, 1), dy = random_vector(n, 2), y(n), dx(n);
  x[3] = -0.0f;
  x[5] = NAN;
  x[7] = 0.0f;
  s::relu_forward(g_avx512, x.data(), n, y.data());
  put("relu_forward", true, y);
  s::relu_backward(g_avx512, y.data(), dy.data(), n, dx.data());
  put("relu_backward", true, dx);
  x[5] = 0.25f;
  s::bn_normalize(g_avx512, x.data(), n, 0.1f, 1.7f, 0.9f, -0.2f, y.data());
  put("bn_normalize", true, y);
  s::bn_backward_dx(g_avx512, dy.data(), x.data(), n, 0.1f, 1.7f, 0.9f * 1.7f, 1.0f / n, 3.5f, -1.25f, dx.data());
  put("bn_backward_dx", true, dx);
  for (int w : {28, 14, 10}) {  // 10: a masked tail
    std::vector<float> p = random_vector(static_cast<size_t>(w) * w, 3 + w), q(w * w / 4), back(w * w);
    for (float& v : p) v = std::round(v * 4.0f);  // ties: the first maximum must win on both paths
    std::vector<uint8_t> arg(w * w / 4);
    s::maxpool2_forward(g_avx512, p.data(), w, w, q.data(), arg.data());
    put("maxpool2_forward_" + std::to_string(w), true, q);
    put("maxpool2_arg_" + std::to_string(w), true, arg);
    s::maxpool2_backward(g_avx512, q.data(), arg.data(), w, w, back.data());
    put("maxpool2_backward_" + std::to_string(w), true, back);
  }
  const int rows = 37, cols = 45, ld_src = 50, ld_dst = 40;
  std::vector<float> src = random_vector(static_cast<size_t>(rows) * ld_src, 4), bias = random_vector(rows, 5);
  const float* no_bias = nullptr;
  for (const float* b : {no_bias, static_cast<const float*>(bias.data())}) {
    std::vector<float> dst(static_cast<size_t>(cols) * ld_dst, 0.0f);
    s::transpose(g_avx512, src.data(), rows, cols, ld_src, dst.data(), ld_dst, b);
    put(b ? "transpose_bias" : "transpose", true, dst);
  }
  double sums[4] = {0, 0, 0, 0};  // double sums: only the order differs
  s::sum_sumsq(g_avx512, x.data(), n, sums[0], sums[1]);
  s::sum_dy_dyxhat(g_avx512, dy.data(), x.data(), n, 0.1f, 1.7f, sums[2], sums[3]);
  put("bn_sums", false, sums, 4);
}

// Adam (optim/adam_cpu_kernel.h): both loops compute adam::update's operations, same bits.
void adam() {
  const size_t n = 1031;
  for (bool stream : {false, true}) {
    std::vector<float> p = random_vector(n, 6), m = random_vector(n, 7, -0.1, 0.1),
                       v = random_vector(n, 8, 0.0, 0.01), g0 = random_vector(n, 9), g1 = random_vector(n, 10);
    const float* grads[2] = {g0.data(), g1.data()};
    const md::adam::Coeffs c{1e-3f, 0.9f, 0.999f, 1e-7f};
    for (int step = 0; step < 3; ++step) md::adam::update_range(p.data(), m.data(), v.data(), grads, 2, 0, n, c, stream);
    const std::string tag = stream ? "_stream" : "";
    put("adam_params" + tag, true, p);
    put("adam_m" + tag, true, m);
    put("adam_v" + tag, true, v);
  }
}

// Convolution: direct AVX-512 kernels vs im2col + SGEMM, and BatchNorm: within rounding.
void layer(const std::string& name, md::LayerPtr l, md::Shape xs, bool report_direct) {
  LayerHarness h(std::move(l), xs);
  std::vector<float> x = random_vector(xs.size(), 11), y, dx;
  h.forward(x, xs, y, true);
  std::vector<float> dy = random_vector(y.size(), 12);
  h.backward(x, xs, y, dy, dx);
  put(name + "_y", false, y);
  put(name + "_dx", false, dx);
  const auto& infos = h.arena.infos();
  for (size_t i = 0; i < infos.size(); ++i)
    if (infos[i].trainable) put(name + "_grad_" + infos[i].name, false, h.arena.grad(static_cast<int>(i)), infos[i].count);
  if (report_direct) {
    const auto g = md::conv_direct::make_geom(xs.c, xs.h, xs.w, h.out.c, 5, 2);
    const uint8_t direct = g_avx512 && md::conv_direct::supported(g) ? 1 : 0;
    put(name + "_direct_kernels_used", false, &direct, 1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "Usage: simd_paths_probe OUT_FILE\n");
    return 2;
  }
  g_out = std::fopen(argv[1], "wb");
  if (g_out == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  g_avx512 = md::kernels_from_env().use_avx512;
  const uint8_t avx = g_avx512 ? 1 : 0;
  put("avx512_used", false, &avx, 1);
  elementwise();
  adam();
  layer("conv1", md::make_conv2d(md::Backend::kCpu, {1, 6, 5, md::Padding::kSame}), md::Shape{4, 1, 28, 28}, true);
  layer("conv2", md::make_conv2d(md::Backend::kCpu, {6, 12, 5, md::Padding::kSame}), md::Shape{4, 6, 14, 14}, true);
  layer("bn", md::make_batchnorm(md::Backend::kCpu, {6}), md::Shape{4, 6, 14, 14}, false);
  return std::fclose(g_out) == 0 ? 0 : 1;
}
