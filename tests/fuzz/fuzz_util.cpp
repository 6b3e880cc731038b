// Helpers of the libFuzzer targets (see fuzz_util.h).
#include "fuzz_util.h"

#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace mnist_dist::fuzz {
namespace fs = std::filesystem;

void make_fatal_abort() {
  const char* mode = std::getenv("MD_FUZZ_FATAL");
  if (mode != nullptr && std::string(mode) == "throw") {
    set_fatal_context(0, 1, [](int) { throw FatalCalled{}; });
  } else {
    set_fatal_context(0, 1, [](int) { std::abort(); });
  }
}

MemFile::MemFile(const char* name) {
  fd_ = memfd_create(name, 0);
  if (fd_ < 0) {
    std::perror("memfd_create");
    std::abort();
  }
  path_ = "/proc/self/fd/" + std::to_string(fd_);
}

MemFile::~MemFile() { close(fd_); }

void MemFile::write(const uint8_t* data, size_t size) {
  if (ftruncate(fd_, 0) != 0 || (size > 0 && pwrite(fd_, data, size, 0) != static_cast<ssize_t>(size))) {
    std::perror("memfd write");
    std::abort();
  }
}

namespace {
std::vector<std::string>& scratch_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
void remove_scratch_dirs() {
  for (const std::string& d : scratch_dirs()) {
    std::error_code ec;
    fs::remove_all(d, ec);
  }
}
}  // namespace

std::string scratch_dir(const char* tag) {
  std::string base = "/dev/shm";
  if (const char* env = std::getenv("MD_FUZZ_SCRATCH")) base = env;  // launch/fuzz.sh sets and removes it
  else if (access(base.c_str(), W_OK) != 0) base = std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp";
  std::string templ = base + "/md_" + tag + "_XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  if (scratch_dirs().empty()) std::atexit(remove_scratch_dirs);
  scratch_dirs().push_back(templ);
  return templ;
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* seed_dir() { return std::getenv("MD_FUZZ_WRITE_SEEDS"); }

void write_seed(const std::string& name, const std::string& bytes) {
  fs::create_directories(seed_dir());
  write_file((fs::path(seed_dir()) / name).string(), bytes.data(), bytes.size());
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace mnist_dist::fuzz
