// Shared helpers of the engine unit tests: a one-layer harness over its own arena, seeded random
// fills, and the atol + rtol·|ref| comparison that prints max difference, where, first mismatches.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/context.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "layers/layer.h"
#include "layers/param_arena.h"

namespace mnist_dist::test {

// One layer built the way Model builds it: name, declare, reserve(in), finalize, init(seed).
struct LayerHarness {
  LayerHarness(LayerPtr l, Shape input, uint64_t init_seed = 7, const std::string& name = "l");

  // The arena id of "<name>/<suffix>" (e.g. "weight"); fails the test when absent.
  int id(const std::string& suffix) const;
  // Runs forward into `y` (resized to the output shape of x).
  void forward(std::vector<float>& x, Shape xs, std::vector<float>& y, bool training);
  // Runs backward after forward; dx resized to x's size (dx.data null when want_dx is false).
  void backward(std::vector<float>& x, Shape xs, std::vector<float>& y, std::vector<float>& dy,
                std::vector<float>& dx, bool want_dx = true);

  LayerPtr layer;
  ParamArena arena;
  Shape in, out;
  Context ctx;  // CPU, comm = nullptr (local statistics)
};

// Fills with U(lo, hi) from a seeded stream.
std::vector<float> random_vector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0);
void fill_uniform(float* p, size_t n, Rng& rng, double lo, double hi);
std::vector<double> to_double(const float* p, size_t n);
inline std::vector<double> to_double(const std::vector<float>& v) {
  return to_double(v.data(), v.size());
}

// |got − ref| ≤ atol + rtol·|ref| element-wise; on failure the message gives the count, the max
// difference and where (index and, when `shape` is given, its (n, c, h, w)), and the first
// mismatches.
::testing::AssertionResult all_close(const std::string& what, const float* got,
                                     const std::vector<double>& ref, double atol, double rtol,
                                     const Shape* shape = nullptr);
inline ::testing::AssertionResult all_close(const std::string& what, const std::vector<float>& got,
                                            const std::vector<double>& ref, double atol,
                                            double rtol, const Shape* shape = nullptr) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs reference "
                                         << ref.size();
  return all_close(what, got.data(), ref, atol, rtol, shape);
}

// max |v|, for tolerances scaled to a tensor's magnitude.
double max_abs(const std::vector<double>& v);

}  // namespace mnist_dist::test
