// ONNX export in a build without ONNX (libonnx-dev / protobuf not found): a clear message.
#include "core/error.h"
#include "export/onnx_export.h"

namespace mnist_dist {

bool onnx_supported() { return false; }

void export_onnx(const Model&, const std::string&, const OnnxExportOptions&) {
  throw UserError("this build of mnist_dist has no ONNX export: install libonnx-dev, "
                  "libprotobuf-dev and protobuf-compiler (apt-get), then re-run cmake and rebuild");
}

}  // namespace mnist_dist
