// HDF5 files built in memory (the core driver, no backing store): models and checkpoints are
// filled there, then written to disk in one plain write (io/output_file.h), so that a full
// disk is one clear error with nothing left behind instead of an HDF5 error stack and a
// half-written temporary file.
#pragma once

#include <hdf5.h>

#include <functional>
#include <vector>

namespace mnist_dist {

// Creates an empty in-memory HDF5 file, lets `fill` write into it, and returns the file's
// complete bytes (what H5Fclose would have written to disk).
std::vector<unsigned char> build_h5_image(const std::function<void(hid_t file)>& fill);

}  // namespace mnist_dist
