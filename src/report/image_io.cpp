// read_image() (by content: PNG or PGM) and the PGM reader/writer, which needs no library.
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "report/image_io.h"

namespace mnist_dist {

GrayImage read_png(const std::string& path);  // image_png.cpp / image_png_unavailable.cpp

namespace {

GrayImage read_pgm(const std::string& path, const std::string& bytes) {
  size_t pos = 2;
  // Header tokens: width, height, maxval, with '#' comments and whitespace between.
  auto token = [&]() -> long {
    while (pos < bytes.size()) {
      if (bytes[pos] == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n') ++pos;
      } else if (std::isspace(static_cast<unsigned char>(bytes[pos]))) {
        ++pos;
      } else {
        break;
      }
    }
    size_t start = pos;
    while (pos < bytes.size() && std::isdigit(static_cast<unsigned char>(bytes[pos]))) ++pos;
    if (start == pos || pos - start > 9) throw UserError(path + ": malformed PGM header");
    return std::stol(bytes.substr(start, pos - start));
  };
  const bool binary = bytes[1] == '5';
  GrayImage img;
  img.width = static_cast<int>(token());
  img.height = static_cast<int>(token());
  const long maxval = token();
  if (img.width < 1 || img.height < 1 || img.width > 16384 || img.height > 16384 || maxval < 1 || maxval > 65535)
    throw UserError(path + ": PGM size or maxval out of range");
  const size_t n = static_cast<size_t>(img.width) * img.height;
  img.pixels.resize(n);
  if (binary) {
    ++pos;  // the single whitespace after maxval
    const size_t bpp = maxval > 255 ? 2 : 1;
    if (bytes.size() < pos + n * bpp) throw UserError(path + ": PGM pixel data is truncated");
    for (size_t i = 0; i < n; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + pos + i * bpp);
      const unsigned v = bpp == 2 ? (p[0] << 8 | p[1]) : p[0];
      img.pixels[i] = static_cast<float>(v) / static_cast<float>(maxval);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const long v = token();
      if (v > maxval) throw UserError(path + ": PGM value above maxval");
      img.pixels[i] = static_cast<float>(v) / static_cast<float>(maxval);
    }
  }
  return img;
}

}  // namespace

GrayImage read_image(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UserError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPng, 8) == 0) return read_png(path);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '2' || bytes[1] == '5')) return read_pgm(path, bytes);
  throw UserError(path + ": not a PNG or PGM image (convert it, e.g. with ImageMagick: convert IN -colorspace gray OUT.png)");
}

void write_pgm(const std::string& path, int width, int height, const uint8_t* pixels) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    f << "P5\n" << width << " " << height << "\n255\n";
    f.write(reinterpret_cast<const char*>(pixels), static_cast<std::streamsize>(width) * height);
    if (!f) throw UserError("cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace mnist_dist
