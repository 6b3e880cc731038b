// The real Fashion-MNIST (Debian's dataset-fashion-mnist) through prepare_shards and the reader:
// 60,000 training images split 42,000 / 18,000, and a test set of 1,000 images per class.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <filesystem>

#include "data_pipeline/shard_reader.h"
#include "data_pipeline/shard_writer.h"
#include "data_test_util.h"

namespace mnist_dist::data {
namespace {

TEST(FashionMnist, PreparesTheRealDataSet) {
  const char* env = std::getenv("MD_FASHION_MNIST_DIR");
  const std::string dir = env != nullptr ? env : "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz") &&
      !std::filesystem::exists(dir + "/train-images-idx3-ubyte")) {
    GTEST_SKIP() << "Fashion-MNIST not found in " << dir
                 << " (apt-get install dataset-fashion-mnist, or set MD_FASHION_MNIST_DIR)";
  }
  test::TempDir out;
  PrepareOptions o;
  o.idx_dir = dir;
  o.out_dir = out / "fashion";
  const PrepareSummary s = prepare_shards(o);
  EXPECT_EQ(s.train, 42000u);
  EXPECT_EQ(s.val, 18000u);
  EXPECT_EQ(s.test, 10000u);
  EXPECT_EQ(s.shards, 4);

  ShardReader test = ShardReader::open(o.out_dir, "test");
  ASSERT_EQ(test.size(), 10000u);
  EXPECT_EQ(test.rows(), 28u);
  EXPECT_EQ(test.cols(), 28u);
  std::vector<uint8_t> labels(test.size());
  test.read_range(0, test.size(), nullptr, labels.data());
  std::array<int, 10> hist{};
  for (uint8_t l : labels) ++hist[l];
  for (int c = 0; c < 10; ++c) EXPECT_EQ(hist[c], 1000) << "class " << c;
  test.verify_checksums();
  EXPECT_EQ(ShardReader::open(o.out_dir, "train").size(), 42000u);
  EXPECT_EQ(ShardReader::open(o.out_dir, "val").size(), 18000u);
}

}  // namespace
}  // namespace mnist_dist::data
