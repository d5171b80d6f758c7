// The API bearer token: 32 random bytes, base64url, shown to the operator
// once; only its SHA-256 (hex) is stored (state_dir/api_token.sha256, 0600).
// Thread-safe: pure functions and plain file I/O.
#pragma once

#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::api {

std::string generate_token();                    // "mtw_" + 43 base64url chars
std::string token_hash(std::string_view token);  // lowercase hex SHA-256
// Constant-time comparison of hash(token) with `stored_hash_hex`.
bool token_matches(std::string_view token, std::string_view stored_hash_hex);

// Reads the stored hash; kNotFound when the file does not exist.
[[nodiscard]] base::Result<std::string> load_token_hash(const std::string& path);
// Writes atomically (temp file + rename), mode 0600.
[[nodiscard]] base::Result<void> store_token_hash(const std::string& path,
                                                  std::string_view hash_hex);

}  // namespace mtw::api
