// Reading IDX files (the MNIST container format), raw or gzip-compressed, with strict validation:
// every malformed file is a UserError naming the file and what is wrong with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mnist_dist::data {

// An IDX array of unsigned bytes (element type 0x08, the only one accepted).
struct IdxArray {
  std::vector<uint32_t> dims;  // 1 to 4 dimensions, each non-zero
  std::vector<uint8_t> data;   // product(dims) bytes, row-major
};

// The largest payload read_idx accepts (2 GiB); a header claiming more is rejected before
// anything is allocated.
inline constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 31;

// Reads an IDX file; gzip is detected by its 1f 8b magic and decompressed with zlib.
IdxArray read_idx(const std::string& path);

// `dir/base` if it exists, else `dir/base.gz`; UserError if neither does.
std::string find_idx_file(const std::string& dir, const std::string& base);

// An images file (count, rows, cols) and its labels file (count), checked against each other.
struct IdxDataset {
  size_t count;
  uint32_t rows, cols;
  std::vector<uint8_t> images;  // (count, rows, cols)
  std::vector<uint8_t> labels;  // (count)
};
IdxDataset load_idx_pair(const std::string& images_path, const std::string& labels_path);

}  // namespace mnist_dist::data
