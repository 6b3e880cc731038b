// Adam step on CPU: one OpenMP loop over the whole arena through adam::update.
#include "optim/adam.h"

#include <cmath>

namespace mnist_dist {

Adam::Adam(const AdamConfig& config, size_t count) : cfg_(config), m_(count, 0.0f), v_(count, 0.0f) {}

adam::Coeffs Adam::coeffs(int64_t t) const {
  const double b1t = std::pow(static_cast<double>(cfg_.beta1), static_cast<double>(t));
  const double b2t = std::pow(static_cast<double>(cfg_.beta2), static_cast<double>(t));
  const double lr_t = cfg_.lr * std::sqrt(1.0 - b2t) / (1.0 - b1t);
  return adam::Coeffs{static_cast<float>(lr_t), cfg_.beta1, cfg_.beta2, cfg_.epsilon};
}

void Adam::step(float* params, const float* grads) {
  ++t_;
  const adam::Coeffs c = coeffs(t_);
  const long n = static_cast<long>(m_.size());
  float* m = m_.data();
  float* v = v_.data();
#pragma omp parallel for simd schedule(static)
  for (long i = 0; i < n; ++i) adam::update(params[i], m[i], v[i], grads[i], c);
}

}  // namespace mnist_dist
