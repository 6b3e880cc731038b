// PNG through libpng's simplified API (png_image): any PNG in, 8-bit gray out.
#include <png.h>

#include <filesystem>

#include "core/error.h"
#include "report/image_io.h"

namespace mnist_dist {

bool png_supported() { return true; }

GrayImage read_png(const std::string& path) {
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&im, path.c_str()))
    throw UserError(path + ": cannot read PNG: " + im.message);
  im.format = PNG_FORMAT_GRAY;  // colour → luminance; alpha composited over `background`
  png_color white{255, 255, 255};
  std::vector<png_byte> buf(PNG_IMAGE_SIZE(im));
  if (!png_image_finish_read(&im, &white, buf.data(), 0, nullptr)) {
    const std::string msg = im.message;
    png_image_free(&im);
    throw UserError(path + ": cannot decode PNG: " + msg);
  }
  GrayImage img;
  img.width = static_cast<int>(im.width);
  img.height = static_cast<int>(im.height);
  img.pixels.resize(buf.size());
  for (size_t i = 0; i < buf.size(); ++i) img.pixels[i] = buf[i] / 255.0f;
  return img;
}

void write_png_gray(const std::string& path, int width, int height, const uint8_t* pixels) {
  png_image im{};
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(width);
  im.height = static_cast<png_uint_32>(height);
  im.format = PNG_FORMAT_GRAY;
  const std::string tmp = path + ".tmp";
  if (!png_image_write_to_file(&im, tmp.c_str(), 0, pixels, 0, nullptr))
    throw UserError("cannot write " + tmp + ": " + im.message);
  std::filesystem::rename(tmp, path);
}

}  // namespace mnist_dist
