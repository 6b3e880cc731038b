// prepare_shards: the whole mnist_prepare job — IDX files in, a validated, checksummed set of
// HDF5 shards (train / val / test) plus manifest.json out, written atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnist_dist::data {

struct PrepareOptions {
  std::string idx_dir, out_dir;
  int shards = 4;             // per split; clamped to the split's sample count (1..99999)
  double val_fraction = 0.3;  // held out of the IDX training set, in [0, 1)
  uint64_t split_seed = 1;
  bool overwrite = false;     // replace an existing prepared data set in out_dir
};

struct PrepareSummary {
  size_t train, val, test;  // samples per split
  int shards;               // shards requested per split (a split with fewer samples gets fewer)
};

// Reads idx_dir's train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte (each optionally .gz), splits off validation with split_train_val, and
// writes <split>-<i>-of-<S>.h5 shards and manifest.json into out_dir. UserError on bad input.
PrepareSummary prepare_shards(const PrepareOptions& opts);

}  // namespace mnist_dist::data
