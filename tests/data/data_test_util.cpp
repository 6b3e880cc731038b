// Test helpers for the data pipeline (see data_test_util.h).
#include "data_test_util.h"

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/error.h"
#include "core/rng.h"

namespace fs = std::filesystem;

namespace mnist_dist::data::test {

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  const fs::path p = fs::temp_directory_path() /
                     ("md_data_test_" + std::to_string(::getpid()) + "_" +
                      std::to_string(counter++) + "_" + std::to_string(rd() % 100000));
  fs::create_directories(p);
  path_ = p.string();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint8_t type) {
  std::vector<uint8_t> out = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(d >> shift));
  }
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << "cannot write " << path;
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << "cannot write " << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed, unsigned classes) {
  Rng rng(seed, 99);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng.below(classes));
  return out;
}

SyntheticSet write_synthetic(const std::string& dir, size_t n_train, size_t n_test, uint32_t rows,
                             uint32_t cols, bool gzip, uint64_t seed) {
  SyntheticSet s;
  s.rows = rows;
  s.cols = cols;
  const size_t px = size_t{rows} * cols;
  s.train_images = random_bytes(n_train * px, seed);
  s.train_labels = random_bytes(n_train, seed + 1, 10);
  s.test_images = random_bytes(n_test * px, seed + 2);
  s.test_labels = random_bytes(n_test, seed + 3, 10);
  const std::string ext = gzip ? ".gz" : "";
  auto put = [&](const std::string& name, const std::vector<uint32_t>& dims,
                 const std::vector<uint8_t>& data) {
    const std::vector<uint8_t> bytes = idx_bytes(dims, data);
    if (gzip) {
      write_gzip(dir + "/" + name + ext, bytes);
    } else {
      write_file(dir + "/" + name, bytes);
    }
  };
  const auto nt = static_cast<uint32_t>(n_train), ns = static_cast<uint32_t>(n_test);
  put("train-images-idx3-ubyte", {nt, rows, cols}, s.train_images);
  put("train-labels-idx1-ubyte", {nt}, s.train_labels);
  put("t10k-images-idx3-ubyte", {ns, rows, cols}, s.test_images);
  put("t10k-labels-idx1-ubyte", {ns}, s.test_labels);
  return s;
}

int run_command(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
}

::testing::AssertionResult ThrowsUserError(const std::function<void()>& fn,
                                           const std::vector<std::string>& phrases) {
  try {
    fn();
  } catch (const UserError& e) {
    const std::string msg = e.what();
    for (const std::string& p : phrases) {
      if (msg.find(p) == std::string::npos) {
        return ::testing::AssertionFailure()
               << "UserError message lacks \"" << p << "\": " << msg;
      }
    }
    if (msg.find('\n') != std::string::npos) {
      return ::testing::AssertionFailure() << "UserError message is not one line: " << msg;
    }
    return ::testing::AssertionSuccess() << msg;
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-UserError: " << e.what();
  }
  return ::testing::AssertionFailure() << "no exception thrown";
}

}  // namespace mnist_dist::data::test
