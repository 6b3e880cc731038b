// ShardReader: opening and validating a split's shards against the manifest, range reads
// straight from HDF5 hyperslabs, index reads through a whole-chunk LRU cache, checksums.
#include "data_pipeline/shard_reader.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"
#include "data_pipeline/manifest.h"
#include "data_pipeline/sha256.h"

namespace fs = std::filesystem;

namespace mnist_dist::data {
namespace {

constexpr const char* kFix = "; re-run mnist_prepare with --overwrite";

struct Shard {
  std::string path, sha256;
  uint64_t first = 0, count = 0;  // samples [first, first + count) of the split
  uint64_t chunk_rows = 0;        // images per cache chunk (the dataset's HDF5 chunk)
  h5::Handle file, images, labels;
};

struct Chunk {
  std::vector<uint8_t> images, labels;
  uint64_t last_use = 0;
};

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

// Checks that `name` is an unsigned-integer dataset of `bytes`-wide elements and shape `dims`.
h5::Handle open_checked_dataset(const Shard& s, const char* name, size_t bytes,
                                const std::vector<hsize_t>& dims) {
  if (!h5::has_dataset(s.file.get(), name)) {
    throw UserError(s.path + " has no dataset '" + name + "'" + kFix);
  }
  h5::Handle ds = h5::dataset(MD_H5_READ(s.file.get(), H5Dopen2(s.file.get(), name, H5P_DEFAULT)));
  const h5::DatasetInfo info = h5::inspect(ds.get());
  if (info.type_class != H5T_INTEGER || info.type_size != bytes || info.sign != H5T_SGN_NONE) {
    throw UserError(s.path + ": dataset '" + name + "' is not of type uint" +
                    std::to_string(8 * bytes) + kFix);
  }
  if (info.dims != dims) {
    throw UserError(s.path + ": dataset '" + name + "' has shape " + shape_text(info.dims) +
                    " but the manifest implies " + shape_text(dims) + kFix);
  }
  return ds;
}

void expect_attr(const Shard& s, const char* name, uint64_t got, uint64_t want) {
  if (got != want) {
    throw UserError(s.path + ": attribute '" + name + "' is " + std::to_string(got) +
                    " but manifest.json says " + std::to_string(want) +
                    "; the shard does not belong to this data set" + kFix);
  }
}

}  // namespace

struct ShardReader::Impl {
  std::string dir, split;
  uint32_t rows = 0, cols = 0;
  int num_classes = kNumClasses;
  uint64_t size = 0;
  std::vector<Shard> shards;

  std::unordered_map<uint64_t, Chunk> cache;  // key: shard << 32 | chunk
  size_t cache_bytes = 0, cache_budget = size_t{256} << 20;
  uint64_t tick = 0;
  Chunk scratch;  // the current chunk when caching is off

  size_t image_bytes() const { return size_t{rows} * cols; }

  size_t shard_of(uint64_t sample) const {
    const auto it = std::upper_bound(shards.begin(), shards.end(), sample,
                                     [](uint64_t v, const Shard& s) { return v < s.first; });
    return static_cast<size_t>(it - shards.begin()) - 1;
  }

  void check_labels(const Shard& s, uint64_t local_first, const uint8_t* labels, size_t n) const {
    for (size_t i = 0; i < n; ++i) {
      if (labels[i] >= num_classes) {
        const uint64_t local = local_first + i;
        throw UserError(s.path + ": sample " + std::to_string(local) + " (index " +
                        std::to_string(s.first + local) + " of the " + split + " split) has label " +
                        std::to_string(labels[i]) + " but num_classes is " +
                        std::to_string(num_classes) + "; the shard is corrupt" + kFix);
      }
    }
  }

