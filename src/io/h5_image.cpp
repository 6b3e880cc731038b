// In-memory HDF5 files through the core driver; their bytes through H5Fget_file_image.
#include "io/h5_image.h"

#include <atomic>
#include <string>

#include "data_pipeline/hdf5_util.h"

namespace mnist_dist {
namespace h5 = data::h5;

std::vector<unsigned char> build_h5_image(const std::function<void(hid_t file)>& fill) {
  h5::quiet_errors();
  constexpr size_t kIncrement = size_t{1} << 20;  // the memory image grows 1 MiB at a time
  h5::Handle fapl = h5::plist(MD_H5(H5Pcreate(H5P_FILE_ACCESS)));
  MD_H5(H5Pset_fapl_core(fapl.get(), kIncrement, /*backing_store=*/0));
  // The core driver keys open files by name; a unique one per image in this process.
  static std::atomic<unsigned> serial{0};
  const std::string name = "mnist_dist-image-" + std::to_string(serial++);
  h5::Handle file = h5::file(MD_H5(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get())));
  fill(file.get());
  MD_H5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL));
  const ssize_t size = MD_H5(H5Fget_file_image(file.get(), nullptr, 0));
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  MD_H5(H5Fget_file_image(file.get(), bytes.data(), bytes.size()));
  return bytes;
}

}  // namespace mnist_dist
