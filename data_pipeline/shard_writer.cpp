// prepare_shards: load and check the IDX pairs, split off validation, write each split's
// contiguous shards (images chunked, labels, original_index, descriptive attributes) and the
// manifest into a staging directory, then move it into place.
#include "data_pipeline/shard_writer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"
#include "data_pipeline/idx_reader.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/sha256.h"
#include "data_pipeline/split.h"
#include "data_pipeline/staged_dir.h"

namespace fs = std::filesystem;

namespace mnist_dist::data {
namespace {

constexpr size_t kMaxChunkImages = 1024;
constexpr size_t kTargetChunkBytes = size_t{1} << 20;  // fits HDF5's default 1 MiB chunk cache

struct SourcePair {  // one IDX images/labels pair and where it came from
  IdxDataset data;
  SourceFile images, labels;
};

SourcePair load_source(const std::string& images_path, const std::string& labels_path,
                       const std::string& role) {
  SourcePair s{load_idx_pair(images_path, labels_path), {}, {}};
  for (size_t i = 0; i < s.data.count; ++i) {
    if (s.data.labels[i] >= kNumClasses) {
      throw UserError(labels_path + ": sample " + std::to_string(i) + " has label " +
                      std::to_string(s.data.labels[i]) + ", but labels must be 0.." +
                      std::to_string(kNumClasses - 1) + " (num_classes is " +
                      std::to_string(kNumClasses) + ")");
    }
  }
  s.images = {role + "_images", fs::path(images_path).filename().string(), sha256_file(images_path)};
  s.labels = {role + "_labels", fs::path(labels_path).filename().string(), sha256_file(labels_path)};
  return s;
}

struct ShardJob {
  std::string dir, split;
  int index, count;       // shard i of S
  uint64_t first_sample;  // within the split
  const uint32_t* source_index;  // `n` indices into src.data
  size_t n;
};

ShardEntry write_shard(const ShardJob& job, const SourcePair& src, const PrepareOptions& opts) {
  const IdxDataset& d = src.data;
  const size_t image_bytes = size_t{d.rows} * d.cols;
  std::vector<uint8_t> images(job.n * image_bytes), labels(job.n);
  std::vector<uint32_t> original(job.source_index, job.source_index + job.n);
  for (size_t i = 0; i < job.n; ++i) {
    const size_t s = job.source_index[i];
    std::copy_n(d.images.data() + s * image_bytes, image_bytes, images.data() + i * image_bytes);
    labels[i] = d.labels[s];
  }

  ShardEntry entry;
  entry.file = shard_file_name(job.split, job.index, job.count);
  entry.first_sample = job.first_sample;
  entry.count = job.n;
  Sha256 sha;
  sha.update(images.data(), images.size());
  sha.update(labels.data(), labels.size());
  entry.sha256 = sha.hex_digest();

  h5::quiet_errors();
  const std::string path = (fs::path(job.dir) / entry.file).string();
  h5::Handle f = h5::file(MD_H5(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT)));
  h5::Handle dcpl = h5::plist(MD_H5(H5Pcreate(H5P_DATASET_CREATE)));
  MD_H5(H5Pset_obj_track_times(dcpl.get(), 0));  // identical inputs give identical files

