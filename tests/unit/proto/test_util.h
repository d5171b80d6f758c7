// Helpers shared by the proto/ unit tests (header-only; not a test binary).
#pragma once

#include <gtest/gtest.h>

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

}  // namespace mtw::proto::testing
