// Reading and writing grayscale images for `mnist_dist predict`: PNG (any colour type, through
// libpng) and PGM (P2/P5, 8 or 16 bit); colour is converted to luminance, transparency is
// composited over white (paper). Pixels as float in [0, 1], row-major, row 0 at the top.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mnist_dist {

struct GrayImage {
  int width = 0, height = 0;
  std::vector<float> pixels;  // (height, width), 0 = black, 1 = white
  float at(int x, int y) const { return pixels[static_cast<size_t>(y) * width + x]; }
};

// By content: PNG signature, else "P2"/"P5". UserError naming the file otherwise.
GrayImage read_image(const std::string& path);

// 8-bit grayscale PNG / binary PGM (tmp + rename). For tests and tools.
void write_png_gray(const std::string& path, int width, int height, const uint8_t* pixels);
void write_pgm(const std::string& path, int width, int height, const uint8_t* pixels);

// True when this build can read PNG (libpng found at build time).
bool png_supported();

}  // namespace mnist_dist
