// IDX reader tests: exact round trips of raw and gzip files, and one UserError (naming the
// file and the problem) for each kind of malformed input.
#include <gtest/gtest.h>

#include "data_pipeline/idx_reader.h"
#include "data_test_util.h"

namespace mnist_dist::data {
namespace {

using test::idx_bytes;
using test::random_bytes;
using test::TempDir;
using test::ThrowsUserError;

TEST(IdxReader, ReadsRawAndGzipExactly) {
  TempDir dir;
  const std::vector<uint8_t> data = random_bytes(5 * 7 * 3, 1);
  for (const bool gz : {false, true}) {
    const std::string path = dir / (gz ? "a.idx.gz" : "a.idx");
    if (gz) {
      test::write_gzip(path, idx_bytes({5, 7, 3}, data));
    } else {
      test::write_file(path, idx_bytes({5, 7, 3}, data));
    }
    const IdxArray a = read_idx(path);
    EXPECT_EQ(a.dims, (std::vector<uint32_t>{5, 7, 3})) << path;
    EXPECT_EQ(a.data, data) << path;
  }
  // 1-D and 4-D arrays.
  test::write_file(dir / "one", idx_bytes({4}, {9, 8, 7, 6}));
  EXPECT_EQ(read_idx(dir / "one").data, (std::vector<uint8_t>{9, 8, 7, 6}));
  const std::vector<uint8_t> d4 = random_bytes(2 * 3 * 2 * 2, 2);
  test::write_gzip(dir / "four.gz", idx_bytes({2, 3, 2, 2}, d4));
  EXPECT_EQ(read_idx(dir / "four.gz").dims.size(), 4u);
  EXPECT_EQ(read_idx(dir / "four.gz").data, d4);
}

TEST(IdxReader, LoadsAPairAndFindsFiles) {
  TempDir dir;
  const test::SyntheticSet s = test::write_synthetic(dir.path(), 20, 5, 4, 6, /*gzip=*/true);
  const std::string images = find_idx_file(dir.path(), "train-images-idx3-ubyte");
  EXPECT_EQ(images, dir / "train-images-idx3-ubyte.gz");
  const IdxDataset d = load_idx_pair(images, find_idx_file(dir.path(), "train-labels-idx1-ubyte"));
  EXPECT_EQ(d.count, 20u);
  EXPECT_EQ(d.rows, 4u);
  EXPECT_EQ(d.cols, 6u);
  EXPECT_EQ(d.images, s.train_images);
  EXPECT_EQ(d.labels, s.train_labels);
  // The uncompressed file wins when both exist.
  test::write_file(dir / "train-images-idx3-ubyte", idx_bytes({20, 4, 6}, s.train_images));
  EXPECT_EQ(find_idx_file(dir.path(), "train-images-idx3-ubyte"), dir / "train-images-idx3-ubyte");
  EXPECT_TRUE(ThrowsUserError([&] { find_idx_file(dir.path(), "nothing-idx1-ubyte"); },
                              {dir.path(), "nothing-idx1-ubyte.gz", "neither"}));
  EXPECT_TRUE(ThrowsUserError([&] { find_idx_file(dir / "nope", "x"); },
                              {dir / "nope", "no such directory"}));
}

// Writes `bytes` (raw) to dir/name and expects read_idx to fail with `phrase`.
void expect_bad_raw(const TempDir& dir, const std::string& name, const std::vector<uint8_t>& bytes,
                    const std::string& phrase) {
  const std::string path = dir / name;
  test::write_file(path, bytes);
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(path); }, {path, phrase})) << name;
}

TEST(IdxReader, RejectsBadMagic) {
  TempDir dir;
  expect_bad_raw(dir, "magic", {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5}, "bad magic");
  expect_bad_raw(dir, "text", {'h', 'e', 'l', 'l', 'o', '\n'}, "bad magic");
}

TEST(IdxReader, RejectsNonByteElementType) {
  TempDir dir;
  expect_bad_raw(dir, "float", idx_bytes({1}, {0, 0, 0, 0}, 0x0D), "element type 0x0D (float32)");
  expect_bad_raw(dir, "int32", idx_bytes({1}, {0, 0, 0, 0}, 0x0C), "only unsigned-byte");
}

TEST(IdxReader, RejectsBadDimensionCount) {
  TempDir dir;
  expect_bad_raw(dir, "zero_dims", {0, 0, 8, 0}, "declares 0 dimensions");
  expect_bad_raw(dir, "five_dims", idx_bytes({1, 1, 1, 1, 1}, {7}), "declares 5 dimensions");
}