  void open_shard(const Manifest& m, size_t index) {
    const ShardEntry& e = m.splits.at(split).shards[index];
    Shard s;
    s.path = (fs::path(dir) / e.file).string();
    s.sha256 = e.sha256;
    s.first = e.first_sample;
    s.count = e.count;
    std::error_code ec;
    if (!fs::is_regular_file(s.path, ec)) {
      throw UserError(s.path + " is missing (it is listed in " + dir + "/" + kManifestFile + ")" +
                      kFix);
    }
    // A damaged file must never reach HDF5's parser (some damage makes HDF5 1.10 loop forever).
    if (sha256_file(s.path) != e.file_sha256) {
      throw UserError(s.path + ": the file's SHA-256 does not match " + kManifestFile +
                      " (a damaged or replaced shard)" + kFix);
    }
    s.file = h5::open_file(s.path);
    const hid_t root = s.file.get();
    const std::string split_attr = h5::read_string_attr(root, "split", s.path);
    if (split_attr != split) {
      throw UserError(s.path + ": attribute 'split' is '" + split_attr + "' but manifest.json lists it under '" +
                      split + "'" + kFix);
    }
    expect_attr(s, "format_version", h5::read_uint_attr(root, "format_version", s.path), kFormatVersion);
    expect_attr(s, "shard_index", h5::read_uint_attr(root, "shard_index", s.path), index);
    expect_attr(s, "shard_count", h5::read_uint_attr(root, "shard_count", s.path),
                m.splits.at(split).shards.size());
    expect_attr(s, "first_sample", h5::read_uint_attr(root, "first_sample", s.path), s.first);
    expect_attr(s, "count", h5::read_uint_attr(root, "count", s.path), s.count);
    expect_attr(s, "rows", h5::read_uint_attr(root, "rows", s.path), rows);
    expect_attr(s, "cols", h5::read_uint_attr(root, "cols", s.path), cols);
    expect_attr(s, "num_classes", h5::read_uint_attr(root, "num_classes", s.path),
                static_cast<uint64_t>(num_classes));

    s.images = open_checked_dataset(s, "images", 1, {s.count, rows, cols});
    s.labels = open_checked_dataset(s, "labels", 1, {s.count});
    if (h5::has_dataset(root, "original_index")) {
      open_checked_dataset(s, "original_index", 4, {s.count});
    }
    const h5::DatasetInfo info = h5::inspect(s.images.get());
    s.chunk_rows = info.chunk.empty() ? std::min<uint64_t>(1024, s.count) : info.chunk[0];
    s.chunk_rows = std::clamp<uint64_t>(s.chunk_rows, 1, s.count);
    shards.push_back(std::move(s));
  }

  // The chunk `c` of shard `si`, from the cache or read whole (and cached when it fits).
  const Chunk& chunk(size_t si, uint64_t c) {
    const uint64_t key = (uint64_t{si} << 32) | c;
    if (auto it = cache.find(key); it != cache.end()) {
      it->second.last_use = ++tick;
      return it->second;
    }
    const Shard& s = shards[si];
    const uint64_t first = c * s.chunk_rows;
    const uint64_t n = std::min(s.chunk_rows, s.count - first);
    const size_t bytes = n * (image_bytes() + 1);
    const bool keep = bytes <= cache_budget;
    if (keep) {
      while (cache_bytes + bytes > cache_budget && !cache.empty()) {
        auto lru = std::min_element(cache.begin(), cache.end(), [](const auto& a, const auto& b) {
          return a.second.last_use < b.second.last_use;
        });
        cache_bytes -= lru->second.labels.size() * (image_bytes() + 1);
        cache.erase(lru);
      }
    }
    Chunk& ch = keep ? cache[key] : scratch;
    ch.images.resize(n * image_bytes());
    ch.labels.resize(n);
    h5::read_rows(s.images.get(), H5T_NATIVE_UINT8, first, n, ch.images.data());
    h5::read_rows(s.labels.get(), H5T_NATIVE_UINT8, first, n, ch.labels.data());
    ch.last_use = ++tick;
    if (keep) cache_bytes += bytes;
    try {
      check_labels(s, first, ch.labels.data(), n);
    } catch (...) {
      if (keep) {
        cache_bytes -= bytes;
        cache.erase(key);
      }
      throw;
    }
    return ch;
  }
};

ShardReader::ShardReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardReader::ShardReader(ShardReader&&) noexcept = default;
ShardReader& ShardReader::operator=(ShardReader&&) noexcept = default;
ShardReader::~ShardReader() = default;

ShardReader ShardReader::open(const std::string& data_dir, const std::string& split) {
  if (split != "train" && split != "val" && split != "test") {
    throw UserError("unknown split '" + split + "'; expected train, val or test");
  }
  h5::quiet_errors();
  const Manifest m = read_manifest(data_dir);
  auto impl = std::make_unique<Impl>();
  impl->dir = data_dir;
  impl->split = split;
  impl->rows = m.rows;
  impl->cols = m.cols;
  impl->num_classes = m.num_classes;
  impl->size = m.splits.at(split).count;
  for (size_t i = 0; i < m.splits.at(split).shards.size(); ++i) impl->open_shard(m, i);
  return ShardReader(std::move(impl));
}

size_t ShardReader::size() const { return impl_->size; }
uint32_t ShardReader::rows() const { return impl_->rows; }
uint32_t ShardReader::cols() const { return impl_->cols; }
int ShardReader::num_classes() const { return impl_->num_classes; }
const std::string& ShardReader::split() const { return impl_->split; }

void ShardReader::set_cache_bytes(size_t bytes) {
  impl_->cache_budget = bytes;
  impl_->cache.clear();
  impl_->cache_bytes = 0;
}

void ShardReader::read_range(size_t begin, size_t count, uint8_t* images, uint8_t* labels) {
  Impl& r = *impl_;
  if (begin > r.size || count > r.size - begin) {
    throw std::out_of_range("ShardReader::read_range: samples [" + std::to_string(begin) + ", " +
                            std::to_string(begin + count) + ") outside the " + r.split +
                            " split of " + std::to_string(r.size));
  }
  h5::quiet_errors();
  std::vector<uint8_t> label_buf;
  size_t done = 0;
  while (done < count) {
    const size_t sample = begin + done;
    const Shard& s = r.shards[r.shard_of(sample)];
    const uint64_t local = sample - s.first;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(count - done, s.count - local));
    if (images != nullptr) {
      h5::read_rows(s.images.get(), H5T_NATIVE_UINT8, local, n, images + done * r.image_bytes());
    }
    if (labels != nullptr) {
      h5::read_rows(s.labels.get(), H5T_NATIVE_UINT8, local, n, labels + done);
      r.check_labels(s, local, labels + done, n);
    }
    done += n;
  }
}

