// SHA-256 through OpenSSL's EVP interface: an incremental hasher and a whole-file helper,
// used for the source-file and shard checksums recorded in manifest.json.
#pragma once

#include <cstddef>
#include <string>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace mnist_dist::data {

// Incremental SHA-256. Move-only (owns an EVP_MD_CTX).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&& o) noexcept;
  Sha256& operator=(Sha256&& o) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  // The digest as 64 lower-case hex digits; the hasher cannot be updated afterwards.
  std::string hex_digest();

 private:
  EVP_MD_CTX* ctx_ = nullptr;
};

// SHA-256 of a file's bytes as stored (a .gz file is hashed compressed). UserError if unreadable.
std::string sha256_file(const std::string& path);

}  // namespace mnist_dist::data
