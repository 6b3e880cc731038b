// Atomic replacement of an output directory: files are written into a staging directory next
// to it and renamed into place in one step, so a crash never leaves a half-written data set.
#pragma once

#include <string>

namespace mnist_dist::data {

// Flushes a file (or directory) to stable storage; UserError naming it if that fails.
void fsync_path(const std::string& path);

class StagedDir {
 public:
  // Checks `out_dir` (UserError if it is not a directory, if it already holds a prepared data
  // set — one with `marker` in it — and !overwrite, or if it is non-empty without `marker`),
  // then creates an empty staging directory in its parent (created when missing).
  StagedDir(const std::string& out_dir, bool overwrite, const std::string& marker);
  ~StagedDir();  // removes the staging directory unless commit() succeeded
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  const std::string& path() const { return staging_; }  // write the new contents here
  const std::string& target() const { return out_; }    // the normalised output directory

  // Syncs the staged files and puts them in place of the output directory (atomically
  // exchanging with an existing one, which is then deleted).
  void commit();

 private:
  std::string out_, staging_;
  bool committed_ = false;
};

}  // namespace mnist_dist::data
