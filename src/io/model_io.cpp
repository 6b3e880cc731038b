// HDF5 model writer/reader over the flat arena's named views; files carry a SHA-256 sidecar
// (io/sidecar.h), checked before HDF5 opens them.
#include "io/model_io.h"

#include <filesystem>

#include "core/error.h"
#include "io/h5_image.h"
#include "io/output_file.h"

namespace mnist_dist {
namespace fs = std::filesystem;
namespace h5 = data::h5;

namespace {

// Creates the intermediate groups of "a/b/c" (for "a/b").
void ensure_groups(hid_t file, const std::string& name) {
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
    const std::string group = name.substr(0, pos);
    if (MD_H5(H5Lexists(file, group.c_str(), H5P_DEFAULT)) > 0) continue;
    h5::Handle g(MD_H5(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                 H5Gclose);
  }
}

}  // namespace

bool h5_dataset_exists(hid_t file, const std::string& name) {
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1))
    if (MD_H5_READ(file, H5Lexists(file, name.substr(0, pos).c_str(), H5P_DEFAULT)) <= 0) return false;
  return h5::has_dataset(file, name.c_str());
}

void write_model_tensors(hid_t file, const Model& model, const char* format) {
  h5::write_attr(file, "format", std::string(format));
  h5::write_attr(file, "format_version", static_cast<int64_t>(kModelFormatVersion));
  h5::write_attr(file, "model", model.arch());
  h5::write_attr(file, "num_classes", static_cast<int64_t>(model.num_classes()));
  const Shape in = model.input_shape();
  h5::write_attr(file, "input_shape_chw",
                 std::to_string(in.c) + "," + std::to_string(in.h) + "," + std::to_string(in.w));
  h5::write_attr(file, "input_scaling", std::string("pixel / 255"));
  const ParamArena& a = model.arena();
  for (const ParamInfo& p : a.infos()) {
    ensure_groups(file, p.name);
    std::vector<hsize_t> dims(p.shape.begin(), p.shape.end());
    h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
    h5::Handle dset = h5::dataset(MD_H5(H5Dcreate2(file, p.name.c_str(), H5T_IEEE_F32LE, space.get(),
                                                   H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    const float* src = (p.trainable ? a.host_params() : a.host_state()) + p.offset;
    MD_H5(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, src));
    h5::write_attr(dset.get(), "trainable", static_cast<int64_t>(p.trainable ? 1 : 0));
  }
}

void read_model_tensors(hid_t file, Model& model, const std::string& path) {
  ParamArena& a = model.arena();
  for (const ParamInfo& p : a.infos()) {
    if (!h5_dataset_exists(file, p.name))
      throw UserError(path + ": dataset '" + p.name + "' is missing (not a " + model.arch() + " model?)");
    h5::Handle dset = h5::dataset(MD_H5_READ(file, H5Dopen2(file, p.name.c_str(), H5P_DEFAULT)));
    const h5::DatasetInfo info = h5::inspect(dset.get());
    const std::vector<hsize_t> want(p.shape.begin(), p.shape.end());
    if (info.dims != want || info.type_class != H5T_FLOAT)
      throw UserError(path + ": dataset '" + p.name + "' has the wrong shape or type for a " +
                      model.arch() + " model");
    float* dst = (p.trainable ? a.host_params() : a.host_state()) + p.offset;
    if (H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
      throw UserError(path + ": cannot read dataset '" + p.name + "' (truncated or corrupt file): " +
                      h5::error_message());
  }
  a.sync_to_device();
}

uint64_t model_file_bytes(const Model& model) {
  const ParamArena& a = model.arena();
  return (a.param_count() + a.state_count()) * sizeof(float) + kFileOverheadBytes;
}

void save_model(const Model& model, const std::string& path) {
  check_output_file("--save", path, 0, "model.h5");
  const std::vector<unsigned char> bytes =
      build_h5_image([&](hid_t file) { write_model_tensors(file, model, kModelFormat); });
  publish_with_sidecar("model", bytes, path);  // sidecar first, then the model's name (io/sidecar.cpp)
}

data::h5::Handle open_model_file(const std::string& path, MissingSidecar missing) {
  h5::quiet_errors();
  // Before HDF5 sees a byte of it (a damaged file can make HDF5 1.10 loop forever).
  if (check_sidecar(path, "use an intact copy of the file") == SidecarCheck::kMissing &&
      missing == MissingSidecar::kRefuse)
    throw UserError(path + " has no " + fs::path(sidecar_path(path)).filename().string() +
                    " (written by an older mnist_dist?), so it cannot be verified before it is read");
  h5::Handle file = h5::open_file(path, false, "the file is damaged or not an mnist_dist model");
  const std::string format =
      h5::has_attr(file.get(), "format") ? h5::read_string_attr(file.get(), "format", path) : "";
  if (format != kModelFormat && format != kCheckpointFormat)
    throw UserError(path + " is not an mnist_dist model or checkpoint (no format=\"" +
                    std::string(kModelFormat) + "\" attribute)");
  return file;
}

std::string read_model_arch(const std::string& path, MissingSidecar missing) {
  h5::Handle file = open_model_file(path, missing);
  return h5::read_string_attr(file.get(), "model", path);
}

void load_model(Model& model, const std::string& path, MissingSidecar missing) {
  h5::Handle file = open_model_file(path, missing);
  const std::string arch = h5::read_string_attr(file.get(), "model", path);
  if (arch != model.arch())
    throw UserError(path + " holds a '" + arch + "' model, expected '" + model.arch() + "'");
  read_model_tensors(file.get(), model, path);
}

}  // namespace mnist_dist