  const hsize_t n = job.n;
  {
    const hsize_t dims[3] = {n, d.rows, d.cols};
    const size_t per_chunk = std::clamp<size_t>(kTargetChunkBytes / image_bytes, 1, kMaxChunkImages);
    const hsize_t chunk[3] = {std::min<hsize_t>(per_chunk, n), d.rows, d.cols};
    h5::Handle chunked = h5::plist(MD_H5(H5Pcopy(dcpl.get())));
    MD_H5(H5Pset_chunk(chunked.get(), 3, chunk));
    h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(3, dims, nullptr)));
    h5::Handle ds = h5::dataset(MD_H5(H5Dcreate2(f.get(), "images", H5T_STD_U8LE, space.get(),
                                                 H5P_DEFAULT, chunked.get(), H5P_DEFAULT)));
    h5::write_rows(ds.get(), H5T_NATIVE_UINT8, 0, n, images.data());
  }
  h5::Handle space1 = h5::dataspace(MD_H5(H5Screate_simple(1, &n, nullptr)));
  {
    h5::Handle ds = h5::dataset(MD_H5(H5Dcreate2(f.get(), "labels", H5T_STD_U8LE, space1.get(),
                                                 H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
    h5::write_rows(ds.get(), H5T_NATIVE_UINT8, 0, n, labels.data());
  }
  {
    h5::Handle ds = h5::dataset(MD_H5(H5Dcreate2(f.get(), "original_index", H5T_STD_U32LE,
                                                 space1.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
    h5::write_rows(ds.get(), H5T_NATIVE_UINT32, 0, n, original.data());
  }

  const hid_t root = f.get();
  h5::write_attr(root, "split", job.split);
  h5::write_attr(root, "shard_index", int64_t{job.index});
  h5::write_attr(root, "shard_count", int64_t{job.count});
  h5::write_attr(root, "first_sample", uint64_t{job.first_sample});
  h5::write_attr(root, "count", uint64_t{job.n});
  h5::write_attr(root, "rows", int64_t{d.rows});
  h5::write_attr(root, "cols", int64_t{d.cols});
  h5::write_attr(root, "num_classes", int64_t{kNumClasses});
  h5::write_attr(root, "format_version", int64_t{kFormatVersion});
  h5::write_attr(root, "created_by", std::string("mnist_prepare"));
  h5::write_attr(root, "source_images", src.images.name);
  h5::write_attr(root, "source_images_sha256", src.images.sha256);
  h5::write_attr(root, "source_labels", src.labels.name);
  h5::write_attr(root, "source_labels_sha256", src.labels.sha256);
  h5::write_attr(root, "val_fraction", opts.val_fraction);
  h5::write_attr(root, "split_seed", uint64_t{opts.split_seed});
  MD_H5(H5Fflush(root, H5F_SCOPE_LOCAL));
  return entry;
}

// Shard i of S holds samples [i*N/S, (i+1)*N/S) of the split, in split order.
SplitEntry write_split(const std::string& dir, const std::string& split,
                       const std::vector<uint32_t>& order, const SourcePair& src,
                       const PrepareOptions& opts) {
  SplitEntry s;
  s.count = order.size();
  s.shards_requested = opts.shards;
  const int count = shard_count_for(order.size(), opts.shards);
  for (int i = 0; i < count; ++i) {
    const size_t begin = order.size() * static_cast<size_t>(i) / static_cast<size_t>(count);
    const size_t end = order.size() * static_cast<size_t>(i + 1) / static_cast<size_t>(count);
    const ShardJob job{dir, split, i, count, begin, order.data() + begin, end - begin};
    s.shards.push_back(write_shard(job, src, opts));  // the file is closed on return
    s.shards.back().file_sha256 = sha256_file((fs::path(dir) / s.shards.back().file).string());
  }
  return s;
}

}  // namespace

PrepareSummary prepare_shards(const PrepareOptions& opts) {
  if (opts.idx_dir.empty()) throw UserError("no IDX directory given (--idx-dir)");
  if (opts.out_dir.empty()) throw UserError("no output directory given (--out)");
  if (opts.shards < 1 || opts.shards > kMaxShards) {
    throw UserError("--shards " + std::to_string(opts.shards) + " is out of range; expected 1 to " +
                    std::to_string(kMaxShards));
  }
  if (!std::isfinite(opts.val_fraction) || opts.val_fraction < 0.0 || opts.val_fraction >= 1.0) {
    throw UserError("--val-fraction " + std::to_string(opts.val_fraction) +
                    " is out of range; expected 0 <= F < 1");
  }
  const std::string train_images = find_idx_file(opts.idx_dir, "train-images-idx3-ubyte");
  const std::string train_labels = find_idx_file(opts.idx_dir, "train-labels-idx1-ubyte");
  const std::string test_images = find_idx_file(opts.idx_dir, "t10k-images-idx3-ubyte");
  const std::string test_labels = find_idx_file(opts.idx_dir, "t10k-labels-idx1-ubyte");

  StagedDir stage(opts.out_dir, opts.overwrite, kManifestFile);  // fails early on a bad --out
  const SourcePair train = load_source(train_images, train_labels, "train");
  const SourcePair test = load_source(test_images, test_labels, "test");
  if (train.data.rows != test.data.rows || train.data.cols != test.data.cols) {
    throw UserError(train_images + " holds " + std::to_string(train.data.rows) + "x" +
                    std::to_string(train.data.cols) + " images but " + test_images + " holds " +
                    std::to_string(test.data.rows) + "x" + std::to_string(test.data.cols) +
                    "; train and test must have the same image size");
  }
  const TrainValSplit split = split_train_val(train.data.count, opts.val_fraction, opts.split_seed);
  if (split.train.empty()) {
    throw UserError("--val-fraction " + std::to_string(opts.val_fraction) + " leaves none of the " +
                    std::to_string(train.data.count) + " training samples for training");
  }
  std::vector<uint32_t> test_order(test.data.count);
  std::iota(test_order.begin(), test_order.end(), 0u);

  Manifest m;
  m.sources = {train.images, train.labels, test.images, test.labels};
  m.val_fraction = opts.val_fraction;
  m.split_seed = opts.split_seed;
  m.rows = train.data.rows;
  m.cols = train.data.cols;
  m.splits["train"] = write_split(stage.path(), "train", split.train, train, opts);
  m.splits["val"] = write_split(stage.path(), "val", split.val, train, opts);
  m.splits["test"] = write_split(stage.path(), "test", test_order, test, opts);
  write_manifest(m, (fs::path(stage.path()) / kManifestFile).string());
  stage.commit();
  return PrepareSummary{split.train.size(), split.val.size(), test_order.size(), opts.shards};
}

}  // namespace mnist_dist::data
