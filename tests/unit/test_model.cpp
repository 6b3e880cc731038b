// Models: the seed net and LeNet-5 build with the hand-counted trainable parameters and the
// expected shapes, Keras-default init (deterministic per seed, Glorot limits, zero biases),
// gradients reported last layer first, and a whole-network gradient check of the seed net in
// training mode (softmax cross-entropy on random labels) against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "core/error.h"
#include "gradcheck.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "optim/adam.h"
#include "test_util.h"

namespace mnist_dist::test {
namespace {

const Shape kMnist{1, 1, 28, 28};

std::map<std::string, std::vector<int>> shapes_of(const Model& m) {
  std::map<std::string, std::vector<int>> s;
  for (const auto& p : m.arena().infos()) s[p.name] = p.shape;
  return s;
}

std::vector<Shape> layer_shapes(const Model& m, int n) {
  std::vector<Shape> out;
  Shape s = m.input_shape().with_batch(n);
  for (size_t i = 0; i < m.num_layers(); ++i) out.push_back(s = m.layer(i).output_shape(s));
  return out;
}

TEST(ModelSeed, TrainableParameterCountByHand) {
  Model m("seed", Backend::kCpu, kMnist, 10, 4);
  const size_t conv1 = 6 * 1 * 25 + 6, bn1 = 6 + 6, conv2 = 12 * 6 * 25 + 12, bn2 = 12 + 12,
               dense1 = 588 * 1200 + 1200, dense2 = 1200 * 840 + 840, dense3 = 840 * 10 + 10;
  EXPECT_EQ(m.arena().trainable_scalars(), conv1 + bn1 + conv2 + bn2 + dense1 + dense2 + dense3);
  EXPECT_EQ(m.arena().trainable_scalars(), 1726054u);
  const auto s = shapes_of(m);
  EXPECT_EQ(s.at("conv1/weight"), (std::vector<int>{6, 1, 5, 5}));
  EXPECT_EQ(s.at("conv2/weight"), (std::vector<int>{12, 6, 5, 5}));
  EXPECT_EQ(s.at("bn1/running_var"), (std::vector<int>{6}));
  EXPECT_EQ(s.at("bn2/weight"), (std::vector<int>{12}));
  EXPECT_EQ(s.at("dense1/weight"), (std::vector<int>{1200, 588}));
  EXPECT_EQ(s.at("dense2/weight"), (std::vector<int>{840, 1200}));
  EXPECT_EQ(s.at("dense3/weight"), (std::vector<int>{10, 840}));
  EXPECT_EQ(s.at("dense3/bias"), (std::vector<int>{10}));
  // Non-trainable state: the running mean and variance of the two BatchNorms.
  size_t state = 0;
  for (const auto& p : m.arena().infos()) state += p.trainable ? 0 : p.count;
  EXPECT_EQ(state, 2u * 6 + 2u * 12);
  EXPECT_NE(m.summary().find("trainable parameters: 1726054"), std::string::npos) << m.summary();
}

TEST(ModelLenet5, TrainableParameterCountByHand) {
  Model m("lenet5", Backend::kCpu, kMnist, 10, 4);
  const size_t conv1 = 6 * 1 * 25 + 6, conv2 = 16 * 6 * 25 + 16, dense1 = 400 * 120 + 120,
               dense2 = 120 * 84 + 84, dense3 = 84 * 10 + 10;
  EXPECT_EQ(m.arena().trainable_scalars(), conv1 + conv2 + dense1 + dense2 + dense3);
  EXPECT_EQ(m.arena().trainable_scalars(), 61706u);
  EXPECT_EQ(m.arena().state_count(), 0u);
}

TEST(ModelSeed, ForwardShapes) {
  Model m("seed", Backend::kCpu, kMnist, 10, 5);
  const std::vector<Shape> expect{{3, 6, 28, 28}, {3, 6, 28, 28}, {3, 6, 28, 28}, {3, 6, 14, 14},
                                  {3, 12, 14, 14}, {3, 12, 14, 14}, {3, 12, 14, 14}, {3, 12, 7, 7},
                                  {3, 588, 1, 1}, {3, 1200, 1, 1}, {3, 1200, 1, 1}, {3, 840, 1, 1},
                                  {3, 840, 1, 1}, {3, 10, 1, 1}};
  EXPECT_EQ(layer_shapes(m, 3), expect);
  m.init(1);
  Context ctx;
  std::vector<float> x = random_vector(3 * 28 * 28, 1, 0.0, 1.0);
  for (bool training : {true, false}) {
    const Tensor& logits = m.forward(ctx, x.data(), 3, training);
    EXPECT_EQ(logits.shape, (Shape{3, 10, 1, 1}));
    for (size_t i = 0; i < logits.size(); ++i) ASSERT_TRUE(std::isfinite(logits.data[i]));
  }
}

TEST(ModelLenet5, ForwardShapes) {
  Model m("lenet5", Backend::kCpu, kMnist, 10, 2);
  const std::vector<Shape> expect{{2, 6, 28, 28}, {2, 6, 28, 28}, {2, 6, 14, 14}, {2, 16, 10, 10},
                                  {2, 16, 10, 10}, {2, 16, 5, 5}, {2, 400, 1, 1}, {2, 120, 1, 1},
                                  {2, 120, 1, 1}, {2, 84, 1, 1}, {2, 84, 1, 1}, {2, 10, 1, 1}};
  EXPECT_EQ(layer_shapes(m, 2), expect);
  m.init(1);
  Context ctx;
  std::vector<float> x = random_vector(2 * 28 * 28, 2, 0.0, 1.0);
  EXPECT_EQ(m.forward(ctx, x.data(), 2, true).shape, (Shape{2, 10, 1, 1}));
}

TEST(Model, UnknownArchitectureIsAUserError) {
  EXPECT_THROW(Model("resnet", Backend::kCpu, kMnist, 10, 1), UserError);
  EXPECT_EQ(model_names(), (std::vector<std::string>{"seed", "lenet5"}));
}

TEST(Model, InitDeterministicPerSeedAndDiffersAcrossSeeds) {
  for (const char* arch : {"seed", "lenet5"}) {
    Model a(arch, Backend::kCpu, kMnist, 10, 1), b(arch, Backend::kCpu, kMnist, 10, 1),
        c(arch, Backend::kCpu, kMnist, 10, 1);
    a.init(42);
    b.init(42);
    c.init(43);
    ASSERT_EQ(a.arena().param_count(), b.arena().param_count());
    EXPECT_EQ(std::memcmp(a.arena().params(), b.arena().params(),
                          a.arena().param_count() * sizeof(float)),
              0)
        << arch << ": same seed, different weights";
    for (const auto& p : a.arena().infos()) {
      if (p.shape.size() < 2) continue;  // weights only
      size_t same = 0;
      for (size_t i = 0; i < p.count; ++i)
        same += a.arena().params()[p.offset + i] == c.arena().params()[p.offset + i];
      EXPECT_LT(same, p.count / 10 + 1) << arch << " " << p.name << ": seeds 42 and 43 agree";
    }
  }
}

TEST(Model, GlorotLimitsAndZeroBiases) {
  for (const char* arch : {"seed", "lenet5"}) {
    Model m(arch, Backend::kCpu, kMnist, 10, 1);
    m.init(7);
    for (const auto& p : m.arena().infos()) {
      const float* v = (p.trainable ? m.arena().params() : m.arena().state()) + p.offset;
      const std::string& n = p.name;
      auto has = [&](const char* part) { return n.find(part) != std::string::npos; };
      if (has("running_mean") || has("/bias")) {  // biases (conv, dense, BN β): zero
        for (size_t i = 0; i < p.count; ++i) ASSERT_EQ(v[i], 0.0f) << arch << " " << n << "[" << i << "]";
        continue;
      }
      if (has("running_var") || n.rfind("bn", 0) == 0) {  // BN γ and running variance: one
        for (size_t i = 0; i < p.count; ++i) ASSERT_EQ(v[i], 1.0f) << arch << " " << n << "[" << i << "]";
        continue;
      }
      // Kernels: (O, I, K, K) → fan_in I·K·K, fan_out O·K·K; dense (out, in).
      ASSERT_GE(p.shape.size(), 2u) << n;
      const int rf = p.shape.size() == 4 ? p.shape[2] * p.shape[3] : 1;
      const double fan_in = p.shape[1] * rf, fan_out = p.shape[0] * rf;
      const double limit = std::sqrt(6.0 / (fan_in + fan_out));
      double mx = 0, sum = 0, sum2 = 0;
      for (size_t i = 0; i < p.count; ++i) {
        mx = std::max(mx, std::fabs(static_cast<double>(v[i])));
        sum += v[i];
        sum2 += static_cast<double>(v[i]) * v[i];
      }
      const double cnt = static_cast<double>(p.count);
      EXPECT_LE(mx, limit) << arch << " " << n;
      EXPECT_GE(mx, 0.95 * limit) << arch << " " << n << ": U(−limit, limit) should reach near it";
      EXPECT_NEAR(sum / cnt, 0.0, 4.0 * limit / std::sqrt(3.0 * cnt)) << arch << " " << n;
      // Variance of U(−l, l) is l²/3.
      EXPECT_NEAR(sum2 / cnt, limit * limit / 3.0, 0.25 * limit * limit / 3.0) << arch << " " << n;
    }
  }
}

TEST(Model, BackwardReportsGradientsLastLayerFirst) {
  Model m("lenet5", Backend::kCpu, kMnist, 10, 2);
  m.init(3);
  Context ctx;
  std::vector<float> x = random_vector(2 * 28 * 28, 3, 0.0, 1.0), dl = random_vector(20, 4);
  m.forward(ctx, x.data(), 2, true);
  std::vector<int> order;
  m.backward(ctx, dl.data(), [&](int i) { order.push_back(i); });
  std::vector<int> expect;
  for (size_t i = m.num_layers(); i-- > 0;)
    if (m.grad_range(i).second > m.grad_range(i).first) expect.push_back(static_cast<int>(i));
  EXPECT_EQ(order, expect);
  EXPECT_EQ(order.size(), 5u);  // conv1, conv2, dense1..3
  // The ranges tile the trainable part of the arena without overlap.
  size_t covered = 0;
  for (int i : order) covered += m.grad_range(i).second - m.grad_range(i).first;
  EXPECT_GE(covered, m.arena().trainable_scalars());
  EXPECT_LE(covered, m.arena().param_count());
}

// Evaluation mode is per sample: a sample's logits do not depend on the rest of the batch
// (running statistics), and a moved model keeps working.
TEST(ModelSeed, EvalIsPerSampleAndSurvivesAMove) {
  Model built("seed", Backend::kCpu, kMnist, 10, 3);
  built.init(5);
  Model m = std::move(built);
  Context ctx;
  std::vector<float> x = random_vector(3 * 28 * 28, 6, 0.0, 1.0);
  const Tensor& all = m.forward(ctx, x.data(), 3, false);
  const std::vector<double> batch_logits = to_double(all.data, all.size());
  for (int i = 0; i < 3; ++i) {
    const Tensor& one = m.forward(ctx, x.data() + i * 28 * 28, 1, false);
    const std::vector<double> expect(batch_logits.begin() + i * 10, batch_logits.begin() + i * 10 + 10);
    EXPECT_TRUE(all_close("logits of sample " + std::to_string(i), one.data, expect, 1e-5, 1e-5));
  }
  // Training mode runs and backward fills every trainable gradient of the moved model.
  m.forward(ctx, x.data(), 3, true);
  std::vector<float> dl = random_vector(30, 7);
  std::fill_n(m.arena().grads(), m.arena().param_count(), NAN);
  m.backward(ctx, dl.data());
  for (const auto& p : m.arena().infos()) {
    if (!p.trainable) continue;
    for (size_t i = 0; i < p.count; ++i)
      ASSERT_TRUE(std::isfinite(m.arena().grads()[p.offset + i])) << p.name << "[" << i << "]";
  }
}

// The CPU fusion of BatchNorm → ReLU → max-pool (layers/fusion.h) computes what the three
// layers compute one after the other, bit for bit: logits in training and evaluation, every
// gradient, the running statistics, and the order in which gradients are reported.
TEST(ModelSeed, FusedBatchNormReluPoolIsBitIdenticalToTheLayers) {
  const int n = 5;
  Model fused("seed", Backend::kCpu, kMnist, 10, n), plain("seed", Backend::kCpu, kMnist, 10, n);
  fused.set_fusion(true);
  plain.set_fusion(false);
  EXPECT_TRUE(fused.fused_at(1) && fused.fused_at(5));  // bn1 → relu1 → pool1, bn2 → relu2 → pool2
  EXPECT_FALSE(fused.fused_at(0) || plain.fused_at(1));
  fused.init(11);
  plain.init(11);
  Context ctx;
  const std::vector<float> x = random_vector(n * 28 * 28, 12, 0.0, 1.0), dl = random_vector(n * 10, 13);
  for (int step = 0; step < 2; ++step) {  // the second step sees updated running statistics
    const Tensor& a = fused.forward(ctx, x.data(), n, true);
    std::vector<float> la(a.data, a.data + a.size());
    const Tensor& b = plain.forward(ctx, x.data(), n, true);
    ASSERT_EQ(std::memcmp(la.data(), b.data, la.size() * sizeof(float)), 0) << "training logits, step " << step;
    std::vector<int> order_a, order_b;
    fused.backward(ctx, dl.data(), [&](int i) { order_a.push_back(i); });
    plain.backward(ctx, dl.data(), [&](int i) { order_b.push_back(i); });
    EXPECT_EQ(order_a, order_b);
    ASSERT_EQ(std::memcmp(fused.arena().grads(), plain.arena().grads(), fused.arena().param_count() * sizeof(float)), 0)
        << "gradients, step " << step;
    ASSERT_EQ(std::memcmp(fused.arena().state(), plain.arena().state(), fused.arena().state_count() * sizeof(float)), 0)
        << "running statistics, step " << step;
  }
  const Tensor& ea = fused.forward(ctx, x.data(), n, false);
  std::vector<float> la(ea.data, ea.data + ea.size());
  const Tensor& eb = plain.forward(ctx, x.data(), n, false);
  EXPECT_EQ(std::memcmp(la.data(), eb.data, la.size() * sizeof(float)), 0) << "evaluation logits";
  // LeNet-5 has no BatchNorm: nothing to fuse.
  Model lenet("lenet5", Backend::kCpu, kMnist, 10, 2);
  for (size_t i = 0; i < lenet.num_layers(); ++i) EXPECT_FALSE(lenet.fused_at(i));
}

// One rank updates each layer's range as soon as its backward returns (train/trainer.cpp):
// three steps of that equal three whole-arena Adam steps after backward, bit for bit, and
// the alignment padding between the layers' ranges stays zero.
TEST(ModelSeed, AdamPerLayerDuringBackwardEqualsTheWholeStep) {
  const int n = 6;
  Model a("seed", Backend::kCpu, kMnist, 10, n), b("seed", Backend::kCpu, kMnist, 10, n);
  a.init(21);
  b.init(21);
  const size_t count = a.arena().param_count();
  Adam whole(AdamConfig{}, count), layered(AdamConfig{}, count);
  Context ctx;
  for (int step = 0; step < 3; ++step) {
    const std::vector<float> x = random_vector(n * 28 * 28, 30 + step, 0.0, 1.0),
                             dl = random_vector(n * 10, 40 + step);
    a.forward(ctx, x.data(), n, true);
    a.backward(ctx, dl.data());
    whole.step(a.arena().params(), a.arena().grads());
    b.forward(ctx, x.data(), n, true);
    layered.begin_step();
    b.backward(ctx, dl.data(), [&](int layer) {
      const auto r = b.grad_range(static_cast<size_t>(layer));
      layered.update(b.arena().params(), b.arena().grads(), r.first, r.second);
    });
    ASSERT_EQ(std::memcmp(a.arena().params(), b.arena().params(), count * sizeof(float)), 0) << "step " << step;
    ASSERT_EQ(std::memcmp(whole.m(), layered.m(), count * sizeof(float)), 0) << "step " << step;
    ASSERT_EQ(std::memcmp(whole.v(), layered.v(), count * sizeof(float)), 0) << "step " << step;
  }
  EXPECT_EQ(layered.steps(), 3);
  EXPECT_GT(std::abs(a.arena().params()[a.grad_range(0).first]), 0.0f);
}

// The flat arena: 16-float (64-byte) aligned views, padding excluded from the scalar count.
TEST(ParamArena, AlignedViewsAndCounts) {
  ParamArena a;
  const int w = a.declare("l/weight", {3, 5}, true);
  const int r = a.declare("l/running_mean", {3}, false);
  const int b = a.declare("l/bias", {3}, true);
  a.finalize();
  EXPECT_EQ(a.info(w).offset, 0u);
  EXPECT_EQ(a.info(b).offset, 16u);
  EXPECT_EQ(a.info(r).offset, 0u);
  EXPECT_EQ(a.param_count(), 32u);
  EXPECT_EQ(a.trainable_scalars(), 18u);
  EXPECT_EQ(a.state_count(), 16u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.param(b)) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.grad(b)) % 64, 0u);
  EXPECT_EQ(a.grad(b) - a.grads(), a.param(b) - a.params());  // identical offsets
  EXPECT_EQ(a.param(r), a.state());
  for (size_t i = 0; i < a.param_count(); ++i) ASSERT_EQ(a.params()[i], 0.0f);
}

