// Shared helpers of the engine unit tests (see test_util.h).
#include "test_util.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace mnist_dist::test {

LayerHarness::LayerHarness(LayerPtr l, Shape input, uint64_t init_seed, const std::string& name)
    : layer(std::move(l)), in(input) {
  layer->set_name(name);
  layer->declare(arena);
  layer->reserve(in);
  out = layer->output_shape(in);
  arena.finalize();
  Rng rng(init_seed);
  layer->init(arena, rng);
}

int LayerHarness::id(const std::string& suffix) const {
  const std::string full = layer->name() + "/" + suffix;
  for (size_t i = 0; i < arena.infos().size(); ++i)
    if (arena.infos()[i].name == full) return static_cast<int>(i);
  ADD_FAILURE() << "no tensor " << full << " in the arena";
  return -1;
}

void LayerHarness::forward(std::vector<float>& x, Shape xs, std::vector<float>& y, bool training) {
  const Shape ys = layer->output_shape(xs);
  y.assign(ys.size(), 0.0f);
  Tensor tx{x.data(), xs}, ty{y.data(), ys};
  layer->forward(ctx, arena, tx, ty, training);
}

void LayerHarness::backward(std::vector<float>& x, Shape xs, std::vector<float>& y,
                            std::vector<float>& dy, std::vector<float>& dx, bool want_dx) {
  const Shape ys = layer->output_shape(xs);
  dx.assign(want_dx ? xs.size() : 0, 0.0f);
  Tensor tx{x.data(), xs}, ty{y.data(), ys}, tdy{dy.data(), ys};
  Tensor tdx{want_dx ? dx.data() : nullptr, xs};
  layer->backward(ctx, arena, tx, ty, tdy, tdx);
}

void fill_uniform(float* p, size_t n, Rng& rng, double lo, double hi) {
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(lo + (hi - lo) * rng.uniform());
}

std::vector<float> random_vector(size_t n, uint64_t seed, double lo, double hi) {
  std::vector<float> v(n);
  Rng rng(seed, 99);
  fill_uniform(v.data(), n, rng, lo, hi);
  return v;
}

std::vector<double> to_double(const float* p, size_t n) { return std::vector<double>(p, p + n); }

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

::testing::AssertionResult all_close(const std::string& what, const float* got,
                                     const std::vector<double>& ref, double atol, double rtol,
                                     const Shape* shape) {
  auto where = [&](size_t i) {
    std::ostringstream os;
    os << "[" << i << "]";
    if (shape != nullptr) {
      const size_t w = shape->w, h = shape->h, c = shape->c;
      os << " (n " << i / (c * h * w) << ", c " << i / (h * w) % c << ", h " << i / w % h
         << ", w " << i % w << ")";
    }
    return os.str();
  };
  size_t bad = 0, worst = 0;
  double worst_diff = -1.0;
  std::ostringstream first;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const bool ok = d <= atol + rtol * std::fabs(ref[i]);  // NaN compares false: a mismatch
    if (!ok || std::isnan(d)) {
      if (bad < 8)
        first << "\n    " << where(i) << ": got " << got[i] << ", reference " << ref[i]
              << ", |diff| " << d;
      ++bad;
    }
    if (std::isnan(d) || d > worst_diff) {
      worst_diff = std::isnan(d) ? INFINITY : d;
      worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << what << ": " << bad << " of " << ref.size() << " elements differ (atol " << atol
         << ", rtol " << rtol << "); max |diff| " << worst_diff << " at " << where(worst)
         << "\n  first mismatches:" << first.str();
}

}  // namespace mnist_dist::test
