// --augment shift:N (train/augment.h): the shift against a numpy reference (augment_golden.inc,
// written by augment_golden.py), the draws (uniform over the (2N+1)² offsets, a function of seed,
// epoch and sample only), the prefetcher (the same images for the same global samples at any
// world size and resume point; untouched without --augment) and the trainer's evaluation (never
// shifted).
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "comm/communicator.h"
#include "layers/softmax_xent.h"
#include "model/model.h"
#include "shards_fixture.h"
#include "train/augment.h"
#include "train/evaluator.h"
#include "train/prefetcher.h"
#include "train/split_loader.h"
#include "train/trainer.h"

namespace mnist_dist::data {
namespace {

// ---- the shift itself -----------------------------------------------------------------------

struct Golden {
  int rows, cols, dx, dy;
  std::vector<int> src, expected;
};

const std::vector<Golden>& golden() {
  static const std::vector<Golden> g = {
#include "augment_golden.inc"
  };
  return g;
}

TEST(ShiftImage, MatchesTheNumpyReference) {
  ASSERT_GE(golden().size(), 20u);
  for (const Golden& c : golden()) {
    const size_t px = static_cast<size_t>(c.rows) * c.cols;
    ASSERT_EQ(c.src.size(), px);
    ASSERT_EQ(c.expected.size(), px);
    const std::vector<uint8_t> src(c.src.begin(), c.src.end());
    std::vector<uint8_t> out(px, 77);  // stale bytes: the fill must overwrite them
    shift_image(src.data(), out.data(), c.rows, c.cols, Shift{c.dx, c.dy});
    for (size_t i = 0; i < px; ++i)
      ASSERT_EQ(out[i], c.expected[i]) << c.rows << "x" << c.cols << " shifted by (" << c.dx << ", " << c.dy
                                       << "): pixel (y " << i / c.cols << ", x " << i % c.cols << ")";
  }
}

TEST(ShiftImage, PositiveDxMovesRightPositiveDyMovesDown) {
  std::vector<uint8_t> src(5 * 6, 0), out(5 * 6);
  src[1 * 6 + 2] = 200;  // (y 1, x 2)
  shift_image(src.data(), out.data(), 5, 6, Shift{3, 2});
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i], i == 3 * 6 + 5 ? 200 : 0) << i;
}

// ---- the flag's values ---------------------------------------------------------------------

TEST(ParseAugment, AcceptsNoneAndShiftOneToEight) {
  EXPECT_EQ(parse_augment("none"), 0);
  for (int n = 1; n <= 8; ++n) EXPECT_EQ(parse_augment("shift:" + std::to_string(n)), n);
  for (const char* bad : {"", "None", "shift", "shift:", "shift:0", "shift:9", "shift:-1", "shift:+2", "shift:2x",
                          "shift:02x", "shift: 2", "shift:100", "flip", "shift:1.5", "shift:99999999999"})
    EXPECT_EQ(parse_augment(bad), -1) << bad;
  EXPECT_EQ(augment_name(0), "none");
  EXPECT_EQ(augment_name(4), "shift:4");
}

// ---- the draws -----------------------------------------------------------------------------

// Chi-square of the (dx, dy) counts over `samples` draws against the uniform distribution on the
// (2N+1)² offsets; every draw must lie in [-N, N]².
double chi_square(int n, int epoch, uint64_t seed, uint64_t samples) {
  const int side = 2 * n + 1;
  std::vector<double> count(static_cast<size_t>(side * side), 0.0);
  for (uint64_t s = 0; s < samples; ++s) {
    const Shift d = draw_shift(seed, epoch, s, n);
    EXPECT_TRUE(d.dx >= -n && d.dx <= n && d.dy >= -n && d.dy <= n) << d.dx << ", " << d.dy;
    if (d.dx < -n || d.dx > n || d.dy < -n || d.dy > n) return 1e300;
    count[static_cast<size_t>((d.dy + n) * side + d.dx + n)] += 1.0;
  }
  const double expected = static_cast<double>(samples) / count.size();
  double chi2 = 0.0;
  for (double c : count) chi2 += (c - expected) * (c - expected) / expected;
  return chi2;
}

TEST(DrawShift, UniformOverAllOffsets) {
  // df = (2N+1)² − 1; mean df, standard deviation sqrt(2 df). The bound is df + 6 sd: a uniform
  // generator passes (p < 1e-8 to fail), a missing or doubled offset or a skew does not.
  for (const int n : {1, 3, 8}) {
    const double df = (2.0 * n + 1) * (2.0 * n + 1) - 1.0;
    const double chi2 = chi_square(n, 3, 42, 100000);
    EXPECT_LT(chi2, df + 6.0 * std::sqrt(2.0 * df)) << "N " << n << ": chi-square " << chi2 << ", df " << df;
  }
}