// The whole seed net in training mode (batch statistics), batch of 4, mean softmax
// cross-entropy on random labels: ~300 random parameter-gradient coordinates (up to 40 of each
// tensor) against finite differences of the full loss.
TEST(ModelSeed, WholeNetworkGradientCheck) {
  const int n = 4;
  Model m("seed", Backend::kCpu, kMnist, 10, n);
  m.init(2024);
  Context ctx;
  std::vector<float> x = random_vector(n * 28 * 28, 5, 0.0, 1.0);
  const std::vector<uint8_t> labels{3, 7, 0, 9};
  auto xent = make_softmax_xent(Backend::kCpu);
  const float scale = 1.0f;  // Σ over the samples: gradients 4× those of the mean
  ParamArena& arena = m.arena();
  const std::vector<float> state(arena.state(), arena.state() + arena.state_count());

  const Tensor& logits = m.forward(ctx, x.data(), n, true);
  std::vector<float> dlogits(n * 10);
  xent->run(ctx, logits, labels.data(), scale, dlogits.data(), nullptr);
  std::fill_n(arena.grads(), arena.param_count(), 1234.5f);
  m.backward(ctx, dlogits.data());

  std::vector<GradTarget> targets;
  for (size_t id = 0; id < arena.infos().size(); ++id) {
    const ParamInfo& p = arena.info(static_cast<int>(id));
    if (!p.trainable) continue;
    const float* g = arena.grad(static_cast<int>(id));
    targets.push_back(GradTarget{"d" + p.name, arena.param(static_cast<int>(id)),
                                 std::vector<double>(g, g + p.count), p.shape});
  }
  auto loss = [&]() {
    const Tensor& lg = m.forward(ctx, x.data(), n, true);
    std::copy(state.begin(), state.end(), arena.state());
    return xent->run(ctx, lg, labels.data(), scale, nullptr, nullptr).loss_sum * scale;
  };
  GradCheckOptions o;
  // Each conv1/bn1 coordinate moves thousands of pre-ReLU values, so the loss has many tiny
  // kinks along it: a small step keeps their effect below rtol; float noise sets atol.
  o.step = 5e-4;
  o.atol = 3e-3;
  o.rtol = 3e-2;
  o.max_coords_per_tensor = 40;
  o.seed = 11;
  o.max_skipped_fraction = 0.1;  // kinks: ReLUs and max-pool windows crossed by the step
  const GradCheckReport r = finite_difference_check(loss, targets, o);
  EXPECT_TRUE(r.result());
  EXPECT_GT(r.checked, 300u);
  EXPECT_GT(r.significant, r.checked / 3) << r.summary();
  std::printf("%s\n", r.summary().c_str());
}

}  // namespace
}  // namespace mnist_dist::test
