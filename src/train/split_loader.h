// A whole split of a prepared data set in memory as the evaluator takes it (pixels / 255),
// its shards checked against the manifest's SHA-256 first: the trainer's validation and test
// splits, and `mnist_dist predict --data DIR --split S`.
#pragma once

#include <string>

#include "train/evaluator.h"

namespace mnist_dist {

struct LoadedSplit {
  SplitData data;
  int rows = 0, cols = 0, num_classes = 0;
};

// UserError (from the shard reader) for a bad directory or split name.
LoadedSplit load_split_data(const std::string& data_dir, const std::string& split);

}  // namespace mnist_dist