// How often two draw functions agree over many samples (independent draws: 1/(2N+1)²).
template <typename F, typename G>
double agreement(F a, G b, int samples = 20000) {
  int same = 0;
  for (int s = 0; s < samples; ++s) {
    const Shift x = a(static_cast<uint64_t>(s)), y = b(static_cast<uint64_t>(s));
    same += x.dx == y.dx && x.dy == y.dy;
  }
  return static_cast<double>(same) / samples;
}

TEST(DrawShift, AFunctionOfSeedEpochAndSampleOnly) {
  const int n = 4;  // independent draws agree with probability 1/81 ≈ 1.2 %
  EXPECT_EQ(agreement([](uint64_t s) { return draw_shift(9, 2, s, n); }, [](uint64_t s) { return draw_shift(9, 2, s, n); }), 1.0);
  EXPECT_LT(agreement([](uint64_t s) { return draw_shift(9, 2, s, n); }, [](uint64_t s) { return draw_shift(9, 3, s, n); }), 0.03)
      << "another epoch";
  EXPECT_LT(agreement([](uint64_t s) { return draw_shift(9, 2, s, n); }, [](uint64_t s) { return draw_shift(9, 2, s + 1, n); }), 0.03)
      << "the neighbouring sample";
  EXPECT_LT(agreement([](uint64_t s) { return draw_shift(9, 2, s, n); }, [](uint64_t s) { return draw_shift(10, 2, s, n); }), 0.03)
      << "another seed";
  EXPECT_EQ(draw_shift(9, 2, 5, 0).dx, 0);
  EXPECT_EQ(draw_shift(9, 2, 5, 0).dy, 0);
}

// ---- the prefetcher --------------------------------------------------------------------------

class PrefetchAugment : public test::PreparedSet {
 protected:
  void SetUp() override { prepare(700, 100, 28, 28, 3); }

  // Every image of steps [first, last) of `epoch` as rank `rank` of `world` receives them, keyed by
  // (step, position in the global batch).
  std::map<std::pair<size_t, size_t>, std::vector<float>> images(int epoch, int rank, int world, Augment aug,
                                                                 size_t first = 0, size_t last = kSteps) {
    ShardReader reader = ShardReader::open(opts_.out_dir, "train");
    EpochSampler sampler(reader.size(), kBatch, kSeed);
    sampler.set_epoch(epoch);
    Prefetcher p(reader, sampler, rank, world, first, last, aug);
    std::map<std::pair<size_t, size_t>, std::vector<float>> out;
    while (const Batch* b = p.next()) {
      const size_t lo = EpochSampler::slice_bounds(b->global_n, rank, world).first;
      for (int i = 0; i < b->n; ++i)
        out[{b->step, lo + static_cast<size_t>(i)}].assign(b->images.begin() + i * px(), b->images.begin() + (i + 1) * px());
    }
    return out;
  }

  // The same images computed here: read sample by sample, shifted by its own draw, / 255.
  std::map<std::pair<size_t, size_t>, std::vector<float>> expected(int epoch, Augment aug) {
    ShardReader reader = ShardReader::open(opts_.out_dir, "train");
    EpochSampler sampler(reader.size(), kBatch, kSeed);
    sampler.set_epoch(epoch);
    std::map<std::pair<size_t, size_t>, std::vector<float>> out;
    std::vector<uint8_t> raw(px()), moved(px());
    for (size_t step = 0; step < kSteps; ++step) {
      const auto [idx, n] = sampler.slice(step, 0, 1);
      for (size_t i = 0; i < n; ++i) {
        reader.read_indices(idx + i, 1, raw.data(), nullptr);
        const Shift d = draw_shift(aug.seed, epoch, idx[i], aug.max_shift);
        shift_image(raw.data(), moved.data(), 28, 28, d);
        std::vector<float>& v = out[{step, i}];
        for (uint8_t b : moved) v.push_back(b * (1.0f / 255.0f));
      }
    }
    return out;
  }

  static constexpr size_t kBatch = 50, kSteps = 6;
  static constexpr uint64_t kSeed = 5;
};