void ShardReader::read_indices(const uint32_t* idx, size_t n, uint8_t* images, uint8_t* labels) {
  Impl& r = *impl_;
  for (size_t i = 0; i < n; ++i) {
    if (idx[i] >= r.size) {
      throw std::out_of_range("ShardReader::read_indices: sample " + std::to_string(idx[i]) +
                              " outside the " + r.split + " split of " + std::to_string(r.size));
    }
  }
  h5::quiet_errors();
  std::vector<uint32_t> order(n);  // positions in idx, sorted by sample
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [idx](uint32_t a, uint32_t b) { return idx[a] < idx[b]; });

  const size_t ib = r.image_bytes();
  size_t k = 0;
  while (k < n) {
    const size_t si = r.shard_of(idx[order[k]]);
    const Shard& s = r.shards[si];
    const uint64_t c = (idx[order[k]] - s.first) / s.chunk_rows;
    const uint64_t chunk_first = s.first + c * s.chunk_rows;
    const uint64_t chunk_end = std::min(chunk_first + s.chunk_rows, s.first + s.count);
    const Chunk& ch = r.chunk(si, c);
    for (; k < n && idx[order[k]] < chunk_end; ++k) {
      const size_t pos = order[k];
      const size_t off = idx[pos] - chunk_first;
      if (images != nullptr) std::copy_n(ch.images.data() + off * ib, ib, images + pos * ib);
      if (labels != nullptr) labels[pos] = ch.labels[off];
    }
  }
}

void ShardReader::verify_checksums() {
  Impl& r = *impl_;
  h5::quiet_errors();
  std::vector<uint8_t> buf;
  for (const Shard& s : r.shards) {
    Sha256 sha;
    for (uint64_t first = 0; first < s.count; first += s.chunk_rows) {
      const uint64_t n = std::min(s.chunk_rows, s.count - first);
      buf.resize(n * r.image_bytes());
      h5::read_rows(s.images.get(), H5T_NATIVE_UINT8, first, n, buf.data());
      sha.update(buf.data(), buf.size());
    }
    buf.resize(s.count);
    h5::read_rows(s.labels.get(), H5T_NATIVE_UINT8, 0, s.count, buf.data());
    sha.update(buf.data(), buf.size());
    const std::string got = sha.hex_digest();
    if (got != s.sha256) {
      throw UserError(s.path + ": content checksum mismatch (SHA-256 " + got +
                      ", manifest.json says " + s.sha256 + "); the file was modified or is corrupt" +
                      kFix);
    }
  }
}

}  // namespace mnist_dist::data
