// The files a command writes (--save, --checkpoint-dir, --run-dir, predict --report and
// --predictions, export --onnx): checked at start-up, so that a path that cannot work fails
// before any work is done, and written whole, so that a full disk is one clear error
// (NoSpaceError: the file, the bytes needed, the bytes free) with the partial file removed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnist_dist {

// Room asked for a small output (a report, a CSV, a run directory's files) at start-up.
inline constexpr uint64_t kSmallOutputBytes = 1 << 20;

// Bytes the current user may still write on the file system holding `dir` (statvfs: f_bavail,
// or f_bfree for root, who may use the reserved blocks).
uint64_t free_bytes(const std::string& dir);

// "20971520 bytes (20.0 MiB)"
std::string describe_bytes(uint64_t n);

// UserError ("<flag> <path>: what is wrong; what to do") unless `path` can be written as a
// file: its directory exists and is writable, `path` is not a directory (`example_name`: a file
// name to suggest inside it), and the file system has `bytes` free. An empty path passes.
void check_output_file(const std::string& flag, const std::string& path, uint64_t bytes,
                       const std::string& example_name);

// The same for a directory that will hold files of `bytes` in all: `path` is a writable
// directory, or can be created (its nearest existing ancestor is a writable directory).
void check_output_dir(const std::string& flag, const std::string& path, uint64_t bytes);

// Creates (or truncates) `path` and writes the n bytes. On a full disk or quota (ENOSPC,
// EDQUOT, here or at close): removes the file and throws NoSpaceError naming `what` and
// `shown` (default: `path`; e.g. the final name of a temporary file), the bytes needed and the
// bytes that were free; other failures: UserError.
void write_whole_file(const std::string& what, const std::string& path, const void* data, size_t n,
                      const std::string& shown = "");

// write_whole_file to `path`.tmp, then renamed to `path` (readers never see a partial file).
void write_file_atomically(const std::string& what, const std::string& path, const void* data, size_t n);

}  // namespace mnist_dist
