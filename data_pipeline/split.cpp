// split_train_val: the seeded hold-out of validation samples from the training set.
#include "data_pipeline/split.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"

namespace mnist_dist::data {

TrainValSplit split_train_val(size_t n, double val_fraction, uint64_t seed) {
  if (!std::isfinite(val_fraction) || val_fraction < 0.0 || val_fraction > 1.0) {
    throw UserError("validation fraction " + std::to_string(val_fraction) +
                    " is out of range; expected a number from 0 to 1");
  }
  if (n > UINT32_MAX) {
    throw UserError("cannot split " + std::to_string(n) + " samples: at most 2^32-1 supported");
  }
  const size_t n_val =
      std::min(n, static_cast<size_t>(std::llround(static_cast<double>(n) * val_fraction)));

  const std::vector<uint32_t> perm = seeded_permutation(n, seed, kSplitStream);
  TrainValSplit split;
  split.val.assign(perm.begin(), perm.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::sort(split.val.begin(), split.val.end());

  // train = complement of val, produced in ascending order by one merge-like pass.
  split.train.reserve(n - n_val);
  size_t v = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (v < split.val.size() && split.val[v] == i) {
      ++v;
    } else {
      split.train.push_back(i);
    }
  }
  return split;
}

}  // namespace mnist_dist::data
