// A trained model for inference, from any file load_model() accepts (a model written with
// --save, or a training checkpoint): the architecture, classes and input shape come from the
// file's attributes (defaults 10 classes, 1×28×28 for files without them).
#pragma once

#include <string>

#include "io/sidecar.h"
#include "model/model.h"

namespace mnist_dist {

struct ModelFileInfo {
  std::string arch;
  int num_classes = 10;
  Shape input{1, 1, 28, 28};  // per sample (1, C, H, W)
};

// UserError if `path` is missing, fails its SHA-256 sidecar check, or is not an mnist_dist
// model/checkpoint. `missing`: a file without a sidecar is refused, or read unverified (kAllow:
// print unverified_warning(path) first; mnist_dist predict and export do, for the file named).
ModelFileInfo read_model_file_info(const std::string& path, MissingSidecar missing = MissingSidecar::kRefuse);

// Builds the CPU model of the file's architecture for batches of up to max_batch samples and
// loads its weights and BatchNorm statistics (the file checked as read_model_file_info does).
Model load_model_file(const std::string& path, int max_batch, ModelFileInfo* info = nullptr,
                      MissingSidecar missing = MissingSidecar::kRefuse);

}  // namespace mnist_dist
