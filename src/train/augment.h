// Training-time augmentation (--augment shift:N): a random translation of each training image
// by up to N pixels, drawn from (seed, epoch, global sample index) only, so the same sample in
// the same epoch moves alike at any world size and after a resume. Applied by the prefetcher.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnist_dist::data {

constexpr int kMaxAugmentShift = 8;

// What --augment asks for. max_shift 0: none (images untouched).
struct Augment {
  int max_shift = 0;  // N of shift:N, 1..kMaxAugmentShift
  uint64_t seed = 0;  // the run's --seed
  bool enabled() const { return max_shift > 0; }
};

// Parses --augment's value: "none" → 0, "shift:N" (1 ≤ N ≤ 8) → N. Returns -1 when it is neither.
int parse_augment(const std::string& value);
// The accepted forms, for messages: "none or shift:N with 1 <= N <= 8".
std::string augment_forms();
// The value's canonical text: "none" or "shift:N".
std::string augment_name(int max_shift);

struct Shift {
  int dx = 0, dy = 0;  // each in [-N, N]; +dx moves the content right, +dy down
};

// The shift of global sample `sample` in epoch `epoch`: (dx, dy) uniform over the (2N+1)² offsets,
// a counter-based draw (Rng seeded by a hash of epoch and sample) that depends on nothing else.
Shift draw_shift(uint64_t seed, int epoch, uint64_t sample, int max_shift);

// dst(y, x) = src(y − dy, x − dx) where that lies inside the image, else 0 (zero fill). One image
// of rows × cols bytes; src and dst must not overlap.
void shift_image(const uint8_t* src, uint8_t* dst, int rows, int cols, Shift s);

}  // namespace mnist_dist::data
