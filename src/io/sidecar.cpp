// SHA-256 sidecars of models and checkpoints: writing them in a crash-safe order, and checking
// a file against its sidecar before HDF5 parses it.
#include "io/sidecar.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "data_pipeline/sha256.h"
#include "io/output_file.h"

namespace mnist_dist {
namespace fs = std::filesystem;

namespace {

constexpr size_t kDigestHex = 64;
constexpr size_t kMaxSidecarBytes = 4096;  // one line: 64 hex digits, two characters, a name

std::string base_name(const std::string& path) { return fs::path(path).filename().string(); }

void rename_or_throw(const std::string& from, const std::string& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw UserError("cannot rename " + from + " to " + to + ": " + ec.message());
}

// The digest of a sha256sum line "<64 hex>  <name>" (or " *<name>", binary mode), lower case;
// "" when `text` is not one such line. The name is informational (sha256sum -c uses it).
std::string parse_sidecar(const std::string& text) {
  if (text.size() < kDigestHex + 3 || text.back() != '\n') return "";
  std::string digest = text.substr(0, kDigestHex);
  for (char& c : digest) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return "";
  }
  if (text[kDigestHex] != ' ' || (text[kDigestHex + 1] != ' ' && text[kDigestHex + 1] != '*')) return "";
  const std::string name = text.substr(kDigestHex + 2, text.size() - kDigestHex - 3);
  if (name.empty() || name.find('\n') != std::string::npos) return "";
  return digest;
}

}  // namespace

std::string sidecar_path(const std::string& file) { return file + ".sha256"; }

bool has_sidecar(const std::string& file) {
  std::error_code ec;
  return fs::exists(sidecar_path(file), ec);
}

// The order, and why no interruption leaves a file that passes verification but is incomplete:
//   1. the bytes are written to `tmp` = "<path>.tmp" (a failure removes it); their SHA-256 is
//      computed from the same bytes in memory;
//   2. the sidecar is written to "<path>.sha256.tmp" and renamed to "<path>.sha256";
//   3. `tmp` is renamed to `path`.
// rename(2) is atomic, so a crash leaves one of: nothing new under a final name (before 2's
// rename; a stale .tmp at most, which nothing reads); a sidecar without its file (between 2 and
// 3: never listed, prune_checkpoints removes it) or, when `path` existed already (the same step
// written again), the old file with the new digest, which fails the check and is skipped; the
// complete pair (after 3). A file passes only when it holds exactly the bytes hashed in 1.
// Renaming the file last keeps its appearance the commit point, as before sidecars: every file
// this writes has its sidecar when it appears, so a missing sidecar means an older writer (or a
// deleted sidecar), never an interrupted write. No fsync: after a power loss, a file or sidecar
// whose bytes did not reach the disk fails the check, which is what the sidecar is for.
void publish_with_sidecar(const std::string& what, const std::vector<unsigned char>& bytes,
                          const std::string& path) {
  const std::string tmp = path + ".tmp";
  write_whole_file(what, tmp, bytes.data(), bytes.size(), path);
  data::Sha256 sha;
  sha.update(bytes.data(), bytes.size());
  const std::string side = sidecar_path(path);
  const std::string line = sha.hex_digest() + "  " + base_name(path) + "\n";
  try {
    write_whole_file("sidecar", side + ".tmp", line.data(), line.size(), side);
    rename_or_throw(side + ".tmp", side);
    rename_or_throw(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

SidecarCheck check_sidecar(const std::string& file, const std::string& fix) {
  const std::string side = sidecar_path(file);
  std::error_code ec;
  const fs::file_status st = fs::status(side, ec);
  if (!fs::exists(st)) return SidecarCheck::kMissing;
  const std::string bad = side + " is not a sha256sum line ('<64 hex digits>  " + base_name(file) +
                          "'), so " + base_name(file) + " cannot be verified; " + fix;
  if (!fs::is_regular_file(st) || fs::file_size(side, ec) > kMaxSidecarBytes || ec) throw UserError(bad);
  std::string text;
  {
    std::FILE* f = std::fopen(side.c_str(), "rb");
    if (f == nullptr) throw UserError(side + ": cannot open (" + std::strerror(errno) + ")");
    char buf[kMaxSidecarBytes + 1];
    const size_t n = std::fread(buf, 1, sizeof buf, f);
    std::fclose(f);
    text.assign(buf, n);
  }
  const std::string expected = parse_sidecar(text);
  if (expected.empty()) throw UserError(bad);
  const std::string actual = data::sha256_file(file);
  if (actual != expected)
    throw UserError(file + ": SHA-256 mismatch, the file is damaged or was changed after it was written (" +
                    base_name(side) + " says " + expected + ", the file's is " + actual + "); " + fix);
  return SidecarCheck::kMatches;
}

std::string unverified_warning(const std::string& file) {
  return "warning: " + file + " has no " + base_name(sidecar_path(file)) +
         " (written by an older mnist_dist?): reading it unverified";
}

}  // namespace mnist_dist
