// HDF5 model writer/reader over the flat arena's named views.
#include "io/model_io.h"

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"

namespace mnist_dist {
namespace fs = std::filesystem;
namespace h5 = data::h5;

namespace {

// Creates the intermediate groups of "a/b/c" (for "a/b").
void ensure_groups(hid_t file, const std::string& name) {
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 1)) {
    const std::string group = name.substr(0, pos);
    if (H5Lexists(file, group.c_str(), H5P_DEFAULT) > 0) continue;
    h5::Handle g(MD_H5(H5Gcreate2(file, group.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)),
                 H5Gclose);
  }
}

}  // namespace

void save_model(const Model& model, const std::string& path) {
  h5::quiet_errors();
  const fs::path target(path);
  if (target.has_parent_path() && !fs::is_directory(target.parent_path()))
    throw UserError("--save " + path + ": directory " + target.parent_path().string() +
                    " does not exist");
  const std::string tmp = path + ".tmp";
  {
    const hid_t id = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0) throw UserError("cannot create " + tmp + ": " + h5::error_message());
    h5::Handle file = h5::file(id);
    h5::write_attr(file.get(), "format", std::string(kModelFormat));
    h5::write_attr(file.get(), "format_version", static_cast<int64_t>(kModelFormatVersion));
    h5::write_attr(file.get(), "model", model.arch());
    h5::write_attr(file.get(), "num_classes", static_cast<int64_t>(model.num_classes()));
    const Shape in = model.input_shape();
    h5::write_attr(file.get(), "input_shape_chw",
                   std::to_string(in.c) + "," + std::to_string(in.h) + "," + std::to_string(in.w));
    h5::write_attr(file.get(), "input_scaling", std::string("pixel / 255"));
    const ParamArena& a = model.arena();
    for (const ParamInfo& p : a.infos()) {
      ensure_groups(file.get(), p.name);
      std::vector<hsize_t> dims(p.shape.begin(), p.shape.end());
      h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
      h5::Handle dset = h5::dataset(MD_H5(H5Dcreate2(file.get(), p.name.c_str(), H5T_IEEE_F32LE,
                                                     space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
      const float* src = (p.trainable ? a.params() : a.state()) + p.offset;
      MD_H5(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, src));
      h5::write_attr(dset.get(), "trainable", static_cast<int64_t>(p.trainable ? 1 : 0));
    }
    MD_H5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw UserError("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

std::string read_model_arch(const std::string& path) {
  h5::quiet_errors();
  h5::Handle file = h5::open_file(path);
  if (!h5::has_attr(file.get(), "format") ||
      h5::read_string_attr(file.get(), "format", path) != kModelFormat)
    throw UserError(path + " is not an mnist_dist model file (no format=\"" +
                    std::string(kModelFormat) + "\" attribute)");
  return h5::read_string_attr(file.get(), "model", path);
}

void load_model(Model& model, const std::string& path) {
  const std::string arch = read_model_arch(path);
  if (arch != model.arch())
    throw UserError(path + " holds a '" + arch + "' model, expected '" + model.arch() + "'");
  h5::Handle file = h5::open_file(path);
  ParamArena& a = model.arena();
  for (const ParamInfo& p : a.infos()) {
    if (!h5::has_dataset(file.get(), p.name.c_str()))
      throw UserError(path + ": dataset '" + p.name + "' is missing");
    h5::Handle dset = h5::dataset(MD_H5(H5Dopen2(file.get(), p.name.c_str(), H5P_DEFAULT)));
    const h5::DatasetInfo info = h5::inspect(dset.get());
    const std::vector<hsize_t> want(p.shape.begin(), p.shape.end());
    if (info.dims != want || info.type_class != H5T_FLOAT)
      throw UserError(path + ": dataset '" + p.name + "' has the wrong shape or type");
    float* dst = (p.trainable ? a.params() : a.state()) + p.offset;
    MD_H5(H5Dread(dset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst));
  }
}

}  // namespace mnist_dist