TEST_F(PrefetchAugment, ShiftsEachSampleByItsOwnDraw) {
  const Augment aug{3, kSeed};
  const auto got = images(1, 0, 1, aug);
  const auto want = expected(1, aug);
  ASSERT_EQ(got.size(), kBatch * kSteps);
  EXPECT_TRUE(got == want) << "the prefetcher's images are not the samples shifted by draw_shift(seed, epoch, index)";
  // And the shift did something (random-byte images: a non-zero shift changes them).
  const auto plain = expected(1, Augment{0, kSeed});
  size_t moved = 0;
  for (const auto& [key, v] : got) moved += v != plain.at(key);
  EXPECT_GT(moved, got.size() * 8 / 10);
}

TEST_F(PrefetchAugment, TheSameImagesAtEveryWorldSizeAndResumePoint) {
  const Augment aug{4, kSeed};
  const auto one = images(2, 0, 1, aug);
  for (const int world : {2, 3}) {
    std::map<std::pair<size_t, size_t>, std::vector<float>> all;
    for (int r = 0; r < world; ++r) all.merge(images(2, r, world, aug));
    EXPECT_TRUE(all == one) << "world " << world << " differs from world 1";
  }
  // Resumed at step 4 (on 2 ranks): steps 4 and 5 as in the uninterrupted run.
  auto resumed = images(2, 1, 2, aug, 4);
  resumed.merge(images(2, 0, 2, aug, 4));
  ASSERT_EQ(resumed.size(), 2 * kBatch);
  for (const auto& [key, v] : resumed) EXPECT_TRUE(v == one.at(key)) << "step " << key.first;
}

TEST_F(PrefetchAugment, ImagesDependOnTheEpoch) {
  // The same sample in two epochs: keyed by sample index this time.
  auto by_sample = [&](int epoch) {
    ShardReader reader = ShardReader::open(opts_.out_dir, "train");
    EpochSampler sampler(reader.size(), kBatch, kSeed);
    sampler.set_epoch(epoch);
    Prefetcher p(reader, sampler, 0, 1, 0, kSteps, Augment{2, kSeed});
    std::map<uint32_t, std::vector<float>> out;
    while (const Batch* b = p.next()) {
      const uint32_t* idx = sampler.slice(b->step, 0, 1).first;
      for (int i = 0; i < b->n; ++i) out[idx[i]].assign(b->images.begin() + i * px(), b->images.begin() + (i + 1) * px());
    }
    return out;
  };
  const auto e0 = by_sample(0), e1 = by_sample(1);
  size_t common = 0, same = 0;
  for (const auto& [s, v] : e0)
    if (auto it = e1.find(s); it != e1.end()) ++common, same += it->second == v;
  ASSERT_GT(common, 50u);
  EXPECT_LT(same, common / 5) << same << " of " << common << " samples moved alike in epochs 0 and 1 (1/25 expected)";
}

TEST_F(PrefetchAugment, NoneLeavesImagesUntouched) {
  const auto got = images(0, 1, 2, Augment{0, kSeed});
  auto want = expected(0, Augment{0, kSeed});
  ASSERT_EQ(got.size(), kSteps * kBatch / 2);
  for (const auto& [key, v] : got) EXPECT_TRUE(v == want.at(key)) << "step " << key.first << " sample " << key.second;
}

// ---- evaluation is never shifted ---------------------------------------------------------------

TEST_F(PrefetchAugment, TrainerEvaluatesUnshiftedImages) {
  TrainConfig c;
  c.data_dir = opts_.out_dir;
  c.model = "lenet5";
  c.epochs = 1;
  c.max_steps = 3;
  c.batch_size = 32;
  c.seed = kSeed;
  c.augment_shift = 8;
  c.timeout_s = 0;
  auto comm = make_single_process_communicator();
  Logger quiet(1);
  Trainer trainer(c, *comm, quiet);
  const TrainResult r = trainer.run();
  ASSERT_EQ(r.epochs.size(), 1u);
  // The trained model on the stored validation and test images, as they are.
  Context ctx;
  ctx.threads = omp_get_max_threads();
  auto loss = make_softmax_xent(Backend::kCpu);
  for (const char* split : {"val", "test"}) {
    const EvalResult e = evaluate(ctx, trainer.model(), *loss, load_split_data(opts_.out_dir, split).data);
    const double reported = std::string(split) == "val" ? r.epochs[0].val_loss : r.test.loss;
    EXPECT_NEAR(reported, e.loss, 1e-6 * std::abs(e.loss)) << split << ": evaluated on other images than stored";
  }
}

}  // namespace
}  // namespace mnist_dist::data
