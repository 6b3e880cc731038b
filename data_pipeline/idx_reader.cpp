// IDX reading: header validation (magic, element type, rank, sizes) before any allocation,
// exact length checks for raw and gzip files, and the images/labels pair check.
#include "data_pipeline/idx_reader.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mnist_dist::data {
namespace {

const char* element_type_name(uint8_t t) {
  switch (t) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return "unknown";
  }
}

std::string hex_byte(uint8_t b) {
  char s[8];
  std::snprintf(s, sizeof s, "0x%02X", static_cast<unsigned>(b));
  return s;
}

// A zlib file handle (reads gzip and, transparently, raw files); closed on scope exit.
class GzReader {
 public:
  GzReader(const std::string& path, bool gzip) : path_(path), gzip_(gzip) {
    errno = 0;
    f_ = gzopen(path.c_str(), "rb");
    if (f_ == nullptr) {
      throw UserError(path + ": cannot open (" + std::strerror(errno != 0 ? errno : EIO) + ")");
    }
    gzbuffer(f_, 1 << 20);
  }
  ~GzReader() { gzclose(f_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes (fewer only at the end of the data); zlib errors are UserErrors.
  size_t read(uint8_t* buf, size_t n) {
    size_t total = 0;
    while (total < n) {
      const unsigned want = static_cast<unsigned>(std::min<size_t>(n - total, 1u << 30));
      const int got = gzread(f_, buf + total, want);
      check_stream();
      if (got <= 0) break;
      total += static_cast<size_t>(got);
    }
    return total;
  }

 private:
  void check_stream() {
    int err = Z_OK;
    const char* msg = gzerror(f_, &err);
    if (err == Z_OK) return;
    if (gzip_ && err == Z_BUF_ERROR) {
      throw UserError(path_ + ": corrupt gzip data: the compressed stream is truncated");
    }
    if (gzip_) throw UserError(path_ + ": corrupt gzip data (zlib: " + msg + ")");
    throw UserError(path_ + ": read error (" + msg + ")");
  }

  std::string path_;
  bool gzip_;
  gzFile f_ = nullptr;
};

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string dims_text(const std::vector<uint32_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

// The file's size (stat) and whether it is gzip-compressed; UserError for a missing, empty or
// unreadable path or a directory.
bool stat_and_sniff_gzip(const std::string& path, struct stat& st) {
  if (stat(path.c_str(), &st) != 0) {
    throw UserError(path + ": no such file (" + std::strerror(errno) + ")");
  }
  if (S_ISDIR(st.st_mode)) throw UserError(path + " is a directory, not an IDX file");
  if (st.st_size == 0) throw UserError(path + " is empty; expected an IDX file");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw UserError(path + ": cannot open (" + std::strerror(errno) + ")");
  unsigned char m[2] = {0, 0};
  const bool gzip = std::fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
  std::fclose(f);
  return gzip;
}

// Reads and checks the magic and the dimension sizes; returns the data byte count.
uint64_t read_header(GzReader& in, const std::string& path, const std::string& what, IdxArray& out) {
  uint8_t magic[4];
  if (in.read(magic, 4) < 4) {
    throw UserError(path + " is truncated: it ends inside the 4-byte IDX magic" + what);
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw UserError(path + " has a bad magic number (" + hex_byte(magic[0]) + " " +
                    hex_byte(magic[1]) + " " + hex_byte(magic[2]) + " " + hex_byte(magic[3]) +
                    "); not an IDX file (expected 0x00 0x00 <type> <ndims>)");
  }
  if (magic[2] != 0x08) {
    throw UserError(path + " has element type " + hex_byte(magic[2]) + " (" +
                    element_type_name(magic[2]) +
                    "); only unsigned-byte IDX files (type 0x08) are supported");
  }
  const unsigned ndims = magic[3];
  if (ndims < 1 || ndims > 4) {
    throw UserError(path + " declares " + std::to_string(ndims) +
                    " dimensions in its header; expected 1 to 4");
  }
  uint8_t raw_dims[16];
  if (in.read(raw_dims, 4 * ndims) < 4 * ndims) {
    throw UserError(path + " is truncated: it ends inside the IDX header (" +
                    std::to_string(ndims) + " dimension sizes expected)" + what);
  }
  uint64_t bytes = 1;
  for (unsigned i = 0; i < ndims; ++i) {
    out.dims.push_back(big_endian_u32(raw_dims + 4 * i));
    if (out.dims.back() == 0) {
      throw UserError(path + ": dimension " + std::to_string(i) + " of the IDX header is 0");
    }
    bytes *= out.dims.back();  // cannot overflow: checked against the 2^31 bound each step
    if (bytes > kMaxIdxBytes) {
      throw UserError(path + ": the IDX header claims " + dims_text(out.dims) +
                      (i + 1 < ndims ? "x..." : "") + " elements, which exceeds the limit of " +
                      std::to_string(kMaxIdxBytes) + " bytes (corrupt header?)");
    }
  }
  return bytes;
}

// Reads exactly `bytes` data bytes and checks nothing follows them.
void read_body(GzReader& in, const std::string& path, const std::string& what, uint64_t bytes, IdxArray& out) {
  // Grow the buffer as data actually arrives, so a lying gzip header allocates nothing big.
  const size_t step = size_t{16} << 20;
  size_t got = 0;
  while (got < bytes) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(bytes - got, step));
    out.data.resize(got + want);
    const size_t n = in.read(out.data.data() + got, want);
    got += n;
    if (n < want) break;
  }
  if (got < bytes) {
    throw UserError(path + " is truncated: the header (" + dims_text(out.dims) + ") declares " +
                    std::to_string(bytes) + " data bytes but only " + std::to_string(got) +
                    " follow" + what);
  }
  uint8_t extra[1];
  if (in.read(extra, 1) > 0) {
    throw UserError(path + " has trailing bytes after the " + std::to_string(bytes) +
                    " data bytes its header (" + dims_text(out.dims) + ") declares" + what);
  }
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  struct stat st {};
  const bool gzip = stat_and_sniff_gzip(path, st);
  const std::string what = gzip ? " (after gzip decompression)" : "";
  GzReader in(path, gzip);
  IdxArray out;
  const uint64_t bytes = read_header(in, path, what, out);
  if (!gzip) {  // the exact length is known before reading anything
    const uint64_t header = 4 + 4 * uint64_t{out.dims.size()};
    const uint64_t have = static_cast<uint64_t>(st.st_size) - header;
    if (have < bytes) {
      throw UserError(path + " is truncated: the header (" + dims_text(out.dims) + ") declares " +
                      std::to_string(bytes) + " data bytes but the file holds " +
                      std::to_string(have));
    }
    if (have > bytes) {
      throw UserError(path + " has " + std::to_string(have - bytes) +
                      " trailing bytes after the " + std::to_string(bytes) +
                      " data bytes its header (" + dims_text(out.dims) + ") declares");
    }
  }
  read_body(in, path, what, bytes, out);
  return out;
}

std::string find_idx_file(const std::string& dir, const std::string& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw UserError(dir + ": no such directory (expected a folder holding the IDX files)");
  }
  const fs::path plain = fs::path(dir) / base;
  if (fs::exists(plain, ec)) return plain.string();
  const fs::path gz = fs::path(dir) / (base + ".gz");
  if (fs::exists(gz, ec)) return gz.string();
  throw UserError(dir + " has neither " + base + " nor " + base +
                  ".gz; expected the MNIST-format IDX files there");
}

IdxDataset load_idx_pair(const std::string& images_path, const std::string& labels_path) {
  IdxArray images = read_idx(images_path);
  if (images.dims.size() != 3) {
    throw UserError("images file " + images_path + " has " + std::to_string(images.dims.size()) +
                    " dimensions; expected 3 (count, rows, cols)");
  }
  IdxArray labels = read_idx(labels_path);
  if (labels.dims.size() != 1) {
    throw UserError("labels file " + labels_path + " has " + std::to_string(labels.dims.size()) +
                    " dimensions; expected 1 (count)");
  }
  if (images.dims[0] != labels.dims[0]) {
    throw UserError(images_path + " has " + std::to_string(images.dims[0]) + " images but " +
                    labels_path + " has " + std::to_string(labels.dims[0]) +
                    " labels; the counts must match");
  }
  // Labels are bytes, so always < 256; the class-count check belongs to the caller.
  IdxDataset out;
  out.count = images.dims[0];
  out.rows = images.dims[1];
  out.cols = images.dims[2];
  out.images = std::move(images.data);
  out.labels = std::move(labels.data);
  return out;
}

}  // namespace mnist_dist::data
