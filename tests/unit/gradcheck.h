// The one gradient checker of the unit tests: central finite differences of a scalar loss,
// accumulated in double, against analytic gradients, with kink handling (ReLU, max-pool).
// check_layer_gradients() applies it to any Layer with L = Σ y·dy; the model test calls
// finite_difference_check() directly with the softmax cross-entropy of the whole network.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/tensor.h"
#include "layers/layer.h"
#include "layers/param_arena.h"

namespace mnist_dist::test {

struct GradCheckOptions {
  double step = 1e-3;    // h: coordinates are evaluated at v ± h (the steps actually taken in
                         // float are used in the quotient)
  double atol = 1e-3;    // pass when |analytic − numeric| ≤ atol + rtol·|numeric|
  double rtol = 1e-2;
  bool training = true;  // forward mode of the layer
  size_t max_coords_per_tensor = 0;  // 0: every coordinate; else a seeded random subset
  uint64_t seed = 1;                 // for that subset
  // Kinks: a coordinate whose one-sided differences (L(v+h) − L(v))/h and (L(v) − L(v−h))/h
  // disagree by more than kink_factor·(atol + rtol·|numeric|) is not differentiable at the
  // scale of h (a ReLU crossed zero, a max-pool arg-max changed): it is skipped, not compared.
  bool skip_kinks = true;
  double kink_factor = 1.0;
  double max_skipped_fraction = 0.0;  // more skipped coordinates than this fails the check
  bool check_dx = true;               // layers: also compare dL/dx
};

// A tensor whose gradient is checked: its live values (perturbed in place, then restored) and
// the analytic gradient computed beforehand. dims only serve to print multi-indices.
struct GradTarget {
  std::string name;
  float* values = nullptr;
  std::vector<double> analytic;
  std::vector<int> dims;
};

struct GradCheckReport {
  GradCheckOptions options;
  size_t checked = 0;      // coordinates compared
  size_t skipped = 0;      // coordinates skipped as kinks
  size_t failed = 0;
  size_t significant = 0;  // compared coordinates with |numeric| > atol (not vacuous)
  double max_diff = 0.0;   // over the compared coordinates
  std::string max_where;
  std::vector<std::string> mismatches;  // the first few
  std::vector<std::string> kinks;       // the first few skipped

  bool ok() const;
  std::string summary() const;
  // Success, or a failure with the max difference, where, and the first mismatches.
  ::testing::AssertionResult result() const;
};

// Checks every target: for each chosen coordinate v, numeric = (L(v+h) − L(v−h)) / (2h).
// `loss` is evaluated with one OpenMP thread (see gradcheck.cpp).
GradCheckReport finite_difference_check(const std::function<double()>& loss,
                                        std::vector<GradTarget>& targets,
                                        const GradCheckOptions& options);

// A built layer (declared, reserved, arena finalized, parameters initialised): runs forward on
// x, backward with dy (into gradient and dx buffers pre-filled with garbage, so a layer that
// accumulates or leaves entries unwritten is caught), then checks dL/dx and the gradient of
// every trainable tensor of the arena against finite differences of L = Σ y·dy. The arena's
// non-trainable state (running statistics) is restored after every evaluation.
GradCheckReport check_layer_gradients(Layer& layer, ParamArena& arena, Context& ctx,
                                      const Tensor& x, const Tensor& dy,
                                      const GradCheckOptions& options);

}  // namespace mnist_dist::test
