// SHA-256 sidecars: `<file>.sha256` in sha256sum's format next to every model and checkpoint
// mnist_dist writes, checked before HDF5 opens the file (some damaged HDF5 files make HDF5 1.10
// loop forever, so a damaged file must never reach its parser). Hashing: data_pipeline/sha256.h.
#pragma once

#include <string>
#include <vector>

namespace mnist_dist {

// "<file>.sha256"
std::string sidecar_path(const std::string& file);
bool has_sidecar(const std::string& file);

// Writes `bytes` (a complete file) to `path`.tmp, then the sidecar, then renames the file to
// `path` (the .cpp says why that order is safe). `what` names the file in errors ("checkpoint",
// "model"): NoSpaceError on a full disk (nothing new left behind), UserError otherwise.
void publish_with_sidecar(const std::string& what, const std::vector<unsigned char>& bytes,
                          const std::string& path);

// What a reader does with a file that has no sidecar (written by mnist_dist before sidecars).
enum class MissingSidecar {
  kRefuse,  // UserError: the file is not read
  kAllow,   // read it unverified (the caller has printed unverified_warning())
};

enum class SidecarCheck { kMatches, kMissing };

// Compares the SHA-256 of `file` with its sidecar; nothing else reads the file. kMissing when
// there is no sidecar. UserError (one line: the file, both digests, then `fix`) on a mismatch,
// or naming the sidecar when it is not one sha256sum line.
SidecarCheck check_sidecar(const std::string& file, const std::string& fix);

// The one-line warning for a file read without a sidecar (no "mnist_dist: " prefix).
std::string unverified_warning(const std::string& file);

}  // namespace mnist_dist
