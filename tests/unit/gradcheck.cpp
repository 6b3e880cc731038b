// Finite-difference gradient checker (see gradcheck.h).
#include "gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <omp.h>

#include "core/rng.h"

namespace mnist_dist::test {
namespace {

// The finite-difference loop runs thousands of tiny forward passes; with OpenMP's spinning
// barriers they slow down ten-fold when ctest -j or other builds load the cores, so they run
// on one thread (fewer threads than a layer reserved for is always safe). The analytic
// gradients are computed before, with the caller's thread count.
class ScopedOmpThreads {
 public:
  explicit ScopedOmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~ScopedOmpThreads() { omp_set_num_threads(saved_); }
  ScopedOmpThreads(const ScopedOmpThreads&) = delete;
  ScopedOmpThreads& operator=(const ScopedOmpThreads&) = delete;

 private:
  int saved_;
};

std::string multi_index(const GradTarget& t, size_t i) {
  std::ostringstream os;
  os << t.name << "[" << i << "]";
  if (t.dims.size() > 1) {
    std::vector<int> ix(t.dims.size());
    size_t r = i;
    for (size_t d = t.dims.size(); d-- > 0;) {
      ix[d] = static_cast<int>(r % t.dims[d]);
      r /= t.dims[d];
    }
    os << " (";
    for (size_t d = 0; d < ix.size(); ++d) os << (d ? ", " : "") << ix[d];
    os << ")";
  }
  return os.str();
}

std::vector<size_t> chosen_coords(size_t count, const GradCheckOptions& o, size_t target_index) {
  std::vector<size_t> c;
  if (o.max_coords_per_tensor == 0 || count <= o.max_coords_per_tensor) {
    c.resize(count);
    for (size_t i = 0; i < count; ++i) c[i] = i;
    return c;
  }
  const auto perm = seeded_permutation(count, o.seed, 1000 + target_index);
  c.assign(perm.begin(), perm.begin() + o.max_coords_per_tensor);
  std::sort(c.begin(), c.end());
  return c;
}

}  // namespace

bool GradCheckReport::ok() const {
  const double total = static_cast<double>(checked + skipped);
  return failed == 0 && checked > 0 &&
         static_cast<double>(skipped) <= options.max_skipped_fraction * total;
}

std::string GradCheckReport::summary() const {
  std::ostringstream os;
  os << "gradient check: " << checked << " compared (" << significant << " with |numeric| > atol), "
     << skipped << " skipped as kinks, " << failed << " failed (h " << options.step << ", atol "
     << options.atol << ", rtol " << options.rtol << "); max |analytic - numeric| " << max_diff;
  if (!max_where.empty()) os << " at " << max_where;
  if (!mismatches.empty()) {
    os << "\n  first mismatches:";
    for (const auto& m : mismatches) os << "\n    " << m;
  }
  if (skipped > options.max_skipped_fraction * static_cast<double>(checked + skipped)) {
    os << "\n  too many kinks skipped (allowed fraction " << options.max_skipped_fraction
       << "); first:";
    for (const auto& k : kinks) os << "\n    " << k;
  }
  if (checked == 0) os << "\n  nothing was compared";
  return os.str();
}

::testing::AssertionResult GradCheckReport::result() const {
  if (ok()) return ::testing::AssertionSuccess() << summary();
  return ::testing::AssertionFailure() << summary();
}

GradCheckReport finite_difference_check(const std::function<double()>& loss,
                                        std::vector<GradTarget>& targets,
                                        const GradCheckOptions& o) {
  GradCheckReport r;
  r.options = o;
  ScopedOmpThreads one_thread(1);
  const double l0 = loss();
  for (size_t ti = 0; ti < targets.size(); ++ti) {
    GradTarget& t = targets[ti];
    for (size_t i : chosen_coords(t.analytic.size(), o, ti)) {
      const float v = t.values[i];
      const float vp = static_cast<float>(v + o.step), vm = static_cast<float>(v - o.step);
      t.values[i] = vp;
      const double lp = loss();
      t.values[i] = vm;
      const double lm = loss();
      t.values[i] = v;
      // The steps actually taken (v ± h rounded to float), exactly representable in double.
      const double hp = static_cast<double>(vp) - v, hm = static_cast<double>(v) - vm;
      const double numeric = (lp - lm) / (hp + hm);
      const double tol = o.atol + o.rtol * std::fabs(numeric);
      const double fwd = (lp - l0) / hp, bwd = (l0 - lm) / hm;
      if (o.skip_kinks && std::fabs(fwd - bwd) > o.kink_factor * tol) {
        ++r.skipped;
        if (r.kinks.size() < 5) {
          std::ostringstream os;
          os << multi_index(t, i) << ": one-sided slopes " << bwd << " | " << fwd
             << ", analytic " << t.analytic[i];
          r.kinks.push_back(os.str());
        }
        continue;
      }
      ++r.checked;
      const double diff = std::fabs(t.analytic[i] - numeric);
      if (std::fabs(numeric) > o.atol) ++r.significant;
      if (!(diff <= tol)) {  // NaN fails
        ++r.failed;
        if (r.mismatches.size() < 8) {
          std::ostringstream os;
          os << multi_index(t, i) << ": analytic " << t.analytic[i] << ", numeric " << numeric
             << ", |diff| " << diff;
          r.mismatches.push_back(os.str());
        }
      }
      if (!(diff <= r.max_diff)) {
        r.max_diff = std::isnan(diff) ? INFINITY : diff;
        r.max_where = multi_index(t, i);
      }
    }
  }
  return r;
}

GradCheckReport check_layer_gradients(Layer& layer, ParamArena& arena, Context& ctx,
                                      const Tensor& x, const Tensor& dy,
                                      const GradCheckOptions& o) {
  const Shape ys = layer.output_shape(x.shape);
  EXPECT_EQ(dy.shape, ys) << "gradient check: dy has the wrong shape";
  std::vector<float> y(ys.size());
  std::vector<float> state(arena.state(), arena.state() + arena.state_count());
  Tensor ty{y.data(), ys};

  // Analytic gradients, written over garbage.
  layer.forward(ctx, arena, x, ty, o.training);
  std::fill_n(arena.grads(), arena.param_count(), 1234.5f);
  std::vector<float> dx(o.check_dx ? x.size() : 0, -999.0f);
  Tensor tdx{o.check_dx ? dx.data() : nullptr, x.shape};
  layer.backward(ctx, arena, x, ty, dy, tdx);

  std::vector<GradTarget> targets;
  if (o.check_dx)
    targets.push_back(GradTarget{"dx", x.data, std::vector<double>(dx.begin(), dx.end()),
                                 {x.shape.n, x.shape.c, x.shape.h, x.shape.w}});
  for (size_t id = 0; id < arena.infos().size(); ++id) {
    const ParamInfo& p = arena.info(static_cast<int>(id));
    if (!p.trainable) continue;
    const float* g = arena.grad(static_cast<int>(id));
    targets.push_back(GradTarget{"d" + p.name, arena.param(static_cast<int>(id)),
                                 std::vector<double>(g, g + p.count), p.shape});
  }

  auto loss = [&]() {
    layer.forward(ctx, arena, x, ty, o.training);
    std::copy(state.begin(), state.end(), arena.state());
    double l = 0.0;
    for (size_t i = 0; i < y.size(); ++i) l += static_cast<double>(y[i]) * dy.data[i];
    return l;
  };
  GradCheckReport r = finite_difference_check(loss, targets, o);
  // Leave the layer as after the unperturbed forward (its saved scratch, the state).
  layer.forward(ctx, arena, x, ty, o.training);
  std::copy(state.begin(), state.end(), arena.state());
  return r;
}

}  // namespace mnist_dist::test
