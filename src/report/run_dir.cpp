// Run directory creation and the atomic / append-only writers.
#include "report/run_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "io/output_file.h"

namespace mnist_dist {
namespace fs = std::filesystem;
namespace {

std::string time_string(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &local);
  return buf;
}

}  // namespace

std::string iso8601_now() { return time_string("%Y-%m-%dT%H:%M:%S%z"); }
std::string compact_timestamp_now() { return time_string("%Y%m%d-%H%M%S"); }

std::string create_run_dir(const std::string& requested, bool continuing) {
  std::error_code ec;
  if (!requested.empty()) {
    const fs::path dir(requested);
    check_output_dir("--run-dir", requested, kSmallOutputBytes);
    if (fs::exists(dir / "config.json") && !continuing)
      throw UserError("--run-dir " + requested +
                      " already holds a run (config.json): choose a new directory, or pass --resume "
                      "to continue that run");
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir))
      throw UserError("--run-dir " + requested + ": cannot create the directory: " +
                      (ec ? ec.message() : std::string("a file of that name exists")));
    return dir.string();
  }
  fs::create_directories("runs", ec);
  if (ec) throw UserError("cannot create runs/ in the working directory (" + ec.message() +
                          "): pass --run-dir DIR");
  const std::string base = "runs/" + compact_timestamp_now();
  for (int k = 1; k < 1000; ++k) {
    const std::string name = k == 1 ? base : base + "-" + std::to_string(k);
    // create_directory is atomic: two runs started in the same second get different names.
    if (fs::create_directory(name, ec)) return name;
    if (ec) throw UserError("cannot create " + name + ": " + ec.message() + " (pass --run-dir DIR)");
  }
  throw UserError("cannot find a free run directory name under runs/: pass --run-dir DIR");
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomically("file", path, content.data(), content.size());
}

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw UserError("cannot open " + path + " for appending: " + std::strerror(errno));
  const std::string s = line + "\n";
  const ssize_t n = ::write(fd, s.data(), s.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(s.size())) {
    if (n < 0 && err != ENOSPC && err != EDQUOT) throw UserError("cannot append to " + path + ": " + std::strerror(err));
    throw NoSpaceError("cannot append to " + path + ": no space left on the disk (" + describe_bytes(s.size()) +
                       " needed, " + describe_bytes(free_bytes(fs::path(path).parent_path().string())) + " free)");
  }
}

}  // namespace mnist_dist
