// Helpers for the data-pipeline tests: scratch directories, IDX file writers (raw and gzip),
// a synthetic MNIST-format data set, and matchers for UserError messages.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mnist_dist::data::test {

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The bytes of an IDX file: 00 00 type ndims, big-endian dims, then `data`.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint8_t type = 0x08);
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file(const std::string& path);

// Random bytes (images) or random labels below `classes`, reproducible from `seed`.
std::vector<uint8_t> random_bytes(size_t n, uint64_t seed, unsigned classes = 256);

// A synthetic MNIST-format set written into a directory under the standard IDX file names.
struct SyntheticSet {
  uint32_t rows = 0, cols = 0;
  std::vector<uint8_t> train_images, train_labels, test_images, test_labels;
  size_t train_count() const { return train_labels.size(); }
  size_t test_count() const { return test_labels.size(); }
};
SyntheticSet write_synthetic(const std::string& dir, size_t n_train, size_t n_test,
                             uint32_t rows = 28, uint32_t cols = 28, bool gzip = false,
                             uint64_t seed = 7);

// Runs a shell command; returns its exit status (or -1 if it did not exit normally).
int run_command(const std::string& cmd);

// Asserts that `fn` throws mnist_dist::UserError whose message contains every phrase.
::testing::AssertionResult ThrowsUserError(const std::function<void()>& fn,
                                           const std::vector<std::string>& phrases);

}  // namespace mnist_dist::data::test
