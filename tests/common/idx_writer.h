// Test helper: writes small IDX files (uint8) and a learnable synthetic digit-like data set.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "core/rng.h"

namespace mnist_dist::testing {

inline void write_idx(const std::string& path, const std::vector<uint32_t>& dims,
                      const std::vector<uint8_t>& data) {
  std::ofstream f(path, std::ios::binary);
  const unsigned char head[4] = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  f.write(reinterpret_cast<const char*>(head), 4);
  for (uint32_t d : dims) {
    const unsigned char be[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                                 static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
    f.write(reinterpret_cast<const char*>(be), 4);
  }
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// Class k is a bright 6×6 block at one of 10 positions (jittered ±1 px) over noise: a
// small network learns it to ~100 % in an epoch or two.
inline void make_blocks(size_t n, uint64_t seed, std::vector<uint8_t>& images,
                        std::vector<uint8_t>& labels) {
  Rng rng(seed, 7);
  images.assign(n * 28 * 28, 0);
  labels.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const int k = static_cast<int>(rng.below(10));
    labels[i] = static_cast<uint8_t>(k);
    uint8_t* img = images.data() + i * 784;
    for (int p = 0; p < 784; ++p) img[p] = static_cast<uint8_t>(rng.below(60));
    const int by = 3 + (k / 5) * 13 + static_cast<int>(rng.below(3)) - 1;
    const int bx = 1 + (k % 5) * 5 + static_cast<int>(rng.below(3)) - 1;
    for (int y = by; y < by + 6 && y < 28; ++y)
      for (int x = bx; x < bx + 6 && x < 28; ++x) img[y * 28 + x] = static_cast<uint8_t>(200 + rng.below(56));
  }
}

// Writes the four standard MNIST files of a synthetic set into dir.
inline void write_block_dataset(const std::string& dir, size_t n_train, size_t n_test) {
  std::vector<uint8_t> img, lab;
  make_blocks(n_train, 11, img, lab);
  write_idx(dir + "/train-images-idx3-ubyte", {static_cast<uint32_t>(n_train), 28, 28}, img);
  write_idx(dir + "/train-labels-idx1-ubyte", {static_cast<uint32_t>(n_train)}, lab);
  make_blocks(n_test, 12, img, lab);
  write_idx(dir + "/t10k-images-idx3-ubyte", {static_cast<uint32_t>(n_test), 28, 28}, img);
  write_idx(dir + "/t10k-labels-idx1-ubyte", {static_cast<uint32_t>(n_test)}, lab);
}

}  // namespace mnist_dist::testing
