// ONNX export of a trained model (Debian's libonnx + protobuf): a standard inference graph that
// other runtimes (onnxruntime, OpenCV dnn, TensorRT) load. Input "input" float (N, C, H, W),
// pixels / 255; output "logits" float (N, classes) — softmax of them gives the probabilities.
// BatchNorm in inference form: a BatchNormalization node with the running statistics, or folded
// into the preceding convolution (fold_batchnorm).
#pragma once

#include <string>

#include "model/model.h"

namespace mnist_dist {

inline constexpr int kOnnxOpset = 13;       // widely supported (OpenCV 4.6, onnxruntime ≥ 1.6)
inline constexpr int kOnnxIrVersion = 7;    // the IR version of opset 13

struct OnnxExportOptions {
  bool fold_batchnorm = false;
  std::string source;  // the model file, recorded in the metadata
};

// False in a build without ONNX (libonnx-dev / protobuf not found): export_onnx then throws a
// UserError saying what to install.
bool onnx_supported();

// Builds the graph, checks it with onnx::checker, writes it (tmp + rename).
void export_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options);

}  // namespace mnist_dist
