// StagedDir: staging directory in the output's parent, fsync, then rename(2) / renameat2
// RENAME_EXCHANGE into place; the old contents are removed only after the swap.
#include "data_pipeline/staged_dir.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

#include "core/error.h"

namespace fs = std::filesystem;

namespace mnist_dist::data {

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw UserError(path + ": cannot open to sync (" + std::strerror(errno) + ")");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories (EINVAL); that is not a failure.
  if (rc != 0 && err != EINVAL) {
    throw UserError(path + ": cannot sync to disk (" + std::strerror(err) + ")");
  }
}

StagedDir::StagedDir(const std::string& out_dir, bool overwrite, const std::string& marker) {
  if (out_dir.empty()) throw UserError("the output directory name is empty");
  fs::path out = fs::absolute(fs::path(out_dir)).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  if (!out.has_filename() || out == out.root_path()) {
    throw UserError(out_dir + " cannot be used as the output directory; choose a sub-directory");
  }
  out_ = out.string();

  std::error_code ec;
  const fs::file_status st = fs::symlink_status(out, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      throw UserError(out_dir + " exists and is not a directory; choose another output directory");
    }
    const bool prepared = fs::exists(out / marker, ec);
    if (prepared && !overwrite) {
      throw UserError(out_dir + " already holds a prepared data set (" + marker +
                      "); pass --overwrite to replace it");
    }
    if (!prepared && !fs::is_empty(out, ec)) {
      throw UserError(out_dir + " is not empty and holds no " + marker +
                      "; refusing to replace it: choose a new or empty output directory");
    }
  }

  const fs::path parent = out.parent_path();
  fs::create_directories(parent, ec);
  if (ec) throw UserError(parent.string() + ": cannot create directory (" + ec.message() + ")");
  std::random_device rd;
  for (int attempt = 0; attempt < 100 && staging_.empty(); ++attempt) {
    const fs::path p = parent / ("." + out.filename().string() + ".staging-" +
                                 std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
    if (::mkdir(p.c_str(), 0777) == 0) {
      staging_ = p.string();
    } else if (errno != EEXIST) {
      throw UserError(parent.string() + ": cannot create a staging directory (" +
                      std::strerror(errno) + ")");
    }
  }
  if (staging_.empty()) throw UserError(parent.string() + ": cannot create a staging directory");
}

StagedDir::~StagedDir() {
  if (!committed_ && !staging_.empty()) {
    std::error_code ec;
    fs::remove_all(staging_, ec);  // best effort: a leftover dot-directory is harmless
  }
}

void StagedDir::commit() {
  for (const fs::directory_entry& e : fs::directory_iterator(staging_)) {
    if (e.is_regular_file()) fsync_path(e.path().string());
  }
  fsync_path(staging_);

  std::error_code ec;
  const bool replace = fs::exists(out_, ec) && !fs::is_empty(out_, ec);
  if (replace) {
    // Atomic swap: the old data set stays complete until the new one is in place.
    if (::renameat2(AT_FDCWD, staging_.c_str(), AT_FDCWD, out_.c_str(), RENAME_EXCHANGE) != 0) {
      if (errno != EINVAL && errno != ENOSYS) {
        throw UserError(out_ + ": cannot replace it (" + std::strerror(errno) + ")");
      }
      // No RENAME_EXCHANGE on this file system: two renames, the old set kept until the end.
      const std::string old = staging_ + ".old";
      if (::rename(out_.c_str(), old.c_str()) != 0) {
        throw UserError(out_ + ": cannot replace it (" + std::strerror(errno) + ")");
      }
      if (::rename(staging_.c_str(), out_.c_str()) != 0) {
        const int err = errno;
        ::rename(old.c_str(), out_.c_str());  // put the old data set back
        throw UserError(out_ + ": cannot replace it (" + std::strerror(err) + ")");
      }
      fs::remove_all(old, ec);
    } else {
      fs::remove_all(staging_, ec);  // now holds the old data set
    }
  } else if (::rename(staging_.c_str(), out_.c_str()) != 0) {  // new, or an empty directory
    throw UserError(out_ + ": cannot move the prepared data set into place (" +
                    std::strerror(errno) + ")");
  }
  committed_ = true;
  fsync_path(fs::path(out_).parent_path().string());
}

}  // namespace mnist_dist::data
