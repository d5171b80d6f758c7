// Helpers shared by the proto/ unit tests (header-only; not a test binary).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "proto/bytes.h"
#include "proto/random.h"

namespace mtw::proto::testing {

// Hex literal -> bytes; a malformed literal is a bug in the test itself.
inline Bytes hex(std::string_view h) {
  Result<Bytes> r = from_hex(h);
  EXPECT_TRUE(r.has_value()) << "bad hex literal in test: " << h;
  return r ? *r : Bytes{};
}

inline Bytes random_bytes(RandomSource& rnd, std::size_t n) {
  Bytes b(n);
  rnd.fill(b);
  return b;
}

inline std::string str(ByteSpan b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// Hex literal -> exactly N bytes (a test failure when its length differs).
template <std::size_t N>
std::array<std::byte, N> hex_array(std::string_view h) {
  const Bytes b = hex(h);
  std::array<std::byte, N> a{};
  EXPECT_EQ(b.size(), N) << h;
  std::copy_n(b.begin(), std::min(N, b.size()), a.begin());
  return a;
}

// PY PROXY_SECRET, the proxy secret of the middle-proxy vectors
// (protocol.md §9; ERL src/mtp_down_conn.erl). A function-local static: no
// gtest assertion runs during static initialisation.
inline const Bytes& vector_proxy_secret() {
  static const Bytes s = hex(
      "c4f9faca9678e6bb48ad6c7e2ce5c0d24430645d554addeb55419e034da62721d046eaab6e52ab14a95a443ecf"
      "b3463e79a05a66612adf9caeda8be9a80da6986fb0a6ff387af84d88ef3a6413713e5c3377f6e1a3d47d99f5e0"
      "c56eece8f05c54c490b079e31bef82ff0ee8f2b0a32756d249c5f21269816cb7061b265db212");
  return s;
}

}  // namespace mtw::proto::testing