TEST(IdxReader, RejectsZeroDimension) {
  TempDir dir;
  expect_bad_raw(dir, "zero", idx_bytes({3, 0, 2}, {}), "dimension 1 of the IDX header is 0");
}

TEST(IdxReader, RejectsTruncatedFiles) {
  TempDir dir;
  std::vector<uint8_t> bytes = idx_bytes({10, 2, 2}, random_bytes(40, 3));
  bytes.resize(bytes.size() - 5);
  expect_bad_raw(dir, "short_data", bytes, "is truncated");
  expect_bad_raw(dir, "short_header", {0, 0, 8, 3, 0, 0, 0, 10, 0}, "is truncated");
  expect_bad_raw(dir, "short_magic", {0, 0}, "is truncated");
  const std::string gz = dir / "short.gz";
  test::write_gzip(gz, bytes);
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(gz); }, {gz, "is truncated", "gzip"}));
}

TEST(IdxReader, RejectsTrailingBytes) {
  TempDir dir;
  std::vector<uint8_t> bytes = idx_bytes({3}, {1, 2, 3});
  bytes.push_back(0xAA);
  bytes.push_back(0xBB);
  expect_bad_raw(dir, "trailing", bytes, "2 trailing bytes");
  const std::string gz = dir / "trailing.gz";
  test::write_gzip(gz, bytes);
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(gz); }, {gz, "trailing bytes"}));
}

TEST(IdxReader, RejectsEmptyAndMissingFiles) {
  TempDir dir;
  expect_bad_raw(dir, "empty", {}, "is empty");
  const std::string missing = dir / "missing-idx1-ubyte";
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(missing); }, {missing, "no such file"}));
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(dir.path()); }, {dir.path(), "is a directory"}));
}

TEST(IdxReader, RejectsHugeClaimedSizeWithoutAllocating) {
  TempDir dir;
  // 65536 x 65536 x 1 = 4 GiB claimed by a 20-byte file: rejected from the header alone.
  expect_bad_raw(dir, "huge", idx_bytes({65536, 65536, 1}, {1, 2, 3, 4}), "exceeds the limit");
  expect_bad_raw(dir, "overflow", idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}),
                 "exceeds the limit");
  // A gzip file whose header claims 1 GiB but holds a few bytes is truncated, not a 1 GiB buffer.
  const std::string gz = dir / "lying.gz";
  test::write_gzip(gz, idx_bytes({1024, 1024, 1024}, {1, 2, 3}));
  EXPECT_TRUE(ThrowsUserError([&] { read_idx(gz); }, {gz, "is truncated"}));
}

TEST(IdxReader, RejectsCorruptGzip) {
  TempDir dir;
  expect_bad_raw(dir, "garbage.gz", {0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7},
                 "corrupt gzip");
  // A valid gzip stream with its deflate data damaged.
  const std::string good = dir / "good.gz";
  test::write_gzip(good, idx_bytes({100}, random_bytes(100, 4)));
  std::vector<uint8_t> bytes = test::read_file(good);
  for (size_t i = 12; i + 8 < bytes.size(); i += 3) bytes[i] ^= 0x5A;
  expect_bad_raw(dir, "damaged.gz", bytes, "corrupt gzip");
  // A gzip stream cut off in the middle.
  bytes = test::read_file(good);
  bytes.resize(bytes.size() / 2);
  expect_bad_raw(dir, "cut.gz", bytes, "corrupt gzip");
}

TEST(IdxReader, PairChecksRanksAndCounts) {
  TempDir dir;
  const std::string images = dir / "images", labels = dir / "labels";
  test::write_file(images, idx_bytes({4, 2, 2}, random_bytes(16, 5)));
  test::write_file(labels, idx_bytes({3}, {1, 2, 3}));
  EXPECT_TRUE(ThrowsUserError([&] { load_idx_pair(images, labels); },
                              {images, labels, "4 images but", "3 labels"}));

  test::write_file(labels, idx_bytes({4, 1, 1}, {1, 2, 3, 4}));
  EXPECT_TRUE(ThrowsUserError([&] { load_idx_pair(images, labels); },
                              {labels, "3 dimensions; expected 1"}));

  test::write_file(images, idx_bytes({16}, random_bytes(16, 5)));
  test::write_file(labels, idx_bytes({16}, random_bytes(16, 6, 10)));
  EXPECT_TRUE(ThrowsUserError([&] { load_idx_pair(images, labels); },
                              {images, "1 dimensions; expected 3"}));
}

}  // namespace
}  // namespace mnist_dist::data
