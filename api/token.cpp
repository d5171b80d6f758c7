#include "api/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "base/check.h"
#include "base/file.h"
#include "proto/bytes.h"

namespace mtw::api {
namespace {

constexpr std::size_t kTokenBytes = 32;

bool is_hash_hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string generate_token() {
  std::array<std::byte, kTokenBytes> raw{};
  MTW_CHECK(RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), kTokenBytes) == 1);
  return "mtw_" + proto::to_base64url(raw);
}

std::string token_hash(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  MTW_CHECK(EVP_Digest(token.data(), token.size(), md.data(), &len, EVP_sha256(), nullptr) == 1);
  return proto::to_hex(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(md.data()), len));
}

bool token_matches(std::string_view token, std::string_view stored_hash_hex) {
  const std::string h = token_hash(token);
  // Both are 64 hex digits when the stored hash is valid: the length is not secret.
  if (stored_hash_hex.size() != h.size()) return false;
  return CRYPTO_memcmp(h.data(), stored_hash_hex.data(), h.size()) == 0;
}

base::Result<std::string> load_token_hash(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return base::fail(base::Errc::kNotFound, "no token file " + path);
    return base::fail_errno("cannot read token file " + path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  if (!is_hash_hex(text))
    return base::fail(base::Errc::kBadInput,
                      "token file " + path + " does not hold a lowercase hex SHA-256");
  return text;
}

base::Result<void> store_token_hash(const std::string& path, std::string_view hash_hex) {
  if (!is_hash_hex(hash_hex))
    return base::fail(base::Errc::kBadInput, "not a lowercase hex SHA-256");
  return base::write_file_atomic(path, std::string(hash_hex) + "\n", 0600,
                                 base::Durability::kFsync);
}

}  // namespace mtw::api
