// The HDF5 check helper and RAII handles: every HDF5 call goes through MD_H5(), which reports
// the call's text, HDF5's own message and file:line through the one fatal path; plus small
// typed helpers for attributes, dataset shapes and row-range (hyperslab) reads and writes.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mnist_dist::data::h5 {

// Turns off HDF5's automatic error-stack printing on the calling thread (idempotent, cheap).
// Every entry point of the data pipeline calls it before its first HDF5 call.
void quiet_errors();

// The innermost messages of HDF5's current error stack on this thread, joined into one line.
std::string error_message();

// Reports a failed HDF5 call (text, HDF5's message, file:line) and ends the job (exit 1).
[[noreturn]] void fail(const char* call, const char* file, int line);

template <class T>
T check(T result, const char* call, const char* file, int line) {
  if (result < 0) fail(call, file, line);
  return result;
}

// A failed HDF5 *read* of a file the user gave us (shard, checkpoint, model): the file is
// damaged, which is bad input — a UserError naming the file and HDF5's reason — not an internal
// failure. `obj` is any identifier inside that file.
[[noreturn]] void fail_read(hid_t obj, const char* call);

template <class T>
T check_read(T result, hid_t obj, const char* call) {
  if (result < 0) fail_read(obj, call);
  return result;
}

// Checks an HDF5 call that reads a user's file: `hid_t d = MD_H5_READ(file, H5Dopen2(file, ...));`
#define MD_H5_READ(obj, call) ::mnist_dist::data::h5::check_read((call), (obj), #call)

// Checks an HDF5 call (negative result = failure) and yields its result: `hid_t d = MD_H5(H5Dopen2(...));`
#define MD_H5(call) ::mnist_dist::data::h5::check((call), #call, __FILE__, __LINE__)

// An owned HDF5 identifier, closed by the matching H5xclose. Move-only.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Wrap an identifier that MD_H5 has already checked.
inline Handle file(hid_t id) { return Handle(id, H5Fclose); }
inline Handle dataset(hid_t id) { return Handle(id, H5Dclose); }
inline Handle dataspace(hid_t id) { return Handle(id, H5Sclose); }
inline Handle datatype(hid_t id) { return Handle(id, H5Tclose); }
inline Handle attribute(hid_t id) { return Handle(id, H5Aclose); }
inline Handle plist(hid_t id) { return Handle(id, H5Pclose); }

// Opens an existing file read-only (or read-write). A file HDF5 cannot open is the user's
// problem: UserError naming `path` and HDF5's reason.
// `fix` is the advice appended to the message.
Handle open_file(const std::string& path, bool writable = false,
                 const std::string& fix = "re-run mnist_prepare with --overwrite");

// --- attributes on a file's root group or any object -------------------------------------
void write_attr(hid_t obj, const char* name, int64_t value);
void write_attr(hid_t obj, const char* name, uint64_t value);
void write_attr(hid_t obj, const char* name, double value);
void write_attr(hid_t obj, const char* name, const std::string& value);  // variable-length UTF-8

bool has_attr(hid_t obj, const char* name);
// Readers: UserError "<where>: attribute 'name' is missing / is not an integer|float|string".
int64_t read_int_attr(hid_t obj, const char* name, const std::string& where);
uint64_t read_uint_attr(hid_t obj, const char* name, const std::string& where);
double read_double_attr(hid_t obj, const char* name, const std::string& where);
std::string read_string_attr(hid_t obj, const char* name, const std::string& where);

// --- datasets -----------------------------------------------------------------------------
struct DatasetInfo {
  std::vector<hsize_t> dims;
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t type_size = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;
  std::vector<hsize_t> chunk;  // empty when the layout is not chunked
};
DatasetInfo inspect(hid_t dset);
bool has_dataset(hid_t file, const char* name);

// Reads or writes rows [first, first + count) along dimension 0 (all of the other dimensions)
// of `dset` as `mem_type`, from/to a packed buffer.
void read_rows(hid_t dset, hid_t mem_type, hsize_t first, hsize_t count, void* buf);
void write_rows(hid_t dset, hid_t mem_type, hsize_t first, hsize_t count, const void* buf);

}  // namespace mnist_dist::data::h5
