// Start-up checks of output paths and whole-file writes that report a full disk clearly.
#include "io/output_file.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace mnist_dist {
namespace fs = std::filesystem;

namespace {

bool is_space_error(int err) { return err == ENOSPC || err == EDQUOT; }

std::string dir_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// Writable and searchable by this process (root too, unless the file system is read-only).
void check_writable_dir(const std::string& flag, const std::string& path, const std::string& dir) {
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw UserError(flag + " " + path + ": cannot write in directory " + dir + " (" + std::strerror(errno) +
                    "); choose a directory you can write to");
}

void check_space(const std::string& flag, const std::string& path, const std::string& dir, uint64_t bytes) {
  if (bytes == 0) return;
  const uint64_t free = free_bytes(dir);
  if (free < bytes)
    throw UserError(flag + " " + path + ": not enough disk space: needs about " + describe_bytes(bytes) +
                    ", " + describe_bytes(free) + " free in " + dir + "; free some space or choose another place");
}

}  // namespace

uint64_t free_bytes(const std::string& dir) {
  struct statvfs st {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &st) != 0) return 0;
  const uint64_t blocks = ::geteuid() == 0 ? st.f_bfree : st.f_bavail;
  return blocks * static_cast<uint64_t>(st.f_frsize);
}

std::string describe_bytes(uint64_t n) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%llu bytes (%.1f MiB)", static_cast<unsigned long long>(n),
                static_cast<double>(n) / (1024.0 * 1024.0));
  return buf;
}

void check_output_file(const std::string& flag, const std::string& path, uint64_t bytes,
                       const std::string& example_name) {
  if (path.empty()) return;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw UserError(flag + " " + path + " is a directory; name a file, e.g. " +
                    (fs::path(path) / example_name).string());
  const std::string dir = dir_of(path);
  if (!fs::exists(dir, ec)) throw UserError(flag + " " + path + ": directory " + dir + " does not exist");
  if (!fs::is_directory(dir, ec)) throw UserError(flag + " " + path + ": " + dir + " is not a directory");
  check_writable_dir(flag, path, dir);
  check_space(flag, path, dir, bytes);
}

void check_output_dir(const std::string& flag, const std::string& path, uint64_t bytes) {
  if (path.empty()) return;
  std::error_code ec;
  fs::path existing(path);
  while (!existing.empty() && !fs::exists(existing, ec)) existing = existing.parent_path();
  if (existing.empty()) existing = ".";
  if (!fs::is_directory(existing, ec)) {
    if (existing == fs::path(path))
      throw UserError(flag + " " + path + " cannot be created: a file of that name exists; name a directory");
    throw UserError(flag + " " + path + " cannot be created: " + existing.string() + " is not a directory");
  }
  check_writable_dir(flag, path, existing.string());
  check_space(flag, path, existing.string(), bytes);
}

void write_whole_file(const std::string& what, const std::string& path, const void* data, size_t n,
                      const std::string& shown) {
  const std::string& name = shown.empty() ? path : shown;
  const std::string dir = dir_of(path);
  const uint64_t free_before = free_bytes(dir);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (is_space_error(err))
      throw NoSpaceError("cannot write " + what + " " + name + ": no space left on the disk (" + describe_bytes(n) +
                         " needed, " + describe_bytes(free_before) + " free in " + dir + ")");
    throw UserError("cannot create " + what + " " + path + ": " + std::strerror(err));
  }
  const char* p = static_cast<const char*>(data);
  size_t left = n;
  int err = 0;
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? errno : ENOSPC;
      break;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (::close(fd) != 0 && err == 0) err = errno;  // NFS reports a full disk at close
  if (err == 0) return;
  ::unlink(path.c_str());
  if (is_space_error(err))
    throw NoSpaceError("cannot write " + what + " " + name + ": no space left on the disk (" + describe_bytes(n) +
                       " needed, " + describe_bytes(free_before) + " free in " + dir +
                       "); the partial file was removed");
  throw UserError("cannot write " + what + " " + path + ": " + std::strerror(err));
}

void write_file_atomically(const std::string& what, const std::string& path, const void* data, size_t n) {
  const std::string tmp = path + ".tmp";
  write_whole_file(what, tmp, data, n, path);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw UserError("cannot rename " + tmp + " to " + path + ": " + ec.message());
  }
}

}  // namespace mnist_dist
