// A trained model for inference, from any file load_model() accepts (a model written with
// --save, or a training checkpoint): the architecture, classes and input shape come from the
// file's attributes (defaults 10 classes, 1×28×28 for files without them).
#pragma once

#include <string>

#include "model/model.h"

namespace mnist_dist {

struct ModelFileInfo {
  std::string arch;
  int num_classes = 10;
  Shape input{1, 1, 28, 28};  // per sample (1, C, H, W)
};

// UserError if `path` is missing or not an mnist_dist model/checkpoint.
ModelFileInfo read_model_file_info(const std::string& path);

// Builds the CPU model of the file's architecture for batches of up to max_batch samples and
// loads its weights and BatchNorm statistics.
Model load_model_file(const std::string& path, int max_batch, ModelFileInfo* info = nullptr);

}  // namespace mnist_dist
