// Random translations for training (train/augment.h): parsing, the per-sample draw, the shift.
#include "train/augment.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "core/rng.h"

namespace mnist_dist::data {

int parse_augment(const std::string& value) {
  if (value == "none") return 0;
  const std::string prefix = "shift:";
  if (value.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string n = value.substr(prefix.size());
  if (n.empty() || n.size() > 2 || !std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  const int v = std::atoi(n.c_str());
  return v >= 1 && v <= kMaxAugmentShift ? v : -1;
}

std::string augment_forms() {
  return "none or shift:N with 1 <= N <= " + std::to_string(kMaxAugmentShift);
}

std::string augment_name(int max_shift) {
  return max_shift > 0 ? "shift:" + std::to_string(max_shift) : "none";
}

Shift draw_shift(uint64_t seed, int epoch, uint64_t sample, int max_shift) {
  if (max_shift <= 0) return {};
  // The stream: (epoch, sample) hashed together, apart from the other uses of the seed (the
  // initial weights, the epoch shuffles use small stream numbers).
  const uint64_t stream = mix64(mix64(0xA5B1F7C3D2E10000ull ^ static_cast<uint64_t>(static_cast<uint32_t>(epoch))) ^ sample);
  Rng rng(seed, stream);
  const uint64_t span = 2 * static_cast<uint64_t>(max_shift) + 1;
  Shift s;
  s.dx = static_cast<int>(rng.below(span)) - max_shift;
  s.dy = static_cast<int>(rng.below(span)) - max_shift;
  return s;
}

void shift_image(const uint8_t* src, uint8_t* dst, int rows, int cols, Shift s) {
  std::memset(dst, 0, static_cast<size_t>(rows) * static_cast<size_t>(cols));
  // Destination columns [x0, x1) read source columns [x0 − dx, x1 − dx); likewise rows.
  const int x0 = std::max(0, s.dx), x1 = std::min(cols, cols + s.dx);
  const int y0 = std::max(0, s.dy), y1 = std::min(rows, rows + s.dy);
  if (x0 >= x1) return;
  for (int y = y0; y < y1; ++y)
    std::memcpy(dst + static_cast<size_t>(y) * cols + x0, src + static_cast<size_t>(y - s.dy) * cols + (x0 - s.dx),
                static_cast<size_t>(x1 - x0));
}

}  // namespace mnist_dist::data
