// Turns an arbitrary grayscale picture into a model input the way MNIST was made: light ink on
// a dark background, the ink's bounding box scaled (aspect kept) to fit a 20×20 box, placed in
// the 28×28 frame so that its centre of mass is at the centre. An image already of the model's
// size is used as it is (only inverted if it is dark ink on light paper).
#pragma once

#include <string>
#include <vector>

#include "report/image_io.h"

namespace mnist_dist {

enum class Invert { kAuto, kYes, kNo };

struct DigitPrepOptions {
  int rows = 28, cols = 28;
  int box = 20;                // the ink's longer side after scaling (MNIST: 20 of 28)
  Invert invert = Invert::kAuto;  // auto: invert when the border is mostly light (paper)
  float ink_threshold = 0.1f;  // pixels above this (after inversion) count as ink
};

struct PreparedDigit {
  std::vector<float> pixels;  // (rows, cols) in [0, 1], ink bright
  bool inverted = false;
  bool resized = false;
  bool blank = false;         // no ink found: the input is all background
};

PreparedDigit prepare_digit(const GrayImage& image, const DigitPrepOptions& options = {});

// Area-weighted resampling (box filter over the exact covered area): shrinking averages,
// enlarging repeats. Exposed for tests.
std::vector<float> resample_area(const std::vector<float>& src, int sw, int sh, int dw, int dh);

}  // namespace mnist_dist
