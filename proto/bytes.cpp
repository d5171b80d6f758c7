// Hex and base64 codecs for secrets and test vectors. Error contexts name the
// problem only: the decoded text is usually a secret and must not leak into logs.
#include "proto/bytes.h"

#include <cstdint>

namespace mtw::proto {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Both alphabets decode: '+'/'-' are 62 and '/'/'_' are 63.
int base64_value(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

}  // namespace

std::string to_hex(ByteSpan in) {
  std::string out;
  out.reserve(in.size() * 2);
  for (std::byte b : in) {
    const auto v = std::to_integer<unsigned>(b);
    out.push_back(kHexDigits[v >> 4]);
    out.push_back(kHexDigits[v & 0xf]);
  }
  return out;
}

Result<Bytes> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return base::fail(Errc::kBadInput, "hex: odd number of digits");
  Bytes out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return base::fail(Errc::kBadInput, "hex: invalid digit");
    out.push_back(std::byte((hi << 4) | lo));
  }
  return out;
}

std::string to_base64url(ByteSpan in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const std::uint32_t v = (std::to_integer<std::uint32_t>(in[i]) << 16) |
                            (std::to_integer<std::uint32_t>(in[i + 1]) << 8) |
                            std::to_integer<std::uint32_t>(in[i + 2]);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
    out.push_back(kBase64Url[v & 63]);
  }
  const std::size_t rest = in.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::to_integer<std::uint32_t>(in[i]) << 16;
    if (rest == 2) v |= std::to_integer<std::uint32_t>(in[i + 1]) << 8;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    if (rest == 2) out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

Result<Bytes> from_base64(std::string_view text) {
  // Padding is optional, but if present it must complete the last quantum.
  std::size_t pad = 0;
  while (pad < text.size() && pad < 2 && text[text.size() - 1 - pad] == '=') ++pad;
  const std::string_view body = text.substr(0, text.size() - pad);
  if (pad > 0 && text.size() % 4 != 0) return base::fail(Errc::kBadInput, "base64: bad padding");
  if (body.size() % 4 == 1) return base::fail(Errc::kBadInput, "base64: truncated input");
  if (pad > 0 && (body.size() % 4) + pad != 4) {
    return base::fail(Errc::kBadInput, "base64: bad padding");
  }
  Bytes out;
  out.reserve(body.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : body) {
    const int v = base64_value(c);
    if (v < 0) return base::fail(Errc::kBadInput, "base64: invalid character");
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(std::byte((acc >> bits) & 0xff));
    }
  }
  // Leftover bits (2 or 4) are ignored like Go's and TD's lenient decoders do;
  // a secret with non-zero slack bits still names the same bytes.
  return out;
}

}  // namespace mtw::proto
