// libFuzzer target: the IDX reader (data_pipeline/idx_reader.h) on arbitrary bytes, raw or gzip.
// Byte 0 picks the entry point: even → read_idx on the rest; odd → bytes 1-2 (little endian) say
// where the rest splits into an images file and a labels file for load_idx_pair. The files are
// memfds. A UserError is the expected outcome; anything else (crash, sanitizer report, leak,
// another exception, fatal()) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "data_pipeline/idx_reader.h"
#include "fuzz_util.h"

namespace {
using namespace mnist_dist;

std::string idx_bytes(const std::vector<uint32_t>& dims, size_t fill_mod = 10) {
  std::string s = {'\0', '\0', '\x08', static_cast<char>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    s += {static_cast<char>(d >> 24), static_cast<char>(d >> 16), static_cast<char>(d >> 8), static_cast<char>(d)};
    n *= d;
  }
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(i * 37 % fill_mod);
  return s;
}

std::string pair_input(const std::string& images, const std::string& labels) {
  const size_t at = images.size();
  return std::string{'\x01', static_cast<char>(at & 0xff), static_cast<char>(at >> 8)} + images + labels;
}

void write_seeds() {
  const std::string images = idx_bytes({3, 4, 4}, 256), labels = idx_bytes({3});
  fuzz::write_seed("raw_images", std::string(1, '\0') + images);
  fuzz::write_seed("raw_labels", std::string(1, '\0') + labels);
  fuzz::write_seed("raw_4d", std::string(1, '\0') + idx_bytes({2, 2, 3, 2}, 256));
  fuzz::write_seed("gz_images", std::string(1, '\0') + fuzz::gzip(images));
  fuzz::write_seed("pair_raw", pair_input(images, labels));
  fuzz::write_seed("pair_gz", pair_input(fuzz::gzip(images), fuzz::gzip(labels)));
  fuzz::write_seed("pair_mismatch", pair_input(images, idx_bytes({4})));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::make_fatal_abort();
  if (fuzz::seed_dir() != nullptr) {
    write_seeds();
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile a("fuzz_idx_a"), b("fuzz_idx_b");
  if (size == 0) return 0;
  try {
    if (data[0] % 2 == 0) {
      a.write(data + 1, size - 1);
      const data::IdxArray arr = data::read_idx(a.path());
      size_t n = 1;
      for (uint32_t d : arr.dims) n *= d;
      if (arr.dims.empty() || arr.dims.size() > 4 || arr.data.size() != n) std::abort();  // the contract
    } else {
      if (size < 3) return 0;
      const size_t at = std::min<size_t>(size - 3, data[1] | (size_t{data[2]} << 8));
      a.write(data + 3, at);
      b.write(data + 3 + at, size - 3 - at);
      const data::IdxDataset d = data::load_idx_pair(a.path(), b.path());
      if (d.images.size() != d.count * d.rows * d.cols || d.labels.size() != d.count) std::abort();
    }
  } catch (const UserError&) {
    // the expected outcome for bad input
  } catch (const fuzz::FatalCalled&) {
    // MD_FUZZ_FATAL=throw: fatal() already printed where
  }
  return 0;
}
