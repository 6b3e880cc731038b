// Adam step on CPU: one OpenMP loop over the arena (or a shard of it) through
// adam::update_range (optim/adam_cpu_kernel.h).
#include "optim/adam.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "optim/adam_cpu_kernel.h"
#include "optim/adam_cuda.h"

namespace mnist_dist {

Adam::Adam(const AdamConfig& config, size_t count, Backend backend)
    : cfg_(config), m_(backend, count), v_(backend, count) {}

void Adam::reset() {
  t_ = 0;
  step_coeffs_ = {};
  m_.zero();
  v_.zero();
}

void Adam::download_moments(float* m, float* v) const {
  m_.download(m, m_.size());
  v_.download(v, v_.size());
}

void Adam::upload_moments(const float* m, const float* v) {
  m_.upload(m, m_.size());
  v_.upload(v, v_.size());
}

void Adam::step(Context& ctx, float* params, const float* grads) {
  if (backend() == Backend::kCpu) return step(params, grads);
  MD_CHECK(ctx.cuda != nullptr, "Adam on the CUDA backend without a CUDA context");
  ++t_;
  adam_step_cuda(params, grads, m_.data(), v_.data(), m_.size(), coeffs(t_), *ctx.cuda);
}

adam::Coeffs Adam::coeffs(int64_t t) const {
  const double b1t = std::pow(static_cast<double>(cfg_.beta1), static_cast<double>(t));
  const double b2t = std::pow(static_cast<double>(cfg_.beta2), static_cast<double>(t));
  const double lr_t = cfg_.lr * std::sqrt(1.0 - b2t) / (1.0 - b1t);
  const float decay = cfg_.weight_decay > 0.0f
                          ? static_cast<float>(1.0 - static_cast<double>(cfg_.lr) * cfg_.weight_decay)
                          : 1.0f;
  return adam::Coeffs{static_cast<float>(lr_t), cfg_.beta1, cfg_.beta2, cfg_.epsilon, decay};
}

void Adam::step(float* params, const float* grads) { step(params, grads, 0, m_.size()); }

void Adam::step(float* params, const float* grads, size_t begin, size_t end) {
  step_sum(params, &grads, 1, begin, end);
}

void Adam::step_sum(float* params, const float* const* grads, int n, size_t begin, size_t end) {
  begin_step();
  update_sum(params, grads, n, begin, end);
}

void Adam::begin_step() {
  ++t_;
  step_coeffs_ = coeffs(t_);
}

void Adam::update(float* params, const float* grads, size_t begin, size_t end) {
  update_sum(params, &grads, 1, begin, end);
}

void Adam::update_fed(float* params, float* grads, size_t begin, size_t end,
                      const std::function<void(size_t, size_t)>& feed) {
  MD_CHECK(backend() == Backend::kCpu, "Adam::update_fed on a GPU backend");
  MD_CHECK(begin <= end && end <= m_.size(), "Adam::update_fed: bad range");
  MD_CHECK(t_ > 0, "Adam::update before begin_step()");
  const adam::Coeffs c = step_coeffs_;
  const long b = static_cast<long>(begin), e = static_cast<long>(end);
  float* m = m_.data();
  float* v = v_.data();
  constexpr long kChunk = 4096;  // as update_sum
  const long chunks = (e - b + kChunk - 1) / kChunk;
  const bool stream = stream_params_;
  const float* g = grads;
#pragma omp parallel for schedule(static)
  for (long k = 0; k < chunks; ++k) {
    const long lo = b + k * kChunk, hi = std::min(e, b + (k + 1) * kChunk);
    feed(static_cast<size_t>(lo), static_cast<size_t>(hi));
    adam::update_range(params, m, v, &g, 1, lo, hi, c, stream);
  }
}

void Adam::update_sum(float* params, const float* const* grads, int n, size_t begin, size_t end) {
  MD_CHECK(backend() == Backend::kCpu, "Adam::step on a GPU backend without a context");
  MD_CHECK(begin <= end && end <= m_.size() && n >= 1, "Adam::step: bad range or buffer count");
  MD_CHECK(t_ > 0, "Adam::update before begin_step()");
  const adam::Coeffs c = step_coeffs_;
  const long b = static_cast<long>(begin), e = static_cast<long>(end);
  float* m = m_.data();
  float* v = v_.data();
  // Element-wise: how the range is cut over the threads does not change a bit. Chunks of
  // 4096 floats in a static schedule (one contiguous block per thread).
  constexpr long kChunk = 4096;
  const long chunks = (e - b + kChunk - 1) / kChunk;
  const bool stream = stream_params_;
#pragma omp parallel for schedule(static)
  for (long k = 0; k < chunks; ++k)
    adam::update_range(params, m, v, grads, n, b + k * kChunk, std::min(e, b + (k + 1) * kChunk), c, stream);
}

}  // namespace mnist_dist
