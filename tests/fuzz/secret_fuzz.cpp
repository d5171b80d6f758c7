// Fuzzes parse_secret and checks parse -> format -> parse is the identity
// for both output formats. Aborts (a finding) on any property violation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "proto/secret.h"

namespace {

bool credential_like(std::string_view s) {
  if (s.size() < 16) return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/' || c == '-' || c == '_' || c == '=';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace mtw::proto;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_secret(text);
  if (!parsed) {
    // Error texts are fixed phrases; a credential-looking input must never appear in them.
    if (credential_like(text) && parsed.error().to_string().find(text) != std::string::npos) {
      std::abort();
    }
    return 0;
  }
  if (parsed->kind == SecretKind::kFakeTls && !valid_tls_domain(parsed->domain)) std::abort();
  if (parsed->kind != SecretKind::kFakeTls && !parsed->domain.empty()) std::abort();
  for (const std::string& formatted : {format_hex(*parsed), format_base64url(*parsed)}) {
    const auto again = parse_secret(formatted);
    if (!again || !(*again == *parsed)) std::abort();
  }
  return 0;
}
