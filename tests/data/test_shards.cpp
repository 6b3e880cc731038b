// Round trip IDX -> prepare_shards -> ShardReader on a small synthetic set, plus the ways a
// prepared data set can go wrong: re-runs, tampering, deleted shards, bad manifests.

#include "shards_fixture.h"

namespace fs = std::filesystem;

namespace mnist_dist::data {
namespace {

using test::PreparedSet;
using test::TempDir;
using test::ThrowsUserError;

TEST_F(PreparedSet, SummaryAndManifest) {
  EXPECT_EQ(summary_.train, 700u);
  EXPECT_EQ(summary_.val, 300u);
  EXPECT_EQ(summary_.test, 300u);
  const Manifest m = read_manifest(opts_.out_dir);
  EXPECT_EQ(m.created_by, "mnist_prepare");
  EXPECT_EQ(m.rows, 28u);
  EXPECT_EQ(m.num_classes, 10);
  EXPECT_EQ(m.split_seed, 1u);
  EXPECT_DOUBLE_EQ(m.val_fraction, 0.3);
  ASSERT_EQ(m.sources.size(), 4u);
  for (const SourceFile& s : m.sources) EXPECT_EQ(s.sha256, sha256_file(idx_ / s.name)) << s.name;
  const SplitEntry& train = m.splits.at("train");
  ASSERT_EQ(train.shards.size(), 3u);
  EXPECT_EQ(train.shards[0].file, "train-00000-of-00003.h5");
  EXPECT_EQ(train.shards[1].first_sample, 233u);  // [i*N/S, (i+1)*N/S)
  EXPECT_EQ(train.shards[2].count, 700u - 466u);
  for (const char* split : kSplitNames) {
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(fs::exists(shard(split, i))) << split << i;
  }
  // Nothing else (no staging leftovers) next to the output directory.
  EXPECT_EQ(std::distance(fs::directory_iterator(out_.path()), fs::directory_iterator{}), 1);
}

TEST_F(PreparedSet, ReadRangeRoundTrip) {
  for (const char* split : kSplitNames) {
    ShardReader r = ShardReader::open(opts_.out_dir, split);
    ASSERT_EQ(r.size(), order(split).size());
    EXPECT_EQ(r.rows(), 28u);
    EXPECT_EQ(r.cols(), 28u);
    EXPECT_EQ(r.num_classes(), 10);
    std::vector<uint32_t> all(r.size());
    std::iota(all.begin(), all.end(), 0u);
    std::vector<uint8_t> im(r.size() * px()), lb(r.size());
    r.read_range(0, r.size(), im.data(), lb.data());
    expect_samples(split, all, im, lb);
    // Odd-sized pieces that cross shard boundaries; labels only, images only.
    for (size_t begin = 0; begin < r.size(); begin += 37) {
      const size_t n = std::min<size_t>(37, r.size() - begin);
      std::vector<uint8_t> pim(n * px()), plb(n);
      r.read_range(begin, n, pim.data(), nullptr);
      r.read_range(begin, n, nullptr, plb.data());
      ASSERT_TRUE(std::equal(pim.begin(), pim.end(), im.begin() + begin * px()));
      ASSERT_TRUE(std::equal(plb.begin(), plb.end(), lb.begin() + begin));
    }
    EXPECT_THROW(r.read_range(r.size() - 1, 2, im.data(), lb.data()), std::out_of_range);
  }
}

TEST_F(PreparedSet, ReadIndicesRoundTrip) {
  for (const char* split : kSplitNames) {
    ShardReader r = ShardReader::open(opts_.out_dir, split);
    check_read_indices(r, 1);  // default cache
    check_read_indices(r, 2);  // warm cache
    r.set_cache_bytes(0);
    check_read_indices(r, 3);
    r.set_cache_bytes(2 * 233 * (px() + 1));  // room for two of the three shard-sized chunks
    check_read_indices(r, 4);
    const uint32_t bad = static_cast<uint32_t>(r.size());
    uint8_t im[28 * 28], lb[1];
    EXPECT_THROW(r.read_indices(&bad, 1, im, lb), std::out_of_range);
  }
  ShardReader moved = ShardReader::open(opts_.out_dir, "val");
  ShardReader r = std::move(moved);
  check_read_indices(r, 5);
}

TEST_F(PreparedSet, ShardFilesDescribeThemselves) {
  h5::Handle f = h5::open_file(shard("val", 1));
  const std::string where = shard("val", 1);
  EXPECT_EQ(h5::read_string_attr(f.get(), "split", where), "val");
  EXPECT_EQ(h5::read_int_attr(f.get(), "shard_index", where), 1);
  EXPECT_EQ(h5::read_int_attr(f.get(), "shard_count", where), 3);
  EXPECT_EQ(h5::read_uint_attr(f.get(), "first_sample", where), 100u);
  EXPECT_EQ(h5::read_uint_attr(f.get(), "count", where), 100u);
  EXPECT_EQ(h5::read_int_attr(f.get(), "format_version", where), 1);
  EXPECT_EQ(h5::read_int_attr(f.get(), "num_classes", where), 10);
  EXPECT_DOUBLE_EQ(h5::read_double_attr(f.get(), "val_fraction", where), 0.3);
  EXPECT_EQ(h5::read_uint_attr(f.get(), "split_seed", where), 1u);
  EXPECT_EQ(h5::read_string_attr(f.get(), "source_images", where), "train-images-idx3-ubyte");
  EXPECT_EQ(h5::read_string_attr(f.get(), "source_labels_sha256", where),
            sha256_file(idx_ / "train-labels-idx1-ubyte"));
  h5::Handle ds = h5::dataset(MD_H5(H5Dopen2(f.get(), "original_index", H5P_DEFAULT)));
  std::vector<uint32_t> orig(100);
  h5::read_rows(ds.get(), H5T_NATIVE_UINT32, 0, 100, orig.data());
  const std::vector<uint32_t> val = order("val");
  EXPECT_EQ(orig, std::vector<uint32_t>(val.begin() + 100, val.begin() + 200));
  h5::Handle images = h5::dataset(MD_H5(H5Dopen2(f.get(), "images", H5P_DEFAULT)));
  const h5::DatasetInfo info = h5::inspect(images.get());
  EXPECT_EQ(info.dims, (std::vector<hsize_t>{100, 28, 28}));
  EXPECT_EQ(info.chunk, (std::vector<hsize_t>{100, 28, 28}));
}

TEST_F(PreparedSet, H5dumpOpensEveryShard) {
  if (!fs::exists("/usr/bin/h5dump")) GTEST_SKIP() << "h5dump (hdf5-tools) is not installed";
  for (const char* split : kSplitNames) {
    for (int i = 0; i < 3; ++i) {
      const std::string cmd = "/usr/bin/h5dump -H '" + shard(split, i) + "' > /dev/null 2>&1";
      EXPECT_EQ(test::run_command(cmd), 0) << cmd;
    }
  }
}

TEST_F(PreparedSet, RerunNeedsOverwriteAndKeepsTheOldSet) {
  std::map<std::string, std::vector<uint8_t>> before;
  for (const auto& e : fs::directory_iterator(opts_.out_dir)) before[e.path()] = test::read_file(e.path());
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(opts_); },
                              {opts_.out_dir, "already holds a prepared data set", "--overwrite"}));
  for (const auto& [path, bytes] : before) EXPECT_EQ(test::read_file(path), bytes) << path;
  EXPECT_EQ(std::distance(fs::directory_iterator(out_.path()), fs::directory_iterator{}), 1);

  PrepareOptions again = opts_;
  again.overwrite = true;
  again.split_seed = 9;
  again.shards = 2;
  prepare_shards(again);
  EXPECT_EQ(read_manifest(opts_.out_dir).split_seed, 9u);
  EXPECT_FALSE(fs::exists(shard("train", 0)));  // the 3-shard files are gone
  EXPECT_TRUE(fs::exists(shard("train", 1, 2)));
  EXPECT_EQ(std::distance(fs::directory_iterator(out_.path()), fs::directory_iterator{}), 1);
  ShardReader::open(opts_.out_dir, "train").verify_checksums();
}

