// Trained models as HDF5: one dataset per parameter and BatchNorm statistic, named
// "<layer>/<tensor>" (e.g. conv1/weight, bn1/running_mean), float32, PyTorch layouts
// (conv (O, I, KH, KW), dense (out, in)); root attributes name the format and the model.
// Written to a temporary file and renamed. docs/data-format.md documents the layout.
#pragma once

#include <string>

#include "model/model.h"

namespace mnist_dist {

inline constexpr const char* kModelFormat = "mnist_dist-model";
inline constexpr int kModelFormatVersion = 1;

void save_model(const Model& model, const std::string& path);

// Reads the architecture name stored in a model file (UserError if it is not one).
std::string read_model_arch(const std::string& path);
// Loads parameters and state into `model` (same architecture; every tensor's shape checked).
void load_model(Model& model, const std::string& path);

}  // namespace mnist_dist
