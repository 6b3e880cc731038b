// Collecting misclassified samples and storing them as a small HDF5 file.
#include "report/mistakes.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "data_pipeline/hdf5_util.h"

namespace mnist_dist {
namespace h5 = data::h5;

Mistakes collect_mistakes(const SplitData& data, const std::vector<int32_t>& predictions, int rows,
                          int cols, size_t max) {
  Mistakes m;
  m.rows = rows;
  m.cols = cols;
  const size_t pixels = static_cast<size_t>(rows) * cols;
  MD_CHECK(data.images.size() == data.n * pixels, "split images (n, rows, cols)");
  for (size_t i = 0; i < data.n && i < predictions.size() && m.size() < max; ++i) {
    if (predictions[i] == static_cast<int32_t>(data.labels[i])) continue;
    const float* img = data.images.data() + i * pixels;
    for (size_t p = 0; p < pixels; ++p)
      m.images.push_back(static_cast<uint8_t>(std::lround(std::clamp(img[p], 0.0f, 1.0f) * 255.0f)));
    m.labels.push_back(data.labels[i]);
    m.predicted.push_back(predictions[i]);
    m.index.push_back(static_cast<uint32_t>(i));
  }
  return m;
}

void write_mistakes(const Mistakes& m, const std::string& path) {
  h5::quiet_errors();
  const std::string tmp = path + ".tmp";
  {
    const hid_t id = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (id < 0) throw UserError("cannot create " + tmp + ": " + h5::error_message());
    h5::Handle f = h5::file(id);
    h5::write_attr(f.get(), "description",
                   std::string("misclassified samples of the evaluated split, first ones in split order"));
    const hsize_t k = m.size();
    const hsize_t dims[3] = {k, static_cast<hsize_t>(m.rows), static_cast<hsize_t>(m.cols)};
    auto write = [&](const char* name, int rank, const hsize_t* d, hid_t file_type, hid_t mem_type,
                     const void* buf) {
      h5::Handle space = h5::dataspace(MD_H5(H5Screate_simple(rank, d, nullptr)));
      h5::Handle ds = h5::dataset(MD_H5(
          H5Dcreate2(f.get(), name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
      if (k > 0) MD_H5(H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    };
    write("images", 3, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, m.images.data());
    write("labels", 1, dims, H5T_STD_U8LE, H5T_NATIVE_UINT8, m.labels.data());
    write("predicted", 1, dims, H5T_STD_I32LE, H5T_NATIVE_INT32, m.predicted.data());
    write("index", 1, dims, H5T_STD_U32LE, H5T_NATIVE_UINT32, m.index.data());
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw UserError("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

Mistakes read_mistakes(const std::string& path) {
  h5::quiet_errors();
  h5::Handle f = h5::open_file(path);
  Mistakes m;
  auto open = [&](const char* name, size_t rank) {
    if (!h5::has_dataset(f.get(), name)) throw UserError(path + ": dataset '" + std::string(name) + "' is missing");
    h5::Handle ds = h5::dataset(MD_H5(H5Dopen2(f.get(), name, H5P_DEFAULT)));
    const h5::DatasetInfo info = h5::inspect(ds.get());
    if (info.dims.size() != rank || info.type_class != H5T_INTEGER)
      throw UserError(path + ": dataset '" + std::string(name) + "' has the wrong shape or type");
    return std::make_pair(std::move(ds), info);
  };
  auto [images, info] = open("images", 3);
  const size_t k = info.dims[0];
  m.rows = static_cast<int>(info.dims[1]);
  m.cols = static_cast<int>(info.dims[2]);
  m.images.resize(k * m.rows * m.cols);
  m.labels.resize(k);
  m.predicted.resize(k);
  m.index.resize(k);
  if (k == 0) return m;
  MD_H5(H5Dread(images.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, m.images.data()));
  auto read = [&](const char* name, hid_t mem_type, void* buf) {
    auto [ds, di] = open(name, 1);
    if (di.dims[0] != k) throw UserError(path + ": dataset '" + std::string(name) + "' has the wrong length");
    MD_H5(H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
  };
  read("labels", H5T_NATIVE_UINT8, m.labels.data());
  read("predicted", H5T_NATIVE_INT32, m.predicted.data());
  read("index", H5T_NATIVE_UINT32, m.index.data());
  return m;
}

}  // namespace mnist_dist
