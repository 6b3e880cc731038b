// Trained models as HDF5: one dataset per parameter and BatchNorm statistic, named
// "<layer>/<tensor>" (e.g. conv1/weight, bn1/running_mean), float32, PyTorch layouts
// (conv (O, I, KH, KW), dense (out, in)); root attributes name the format and the model.
// Written to a temporary file and renamed, with a SHA-256 sidecar `<file>.sha256` that every
// reader here checks before HDF5 opens the file (io/sidecar.h). Checkpoints (io/checkpoint.h)
// share this layout, so load_model reads both. docs/data-format.md documents it.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>

#include "data_pipeline/hdf5_util.h"
#include "io/sidecar.h"
#include "model/model.h"

namespace mnist_dist {

inline constexpr const char* kModelFormat = "mnist_dist-model";
inline constexpr const char* kCheckpointFormat = "mnist_dist-checkpoint";
inline constexpr int kModelFormatVersion = 1;

// Room an HDF5 file needs beyond its float data (superblock, groups, attributes), rounded up.
inline constexpr uint64_t kFileOverheadBytes = 256 * 1024;
// Bytes of a saved model of `model` (an upper bound, for the start-up space check).
uint64_t model_file_bytes(const Model& model);
// Writes the model's host copies (sync_to_host() first on a GPU) to `path` with its sidecar;
// NoSpaceError on a full disk (nothing left behind), UserError for a bad path.
void save_model(const Model& model, const std::string& path);

// Checks `path` against its sidecar (without one: UserError with kRefuse; with kAllow read
// unverified, the caller having printed unverified_warning(path)), then opens it; UserError
// unless it is an mnist_dist model or checkpoint.
data::h5::Handle open_model_file(const std::string& path, MissingSidecar missing);
// Reads the architecture name stored in a model or checkpoint file (through open_model_file).
std::string read_model_arch(const std::string& path, MissingSidecar missing = MissingSidecar::kRefuse);
// Loads parameters and state into `model` (same architecture; every tensor's shape checked).
void load_model(Model& model, const std::string& path, MissingSidecar missing = MissingSidecar::kRefuse);

// Building blocks shared with checkpoints: the root attributes and the tensors of `model`.
// Writing reads the arena's host copies (sync_to_host() first on a GPU); reading fills them
// and uploads.
void write_model_tensors(hid_t file, const Model& model, const char* format);
void read_model_tensors(hid_t file, Model& model, const std::string& path);
// True when every component of "a/b/c" exists in `file` and the last is a dataset.
bool h5_dataset_exists(hid_t file, const std::string& name);

}  // namespace mnist_dist
