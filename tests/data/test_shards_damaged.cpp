// A prepared data set gone wrong: tampered samples, missing or foreign shards, bad manifests.

#include "shards_fixture.h"

namespace fs = std::filesystem;

namespace mnist_dist::data {
namespace {

using test::PreparedSet;
using test::TempDir;
using test::ThrowsUserError;

// Rewrites sample `i` of `name` ("images" or "labels") in a shard through the HDF5 API.
void tamper(const std::string& path, const char* name, hsize_t i, size_t row_bytes,
            uint8_t (*change)(uint8_t)) {
  h5::Handle f = h5::open_file(path, /*writable=*/true);
  h5::Handle ds = h5::dataset(MD_H5(H5Dopen2(f.get(), name, H5P_DEFAULT)));
  std::vector<uint8_t> row(row_bytes);
  h5::read_rows(ds.get(), H5T_NATIVE_UINT8, i, 1, row.data());
  row[row_bytes / 2] = change(row[row_bytes / 2]);
  h5::write_rows(ds.get(), H5T_NATIVE_UINT8, i, 1, row.data());
}

// Records a shard file's new SHA-256 in manifest.json so the checks behind the file-level one
// (structure, labels, content checksums) are reached.
void refile(const std::string& shard_path) {
  const fs::path path(shard_path);
  const fs::path manifest = path.parent_path() / "manifest.json";
  nlohmann::json j;
  {
    std::ifstream in(manifest);
    in >> j;
  }
  for (auto& [name, split] : j["splits"].items())
    for (auto& e : split["shards"])
      if (e["file"] == path.filename().string()) e["file_sha256"] = sha256_file(shard_path);
  std::ofstream(manifest) << j.dump(2);
}

TEST_F(PreparedSet, VerifyChecksumsCatchesTampering) {
  ShardReader::open(opts_.out_dir, "test").verify_checksums();
  tamper(shard("test", 2), "images", 17, px(), [](uint8_t b) -> uint8_t { return b ^ 1; });
  // The file-level checksum catches any change before HDF5 parses the file...
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "test"); },
                              {shard("test", 2), "SHA-256 does not match"}));
  refile(shard("test", 2));  // ...and behind it, the content checksum
  ShardReader r = ShardReader::open(opts_.out_dir, "test");  // structure is still fine
  EXPECT_TRUE(ThrowsUserError([&] { r.verify_checksums(); }, {shard("test", 2), "checksum mismatch"}));

  tamper(shard("train", 0), "labels", 3, 1, [](uint8_t b) -> uint8_t { return (b + 1) % 10; });
  refile(shard("train", 0));
  ShardReader t = ShardReader::open(opts_.out_dir, "train");
  EXPECT_TRUE(ThrowsUserError([&] { t.verify_checksums(); }, {shard("train", 0), "checksum mismatch"}));
}

TEST_F(PreparedSet, OutOfRangeLabelIsCaughtWhenReading) {
  tamper(shard("val", 1), "labels", 5, 1, [](uint8_t) -> uint8_t { return 200; });
  refile(shard("val", 1));
  ShardReader r = ShardReader::open(opts_.out_dir, "val");
  std::vector<uint8_t> im(r.size() * px()), lb(r.size());
  const std::vector<std::string> phrases = {shard("val", 1), "sample 5", "index 105", "label 200"};
  EXPECT_TRUE(ThrowsUserError([&] { r.read_range(0, r.size(), im.data(), lb.data()); }, phrases));
  const uint32_t idx[2] = {3, 105};
  EXPECT_TRUE(ThrowsUserError([&] { r.read_indices(idx, 2, im.data(), lb.data()); }, phrases));
  r.read_range(0, 100, im.data(), lb.data());  // the other shards are fine
}

TEST_F(PreparedSet, OpenCatchesMissingAndForeignShards) {
  fs::remove(shard("train", 1));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {shard("train", 1), "is missing"}));
  ShardReader::open(opts_.out_dir, "val");  // other splits still open

  fs::rename(shard("val", 0), shard("train", 1));  // a shard of another split in its place
  refile(shard("train", 1));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {shard("train", 1), "attribute 'split' is 'val'"}));

  const std::string tmp = shard("test", 9);  // swap test shards 0 and 1
  fs::rename(shard("test", 0), tmp);
  fs::rename(shard("test", 1), shard("test", 0));
  fs::rename(tmp, shard("test", 1));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "test"); },
                              {shard("test", 0), "SHA-256 does not match"}));
  refile(shard("test", 0));
  refile(shard("test", 1));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "test"); },
                              {shard("test", 0), "attribute 'shard_index' is 1", "says 0"}));
  fs::rename(shard("test", 0), tmp);
  fs::rename(shard("test", 1), shard("test", 0));
  fs::rename(tmp, shard("test", 1));
  refile(shard("test", 0));
  refile(shard("test", 1));
  ShardReader::open(opts_.out_dir, "test");

  test::write_file(shard("test", 2), {'n', 'o', 't', ' ', 'h', 'd', 'f', '5'});
  refile(shard("test", 2));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "test"); },
                              {shard("test", 2), "is not a readable HDF5 file"}));
}

TEST_F(PreparedSet, OpenCatchesBadManifests) {
  const std::string manifest = opts_.out_dir + "/manifest.json";
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "training"); },
                              {"unknown split 'training'"}));
  nlohmann::json j = nlohmann::json::parse(std::ifstream(manifest));
  const nlohmann::json good = j;

  j["splits"]["val"]["count"] = 301;
  std::ofstream(manifest) << j.dump();
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "val"); },
                              {manifest, "hold 300 samples but its count is 301"}));

  j = good;
  j["splits"]["test"]["shards"][1]["count"] = 99;
  j["splits"]["test"]["count"] = 299;
  std::ofstream(manifest) << j.dump();
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "test"); }, {manifest, "first_sample"}));

  j = good;
  j["splits"]["train"]["shards"][0]["file"] = "../escape.h5";
  std::ofstream(manifest) << j.dump();
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); }, {manifest, "plain name"}));

  j = good;
  j["format_version"] = 2;
  std::ofstream(manifest) << j.dump();
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {manifest, "format_version is 2"}));

  j = good;
  j.erase("rows");
  std::ofstream(manifest) << j.dump();
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {manifest, "field 'rows' is missing"}));

  std::ofstream(manifest) << "{ not json";
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {manifest, "is not valid JSON"}));

  fs::remove(manifest);
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(opts_.out_dir, "train"); },
                              {opts_.out_dir, "has no manifest.json", "run mnist_prepare"}));
  EXPECT_TRUE(ThrowsUserError([&] { ShardReader::open(out_ / "nowhere", "train"); },
                              {out_ / "nowhere", "no such data directory"}));
}

}  // namespace
}  // namespace mnist_dist::data
