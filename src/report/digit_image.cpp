// MNIST-style normalisation of a digit picture: polarity, bounding box, 20×20 fit, centre of mass.
#include "report/digit_image.h"

#include <algorithm>
#include <cmath>

namespace mnist_dist {
namespace {

// Mean of the outermost rows and columns.
float border_mean(const GrayImage& im) {
  double s = 0.0;
  size_t n = 0;
  for (int x = 0; x < im.width; ++x) {
    s += im.at(x, 0) + im.at(x, im.height - 1);
    n += 2;
  }
  for (int y = 1; y + 1 < im.height; ++y) {
    s += im.at(0, y) + im.at(im.width - 1, y);
    n += 2;
  }
  return n > 0 ? static_cast<float>(s / n) : 0.0f;
}

}  // namespace

std::vector<float> resample_area(const std::vector<float>& src, int sw, int sh, int dw, int dh) {
  std::vector<float> dst(static_cast<size_t>(dw) * dh, 0.0f);
  const double fx = static_cast<double>(sw) / dw, fy = static_cast<double>(sh) / dh;
  for (int y = 0; y < dh; ++y) {
    const double y0 = y * fy, y1 = (y + 1) * fy;
    for (int x = 0; x < dw; ++x) {
      const double x0 = x * fx, x1 = (x + 1) * fx;
      double sum = 0.0, area = 0.0;
      for (int sy = static_cast<int>(y0); sy < std::min<double>(sh, std::ceil(y1)); ++sy) {
        const double wy = std::min<double>(sy + 1, y1) - std::max<double>(sy, y0);
        if (wy <= 0) continue;
        for (int sx = static_cast<int>(x0); sx < std::min<double>(sw, std::ceil(x1)); ++sx) {
          const double wx = std::min<double>(sx + 1, x1) - std::max<double>(sx, x0);
          if (wx <= 0) continue;
          sum += wx * wy * src[static_cast<size_t>(sy) * sw + sx];
          area += wx * wy;
        }
      }
      dst[static_cast<size_t>(y) * dw + x] = area > 0 ? static_cast<float>(sum / area) : 0.0f;
    }
  }
  return dst;
}

PreparedDigit prepare_digit(const GrayImage& image, const DigitPrepOptions& o) {
  PreparedDigit out;
  out.inverted = o.invert == Invert::kYes || (o.invert == Invert::kAuto && border_mean(image) > 0.5f);
  GrayImage im = image;
  if (out.inverted)
    for (float& v : im.pixels) v = 1.0f - v;
  if (im.width == o.cols && im.height == o.rows) {
    out.pixels = im.pixels;
    return out;
  }
  out.resized = true;
  out.pixels.assign(static_cast<size_t>(o.rows) * o.cols, 0.0f);
  // Bounding box of the ink.
  int x0 = im.width, y0 = im.height, x1 = -1, y1 = -1;
  for (int y = 0; y < im.height; ++y)
    for (int x = 0; x < im.width; ++x)
      if (im.at(x, y) > o.ink_threshold) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
  if (x1 < 0) {
    out.blank = true;
    return out;
  }
  const int bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  std::vector<float> crop(static_cast<size_t>(bw) * bh);
  for (int y = 0; y < bh; ++y)
    for (int x = 0; x < bw; ++x) crop[static_cast<size_t>(y) * bw + x] = im.at(x0 + x, y0 + y);
  const int box = std::min({o.box, o.rows, o.cols});
  const double scale = static_cast<double>(box) / std::max(bw, bh);
  const int dw = std::clamp(static_cast<int>(std::lround(bw * scale)), 1, box);
  const int dh = std::clamp(static_cast<int>(std::lround(bh * scale)), 1, box);
  const std::vector<float> small = resample_area(crop, bw, bh, dw, dh);
  // Centre of mass of the scaled ink, moved to the frame's centre (kept inside the frame).
  double m = 0.0, mx = 0.0, my = 0.0;
  for (int y = 0; y < dh; ++y)
    for (int x = 0; x < dw; ++x) {
      const double v = small[static_cast<size_t>(y) * dw + x];
      m += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  const double cx = m > 0 ? mx / m : dw / 2.0, cy = m > 0 ? my / m : dh / 2.0;
  const int ox = std::clamp(static_cast<int>(std::lround(o.cols / 2.0 - cx)), 0, o.cols - dw);
  const int oy = std::clamp(static_cast<int>(std::lround(o.rows / 2.0 - cy)), 0, o.rows - dh);
  for (int y = 0; y < dh; ++y)
    for (int x = 0; x < dw; ++x)
      out.pixels[static_cast<size_t>(oy + y) * o.cols + ox + x] = std::clamp(small[static_cast<size_t>(y) * dw + x], 0.0f, 1.0f);
  return out;
}

}  // namespace mnist_dist
