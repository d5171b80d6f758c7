// Byte helpers shared by proto/: spans, hex, base64url, fixed-width integers.
// Pure functions, thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::proto {

using base::Errc;
using base::Error;
using base::Result;

using ByteSpan = std::span<const std::byte>;
using MutableByteSpan = std::span<std::byte>;
using Bytes = std::vector<std::byte>;

inline ByteSpan as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline const unsigned char* uc(ByteSpan s) noexcept {
  return reinterpret_cast<const unsigned char*>(s.data());
}
inline unsigned char* uc(MutableByteSpan s) noexcept {
  return reinterpret_cast<unsigned char*>(s.data());
}

std::string to_hex(ByteSpan in);
// Accepts upper or lower case; fails on odd length or a non-hex digit.
[[nodiscard]] Result<Bytes> from_hex(std::string_view hex);

// RFC 4648 §5 alphabet, no padding on output. Input: '-'/'_' or '+'/'/',
// padding optional (clients and mtg emit both forms).
std::string to_base64url(ByteSpan in);
[[nodiscard]] Result<Bytes> from_base64(std::string_view text);

inline std::uint16_t load_be16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[0]) << 8) |
                                    std::to_integer<unsigned>(p[1]));
}
inline std::uint32_t load_be24(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 16) |
         (std::to_integer<std::uint32_t>(p[1]) << 8) | std::to_integer<std::uint32_t>(p[2]);
}
inline std::uint32_t load_le32(const std::byte* p) noexcept {
  return std::to_integer<std::uint32_t>(p[0]) | (std::to_integer<std::uint32_t>(p[1]) << 8) |
         (std::to_integer<std::uint32_t>(p[2]) << 16) |
         (std::to_integer<std::uint32_t>(p[3]) << 24);
}
inline std::uint32_t load_be32(const std::byte* p) noexcept {
  return (std::to_integer<std::uint32_t>(p[0]) << 24) | load_be24(p + 1);
}
inline void store_be16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = std::byte(v >> 8);
  p[1] = std::byte(v & 0xff);
}
inline void store_be24(std::byte* p, std::uint32_t v) noexcept {
  p[0] = std::byte((v >> 16) & 0xff);
  p[1] = std::byte((v >> 8) & 0xff);
  p[2] = std::byte(v & 0xff);
}
inline void store_be32(std::byte* p, std::uint32_t v) noexcept {
  p[0] = std::byte(v >> 24);
  store_be24(p + 1, v & 0xffffff);
}
inline void store_le32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = std::byte((v >> (8 * i)) & 0xff);
}

}  // namespace mtw::proto
