// The fixture of the shard tests: a small synthetic IDX set prepared into 3 shards per split,
// with the source order of every split to compare what the reader returns against.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "data_pipeline/hdf5_util.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/sha256.h"
#include "data_pipeline/shard_reader.h"
#include "data_pipeline/shard_writer.h"
#include "data_pipeline/split.h"
#include "data_test_util.h"

namespace mnist_dist::data::test {

class PreparedSet : public ::testing::Test {
 protected:
  void prepare(size_t n_train, size_t n_test, uint32_t rows, uint32_t cols, int shards,
               bool gzip = false) {
    src_ = test::write_synthetic(idx_.path(), n_train, n_test, rows, cols, gzip);
    opts_.idx_dir = idx_.path();
    opts_.out_dir = out_ / "data";
    opts_.shards = shards;
    summary_ = prepare_shards(opts_);
  }
  void SetUp() override { prepare(1000, 300, 28, 28, 3); }

  // Source indices of a split's samples, in split order.
  std::vector<uint32_t> order(const std::string& split) const {
    if (split == "test") {
      std::vector<uint32_t> v(src_.test_count());
      std::iota(v.begin(), v.end(), 0u);
      return v;
    }
    const TrainValSplit s = split_train_val(src_.train_count(), opts_.val_fraction, opts_.split_seed);
    return split == "train" ? s.train : s.val;
  }
  const std::vector<uint8_t>& images(const std::string& split) const {
    return split == "test" ? src_.test_images : src_.train_images;
  }
  const std::vector<uint8_t>& labels(const std::string& split) const {
    return split == "test" ? src_.test_labels : src_.train_labels;
  }
  size_t px() const { return size_t{src_.rows} * src_.cols; }

  // Checks out[i] == source sample order[idx[i]] for images and labels.
  void expect_samples(const std::string& split, const std::vector<uint32_t>& idx,
                      const std::vector<uint8_t>& out_images, const std::vector<uint8_t>& out_labels) {
    const std::vector<uint32_t> ord = order(split);
    for (size_t i = 0; i < idx.size(); ++i) {
      const size_t s = ord[idx[i]];
      ASSERT_EQ(out_labels[i], labels(split)[s]) << split << " sample " << idx[i];
      ASSERT_TRUE(std::equal(out_images.begin() + i * px(), out_images.begin() + (i + 1) * px(),
                             images(split).begin() + s * px()))
          << split << " sample " << idx[i] << " (source " << s << ") differs";
    }
  }

  void check_read_indices(ShardReader& r, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint32_t> idx(2 * r.size() + 5);
    for (auto& i : idx) i = static_cast<uint32_t>(rng.below(r.size()));
    idx[1] = idx[0];  // certain duplicate
    std::vector<uint8_t> im(idx.size() * px()), lb(idx.size());
    r.read_indices(idx.data(), idx.size(), im.data(), lb.data());
    expect_samples(r.split(), idx, im, lb);
  }

  std::string shard(const std::string& split, int i, int n = 3) const {
    return opts_.out_dir + "/" + shard_file_name(split, i, n);
  }

  TempDir idx_, out_;
  test::SyntheticSet src_;
  PrepareOptions opts_;
  PrepareSummary summary_{};
};

}  // namespace mnist_dist::data::test
