// Test helper: a PNG file is valid (libpng decodes it completely, CRCs checked) and its size.
#pragma once

#include <png.h>

#include <string>
#include <vector>

namespace mnist_dist::testing {

struct PngCheck {
  bool ok = false;
  int width = 0, height = 0;
  std::string error;
};

inline PngCheck check_png(const std::string& path) {
  PngCheck c;
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path.c_str())) {
    c.error = im.message;
    return c;
  }
  im.format = PNG_FORMAT_RGBA;
  std::vector<png_byte> buf(PNG_IMAGE_SIZE(im));
  if (!png_image_finish_read(&im, nullptr, buf.data(), 0, nullptr)) {
    c.error = im.message;
    png_image_free(&im);
    return c;
  }
  c.ok = true;
  c.width = static_cast<int>(im.width);
  c.height = static_cast<int>(im.height);
  return c;
}

}  // namespace mnist_dist::testing
