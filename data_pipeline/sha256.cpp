// SHA-256 via OpenSSL EVP (the low-level SHA256_* calls are deprecated in OpenSSL 3).
#include "data_pipeline/sha256.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace mnist_dist::data {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  MD_CHECK(ctx_ != nullptr, "EVP_MD_CTX_new failed");
  MD_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex(sha256) failed");
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

Sha256::Sha256(Sha256&& o) noexcept : ctx_(o.ctx_) { o.ctx_ = nullptr; }

Sha256& Sha256::operator=(Sha256&& o) noexcept {
  if (this != &o) {
    EVP_MD_CTX_free(ctx_);
    ctx_ = o.ctx_;
    o.ctx_ = nullptr;
  }
  return *this;
}

void Sha256::update(const void* data, size_t size) {
  MD_CHECK(ctx_ != nullptr, "Sha256 used after move");
  if (size > 0) MD_CHECK(EVP_DigestUpdate(ctx_, data, size) == 1, "EVP_DigestUpdate failed");
}

std::string Sha256::hex_digest() {
  MD_CHECK(ctx_ != nullptr, "Sha256 used after move");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  MD_CHECK(EVP_DigestFinal_ex(ctx_, md, &len) == 1, "EVP_DigestFinal_ex failed");
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

std::string sha256_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw UserError(path + ": cannot open (" + std::strerror(errno) + ")");
  Sha256 h;
  std::vector<unsigned char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) h.update(buf.data(), n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw UserError(path + ": read error while computing its SHA-256");
  return h.hex_digest();
}

}  // namespace mnist_dist::data