TEST_F(PreparedSet, RefusesADirectoryThatIsNotADataSet) {
  PrepareOptions o = opts_;
  o.out_dir = out_ / "other";
  fs::create_directories(o.out_dir);
  test::write_file(o.out_dir + "/notes.txt", {'h', 'i'});
  o.overwrite = true;
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {o.out_dir, "holds no manifest.json"}));
  EXPECT_TRUE(fs::exists(o.out_dir + "/notes.txt"));
  // An empty existing directory is fine.
  o.out_dir = out_ / "empty";
  fs::create_directories(o.out_dir);
  o.overwrite = false;
  prepare_shards(o);
  EXPECT_TRUE(fs::exists(o.out_dir + "/manifest.json"));
}

TEST_F(PreparedSet, IdenticalInputsGiveIdenticalFiles) {
  PrepareOptions o = opts_;
  o.out_dir = out_ / "again";
  prepare_shards(o);
  for (const auto& e : fs::directory_iterator(opts_.out_dir)) {
    EXPECT_EQ(test::read_file(e.path()), test::read_file(o.out_dir + "/" + e.path().filename().string()))
        << e.path().filename();
  }
}

TEST(PrepareEdges, SmallSplitsClampShardsAndZeroValidationWorks) {
  TempDir idx, out;
  test::write_synthetic(idx.path(), 10, 2, 5, 5);
  PrepareOptions o;
  o.idx_dir = idx.path();
  o.out_dir = out / "d";
  o.shards = 4;
  o.val_fraction = 0.0;
  const PrepareSummary s = prepare_shards(o);
  EXPECT_EQ(s.train, 10u);
  EXPECT_EQ(s.val, 0u);
  const Manifest m = read_manifest(o.out_dir);
  EXPECT_EQ(m.splits.at("test").shards.size(), 2u);  // 2 samples: 2 shards of 1
  EXPECT_EQ(m.splits.at("test").shards_requested, 4);
  EXPECT_TRUE(m.splits.at("val").shards.empty());
  EXPECT_TRUE(fs::exists(o.out_dir + "/test-00001-of-00002.h5"));
  ShardReader val = ShardReader::open(o.out_dir, "val");
  EXPECT_EQ(val.size(), 0u);
  val.read_indices(nullptr, 0, nullptr, nullptr);
  val.verify_checksums();
  ShardReader test = ShardReader::open(o.out_dir, "test");
  uint8_t im[50], lb[2];
  test.read_range(0, 2, im, lb);
}

