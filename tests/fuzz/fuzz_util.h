// Shared pieces of the libFuzzer targets: fatal() turned into a crash the fuzzer records, an
// in-memory file (memfd) with a path, a scratch folder on tmpfs, and seed-corpus writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace mnist_dist::fuzz {

// fatal() (an HDF5 call that failed, a broken invariant) normally ends the process with exit 1,
// which libFuzzer would not notice; on bad input it is a bug (a UserError is expected), so make
// it abort() after its message, which the fuzzer reports with the input and a stack.
// With MD_FUZZ_FATAL=throw (exploration only, never in CI) it throws FatalCalled instead, which
// the targets catch, so that fuzzing goes on past a known fatal() path to find the next one.
void make_fatal_abort();
struct FatalCalled {};

// A file that lives in memory (memfd_create), reachable by path (/proc/self/fd/N) for readers
// that want one. Rewritten for every input.
class MemFile {
 public:
  explicit MemFile(const char* name);
  ~MemFile();
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  void write(const uint8_t* data, size_t size);
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// A fresh folder under $MD_FUZZ_SCRATCH, else on tmpfs (/dev/shm when writable, else $TMPDIR or
// /tmp), removed at a normal exit (not after a crash: launch/fuzz.sh removes its scratch root).
std::string scratch_dir(const char* tag);

// Replaces a file's contents (UserError-free: aborts on an I/O failure, which is not the input's).
void write_file(const std::string& path, const void* data, size_t size);
std::string read_file(const std::string& path);

// When MD_FUZZ_WRITE_SEEDS=DIR is set, the target writes its seed corpus into DIR during
// initialization and exits; tests/fuzz/make_corpus.sh uses this.
const char* seed_dir();
void write_seed(const std::string& name, const std::string& bytes);

// A gzip stream of `raw` (zlib, default level).
std::string gzip(const std::string& raw);

}  // namespace mnist_dist::fuzz
