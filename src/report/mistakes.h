// The misclassified samples of an evaluation, kept for mistakes.png: mistakes.h5 in the run
// directory holds the first ones in split order (images uint8 (k, rows, cols), labels,
// predictions, index into the split), so `mnist_dist plot` needs nothing but the run directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/evaluator.h"

namespace mnist_dist {

inline constexpr size_t kMaxKeptMistakes = 100;

struct Mistakes {
  int rows = 28, cols = 28;
  std::vector<uint8_t> images;      // (k, rows, cols), 0 = background
  std::vector<uint8_t> labels;      // true class
  std::vector<int32_t> predicted;   // predicted class
  std::vector<uint32_t> index;      // position in the split
  size_t size() const { return labels.size(); }
};

// The first `max` samples with predictions[i] != labels[i]; pixels back to uint8 (x·255).
Mistakes collect_mistakes(const SplitData& data, const std::vector<int32_t>& predictions, int rows,
                          int cols, size_t max = kMaxKeptMistakes);

void write_mistakes(const Mistakes& m, const std::string& path);  // tmp + rename
Mistakes read_mistakes(const std::string& path);                   // UserError if malformed

}  // namespace mnist_dist
