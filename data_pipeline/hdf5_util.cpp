// HDF5 check helper, RAII handles and typed attribute / dataset helpers (see hdf5_util.h).
#include "data_pipeline/hdf5_util.h"

#include <cstdlib>

#include "core/error.h"

namespace mnist_dist::data::h5 {

void quiet_errors() {
  thread_local bool done = false;  // HDF5's error stacks (and their printing) are per thread
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

namespace {
herr_t collect_error(unsigned n, const H5E_error2_t* err, void* data) {
  auto* out = static_cast<std::string*>(data);
  if (n > 0) *out += "; ";
  *out += (err->desc != nullptr && err->desc[0] != '\0') ? err->desc : err->func_name;
  return 0;
}
}  // namespace

std::string error_message() {
  std::string msg;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_error, &msg);
  if (msg.empty()) msg = "no HDF5 error message";
  if (msg.size() > 600) msg = msg.substr(0, 600) + "...";
  return msg;
}

void fail(const char* call, const char* file, int line) {
  ::mnist_dist::fatal(std::string("HDF5 call failed: ") + call + ": " + error_message(), file, line);
}

void fail_read(hid_t obj, const char* call) {
  std::string msg = error_message();  // before any other HDF5 call resets the stack
  std::string file = "an HDF5 file";
  const ssize_t n = H5Fget_name(obj, nullptr, 0);
  if (n > 0) {
    file.assign(static_cast<size_t>(n) + 1, '\0');
    H5Fget_name(obj, file.data(), file.size());
    file.resize(static_cast<size_t>(n));
  }
  throw UserError(file + " is corrupt: HDF5 cannot read it (" + call + ": " + msg + ")");
}

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_ != nullptr) closer_(id_);  // a failed close cannot be acted on here
  id_ = H5I_INVALID_HID;
}

Handle open_file(const std::string& path, bool writable, const std::string& fix) {
  quiet_errors();
  Handle fapl = plist(MD_H5(H5Pcreate(H5P_FILE_ACCESS)));
#if H5_VERSION_GE(1, 10, 7)
  // Many ranks open the same read-only shards, often on parallel file systems without flock:
  // lock where the file system supports it, carry on where it does not.
  MD_H5(H5Pset_file_locking(fapl.get(), true, true));
#endif
  const hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get());
  if (id < 0) {
    throw UserError(path + " is not a readable HDF5 file (" + error_message() + "); " + fix);
  }
  return file(id);
}

// --- attributes ---------------------------------------------------------------------------
namespace {
void write_scalar(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const void* v) {
  Handle space = dataspace(MD_H5(H5Screate(H5S_SCALAR)));
  Handle attr =
      attribute(MD_H5(H5Acreate2(obj, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT)));
  MD_H5(H5Awrite(attr.get(), mem_type, v));
}

// Opens attribute `name`, checking that it exists, holds one element and is of class `cls`.
Handle open_attr(hid_t obj, const char* name, H5T_class_t cls, const char* what,
                 const std::string& where) {
  if (MD_H5_READ(obj, H5Aexists(obj, name)) <= 0) {
    throw UserError(where + ": attribute '" + name + "' is missing; re-run mnist_prepare");
  }
  Handle attr = attribute(MD_H5_READ(obj, H5Aopen(obj, name, H5P_DEFAULT)));
  Handle space = dataspace(MD_H5_READ(obj, H5Aget_space(attr.get())));
  Handle type = datatype(MD_H5_READ(obj, H5Aget_type(attr.get())));
  if (MD_H5_READ(obj, H5Sget_simple_extent_npoints(space.get())) != 1 ||
      H5Tget_class(type.get()) != cls) {
    throw UserError(where + ": attribute '" + name + "' is not a single " + what +
                    "; re-run mnist_prepare");
  }
  return attr;
}
}  // namespace

void write_attr(hid_t obj, const char* name, int64_t value) {
  write_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}
void write_attr(hid_t obj, const char* name, uint64_t value) {
  write_scalar(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}
void write_attr(hid_t obj, const char* name, double value) {
  write_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}
void write_attr(hid_t obj, const char* name, const std::string& value) {
  Handle type = datatype(MD_H5(H5Tcopy(H5T_C_S1)));
  MD_H5(H5Tset_size(type.get(), H5T_VARIABLE));
  MD_H5(H5Tset_cset(type.get(), H5T_CSET_UTF8));
  const char* ptr = value.c_str();
  write_scalar(obj, name, type.get(), type.get(), &ptr);
}

bool has_attr(hid_t obj, const char* name) { return MD_H5_READ(obj, H5Aexists(obj, name)) > 0; }

int64_t read_int_attr(hid_t obj, const char* name, const std::string& where) {
  Handle attr = open_attr(obj, name, H5T_INTEGER, "integer", where);
  int64_t v = 0;
  MD_H5_READ(obj, H5Aread(attr.get(), H5T_NATIVE_INT64, &v));
  return v;
}

uint64_t read_uint_attr(hid_t obj, const char* name, const std::string& where) {
  Handle attr = open_attr(obj, name, H5T_INTEGER, "integer", where);
  uint64_t v = 0;
  MD_H5_READ(obj, H5Aread(attr.get(), H5T_NATIVE_UINT64, &v));
  return v;
}

double read_double_attr(hid_t obj, const char* name, const std::string& where) {
  Handle attr = open_attr(obj, name, H5T_FLOAT, "floating-point number", where);
  double v = 0;
  MD_H5_READ(obj, H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v));
  return v;
}

