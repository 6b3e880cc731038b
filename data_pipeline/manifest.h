// The prepared data set's on-disk description: format constants, shard file names, and
// manifest.json (sources, split parameters, per-split shard lists with checksums).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mnist_dist::data {

inline constexpr int kFormatVersion = 1;
inline constexpr int kNumClasses = 10;
inline constexpr int kMaxShards = 99999;  // shard names carry 5-digit index and count
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kSplitNames[] = {"train", "val", "test"};

struct SourceFile {
  std::string role;    // train_images, train_labels, test_images, test_labels
  std::string name;    // file name as found in --idx-dir (e.g. train-images-idx3-ubyte.gz)
  std::string sha256;  // of the file as stored
};

struct ShardEntry {
  std::string file;           // e.g. train-00000-of-00004.h5, relative to the data directory
  uint64_t first_sample = 0;  // index within the split of the shard's first sample
  uint64_t count = 0;
  std::string sha256;  // of the shard's images bytes followed by its labels bytes
  std::string file_sha256;  // of the shard file as stored: checked before HDF5 parses it
};

struct SplitEntry {
  uint64_t count = 0;
  int shards_requested = 0;  // --shards; shards.size() is smaller when count < shards_requested
  std::vector<ShardEntry> shards;
};

struct Manifest {
  int format_version = kFormatVersion;
  std::string created_by = "mnist_prepare";
  std::vector<SourceFile> sources;
  double val_fraction = 0.0;
  uint64_t split_seed = 0;
  uint32_t rows = 0, cols = 0;
  int num_classes = kNumClasses;
  std::map<std::string, SplitEntry> splits;  // "train", "val", "test"
};

// "train-00001-of-00004.h5"
std::string shard_file_name(const std::string& split, int index, int count);

// Shards a split of `samples` samples gets: `requested`, clamped so none is empty.
int shard_count_for(size_t samples, int requested);

// Writes `m` as pretty-printed JSON to `path` (fsynced).
void write_manifest(const Manifest& m, const std::string& path);

// Reads and validates data_dir/manifest.json; UserError naming the file, the problem and the fix.
Manifest read_manifest(const std::string& data_dir);

}  // namespace mnist_dist::data