TEST(PrepareEdges, ChunkedShardsWithGzipInput) {
  // 96x96 images: 113 images per chunk, so each 210-image train shard spans two chunks.
  TempDir in, out;
  const test::SyntheticSet src = test::write_synthetic(in.path(), 600, 50, 96, 96, /*gzip=*/true);
  PrepareOptions o;
  o.idx_dir = in.path();
  o.out_dir = out / "d";
  o.shards = 2;
  prepare_shards(o);
  ShardReader r = ShardReader::open(o.out_dir, "train");
  r.set_cache_bytes(2 * 113 * (96 * 96 + 1));  // two chunks: forces evictions
  const std::vector<uint32_t> train = split_train_val(600, 0.3, 1).train;
  Rng rng(3);
  std::vector<uint32_t> idx(500);
  for (auto& i : idx) i = static_cast<uint32_t>(rng.below(r.size()));
  const size_t px = 96 * 96;
  std::vector<uint8_t> im(idx.size() * px), lb(idx.size());
  r.read_indices(idx.data(), idx.size(), im.data(), lb.data());
  for (size_t i = 0; i < idx.size(); ++i) {
    const size_t s = train[idx[i]];
    ASSERT_EQ(lb[i], src.train_labels[s]);
    ASSERT_TRUE(std::equal(im.begin() + i * px, im.begin() + (i + 1) * px,
                           src.train_images.begin() + s * px));
  }
  r.verify_checksums();
}

TEST(PrepareEdges, RejectsBadInputsAndOptions) {
  TempDir idx, out;
  test::write_synthetic(idx.path(), 20, 10, 4, 4);
  PrepareOptions o;
  o.idx_dir = idx.path();
  o.out_dir = out / "d";
  o.shards = 0;
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {"--shards 0 is out of range"}));
  o.shards = 2;
  o.val_fraction = 1.0;
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {"--val-fraction", "out of range"}));
  o.val_fraction = 0.3;
  o.idx_dir = idx / "missing";
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {idx / "missing", "no such directory"}));
  o.idx_dir = idx.path();

  const std::string labels = idx / "t10k-labels-idx1-ubyte";
  test::write_file(labels, test::idx_bytes({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 10}));
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {labels, "sample 9 has label 10"}));
  test::write_file(labels, test::idx_bytes({10}, test::random_bytes(10, 1, 10)));

  const std::string images = idx / "t10k-images-idx3-ubyte";
  test::write_file(images, test::idx_bytes({10, 5, 4}, test::random_bytes(200, 1)));
  EXPECT_TRUE(ThrowsUserError([&] { prepare_shards(o); }, {images, "4x4", "5x4", "same image size"}));
  EXPECT_FALSE(fs::exists(o.out_dir));  // nothing half-written
  EXPECT_TRUE(fs::is_empty(out.path()));
}

}  // namespace
}  // namespace mnist_dist::data