std::string read_string_attr(hid_t obj, const char* name, const std::string& where) {
  Handle attr = open_attr(obj, name, H5T_STRING, "string", where);
  Handle file_type = datatype(MD_H5_READ(obj, H5Aget_type(attr.get())));
  Handle mem_type = datatype(MD_H5(H5Tcopy(H5T_C_S1)));
  MD_H5(H5Tset_cset(mem_type.get(), H5Tget_cset(file_type.get())));  // ASCII and UTF-8 don't convert
  if (MD_H5_READ(obj, H5Tis_variable_str(file_type.get())) > 0) {
    MD_H5(H5Tset_size(mem_type.get(), H5T_VARIABLE));
    char* ptr = nullptr;
    MD_H5_READ(obj, H5Aread(attr.get(), mem_type.get(), &ptr));
    std::string s = ptr != nullptr ? ptr : "";
    H5free_memory(ptr);
    return s;
  }
  const size_t size = H5Tget_size(file_type.get());
  MD_H5(H5Tset_size(mem_type.get(), size + 1));
  std::string buf(size + 1, '\0');
  MD_H5_READ(obj, H5Aread(attr.get(), mem_type.get(), buf.data()));
  return std::string(buf.c_str());
}

// --- datasets -----------------------------------------------------------------------------
DatasetInfo inspect(hid_t dset) {
  DatasetInfo info;
  Handle space = dataspace(MD_H5_READ(dset, H5Dget_space(dset)));
  const int ndims = MD_H5_READ(dset, H5Sget_simple_extent_ndims(space.get()));
  info.dims.resize(static_cast<size_t>(ndims));
  MD_H5_READ(dset, H5Sget_simple_extent_dims(space.get(), info.dims.data(), nullptr));
  Handle type = datatype(MD_H5_READ(dset, H5Dget_type(dset)));
  info.type_class = H5Tget_class(type.get());
  info.type_size = H5Tget_size(type.get());
  if (info.type_class == H5T_INTEGER) info.sign = H5Tget_sign(type.get());
  Handle dcpl = plist(MD_H5_READ(dset, H5Dget_create_plist(dset)));
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) {
    info.chunk.resize(static_cast<size_t>(ndims));
    MD_H5_READ(dset, H5Pget_chunk(dcpl.get(), ndims, info.chunk.data()));
  }
  return info;
}

bool has_dataset(hid_t file, const char* name) {
  if (MD_H5_READ(file, H5Lexists(file, name, H5P_DEFAULT)) <= 0) return false;
  Handle obj(MD_H5_READ(file, H5Oopen(file, name, H5P_DEFAULT)), H5Oclose);
  return H5Iget_type(obj.get()) == H5I_DATASET;
}

namespace {
// File and memory dataspaces selecting rows [first, first + count) of `dset`.
void row_spaces(hid_t dset, hsize_t first, hsize_t count, Handle& file_space, Handle& mem_space) {
  file_space = dataspace(MD_H5(H5Dget_space(dset)));
  const int ndims = MD_H5(H5Sget_simple_extent_ndims(file_space.get()));
  MD_CHECK(ndims >= 1 && ndims <= H5S_MAX_RANK, "row access needs a dataset of rank >= 1");
  hsize_t dims[H5S_MAX_RANK] = {}, start[H5S_MAX_RANK] = {};
  MD_H5(H5Sget_simple_extent_dims(file_space.get(), dims, nullptr));
  MD_CHECK(first + count <= dims[0], "row range outside the dataset");
  start[0] = first;
  dims[0] = count;
  MD_H5(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, dims, nullptr));
  mem_space = dataspace(MD_H5(H5Screate_simple(ndims, dims, nullptr)));
}
}  // namespace

void read_rows(hid_t dset, hid_t mem_type, hsize_t first, hsize_t count, void* buf) {
  if (count == 0) return;
  Handle file_space, mem_space;
  row_spaces(dset, first, count, file_space, mem_space);
  MD_H5_READ(dset, H5Dread(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, buf));
}

void write_rows(hid_t dset, hid_t mem_type, hsize_t first, hsize_t count, const void* buf) {
  if (count == 0) return;
  Handle file_space, mem_space;
  row_spaces(dset, first, count, file_space, mem_space);
  MD_H5(H5Dwrite(dset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, buf));
}

}  // namespace mnist_dist::data::h5
