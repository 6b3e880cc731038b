// PNG support when libpng was not found at build time: a clear message instead.
#include "core/error.h"
#include "report/image_io.h"

namespace mnist_dist {

bool png_supported() { return false; }

GrayImage read_png(const std::string& path) {
  throw UserError(path + ": this build cannot read PNG (libpng-dev was missing when it was built); "
                  "convert the image to PGM or install libpng-dev and rebuild");
}

void write_png_gray(const std::string& path, int, int, const uint8_t*) {
  throw UserError("cannot write " + path + ": this build has no PNG support (install libpng-dev and rebuild)");
}

}  // namespace mnist_dist
