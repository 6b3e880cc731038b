// Reads a model file's architecture attributes and loads it through io/model_io.
#include "export/model_file.h"

#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"
#include "io/model_io.h"

namespace mnist_dist {
namespace h5 = data::h5;

namespace {

void require_file(const std::string& path) {
  if (!std::filesystem::is_regular_file(path))
    throw UserError(path + ": no such file (pass a model written with --save or a checkpoint)");
}

// The attributes of an open model or checkpoint file.
ModelFileInfo info_of(const h5::Handle& file, const std::string& path) {
  ModelFileInfo info;
  info.arch = h5::read_string_attr(file.get(), "model", path);
  if (h5::has_attr(file.get(), "num_classes"))
    info.num_classes = static_cast<int>(h5::read_int_attr(file.get(), "num_classes", path));
  if (h5::has_attr(file.get(), "input_shape_chw")) {
    const std::string s = h5::read_string_attr(file.get(), "input_shape_chw", path);  // "1,28,28"
    std::stringstream ss(s);
    char c1 = 0, c2 = 0;
    int c = 0, h = 0, w = 0;
    if (!(ss >> c >> c1 >> h >> c2 >> w) || c1 != ',' || c2 != ',' || c < 1 || h < 1 || w < 1)
      throw UserError(path + ": attribute input_shape_chw '" + s + "' is not C,H,W");
    info.input = Shape{1, c, h, w};
  }
  if (info.num_classes < 2) throw UserError(path + ": num_classes must be at least 2");
  return info;
}

}  // namespace

ModelFileInfo read_model_file_info(const std::string& path, MissingSidecar missing) {
  require_file(path);
  const h5::Handle file = open_model_file(path, missing);  // sidecar and format checked
  return info_of(file, path);
}

Model load_model_file(const std::string& path, int max_batch, ModelFileInfo* info_out, MissingSidecar missing) {
  require_file(path);
  const h5::Handle file = open_model_file(path, missing);  // one check, one open
  const ModelFileInfo info = info_of(file, path);
  Model model(info.arch, Backend::kCpu, info.input, info.num_classes, max_batch);
  read_model_tensors(file.get(), model, path);
  if (info_out != nullptr) *info_out = info;
  return model;
}

}  // namespace mnist_dist
