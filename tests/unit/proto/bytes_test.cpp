#include "proto/bytes.h"

#include <gtest/gtest.h>

#include "proto/random.h"
#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::random_bytes;

TEST(Hex, EncodesLowercase) {
  EXPECT_EQ(to_hex(hex("00ff10ABcd")), "00ff10abcd");
  EXPECT_EQ(to_hex({}), "");
}

TEST(Hex, DecodesEitherCase) {
  const Result<Bytes> r = from_hex("DeadBEEF");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, (Bytes{std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef}}));
}

TEST(Hex, RejectsOddLength) {
  const Result<Bytes> r = from_hex("abc");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
}

TEST(Hex, RejectsNonHexDigit) {
  EXPECT_FALSE(from_hex("0g").has_value());
  EXPECT_FALSE(from_hex("0 ").has_value());
  EXPECT_FALSE(from_hex(std::string_view("0\0", 2)).has_value());
}

TEST(Hex, RoundTripsRandomBytes) {
  SeededRandom rnd(1);
  for (int i = 0; i < 500; ++i) {
    const Bytes b = random_bytes(rnd, rnd.uniform(0, 100));
    const Result<Bytes> back = from_hex(to_hex(b));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, b);
  }
}

// RFC 4648 §10 test vectors, unpadded (our output form).
TEST(Base64, EncodesRfc4648VectorsWithoutPadding) {
  EXPECT_EQ(to_base64url(as_bytes("")), "");
  EXPECT_EQ(to_base64url(as_bytes("f")), "Zg");
  EXPECT_EQ(to_base64url(as_bytes("fo")), "Zm8");
  EXPECT_EQ(to_base64url(as_bytes("foo")), "Zm9v");
  EXPECT_EQ(to_base64url(as_bytes("foob")), "Zm9vYg");
  EXPECT_EQ(to_base64url(as_bytes("fooba")), "Zm9vYmE");
  EXPECT_EQ(to_base64url(as_bytes("foobar")), "Zm9vYmFy");
}

TEST(Base64, EncodesWithUrlAlphabet) { EXPECT_EQ(to_base64url(hex("fbffbf")), "-_-_"); }

TEST(Base64, DecodesPaddedAndUnpadded) {
  for (std::string_view text : {"Zm9vYmE=", "Zm9vYmE"}) {
    const Result<Bytes> r = from_base64(text);
    ASSERT_TRUE(r.has_value()) << text;
    EXPECT_EQ(*r, Bytes(as_bytes("fooba").begin(), as_bytes("fooba").end()));
  }
  const Result<Bytes> two = from_base64("Zg==");
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(*two, Bytes{std::byte{'f'}});
}

TEST(Base64, DecodesStandardAndUrlAlphabets) {
  const Result<Bytes> std_form = from_base64("+/+/");
  const Result<Bytes> url_form = from_base64("-_-_");
  ASSERT_TRUE(std_form.has_value());
  ASSERT_TRUE(url_form.has_value());
  EXPECT_EQ(*std_form, hex("fbffbf"));
  EXPECT_EQ(*url_form, hex("fbffbf"));
}

TEST(Base64, RejectsInvalidCharacter) {
  EXPECT_FALSE(from_base64("Zm9v!").has_value());
  EXPECT_FALSE(from_base64("Zm 9v").has_value());
  EXPECT_FALSE(from_base64("Zm=9v").has_value());
}

TEST(Base64, RejectsTruncatedQuantum) {
  const Result<Bytes> r = from_base64("Zm9vY");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kBadInput);
}

TEST(Base64, RejectsBadPadding) {
  EXPECT_FALSE(from_base64("Zg=").has_value());    // incomplete quantum
  EXPECT_FALSE(from_base64("Zm9v=").has_value());  // padding after a full quantum
  EXPECT_FALSE(from_base64("=").has_value());
  EXPECT_FALSE(from_base64("Z===").has_value());
}

TEST(Base64, RoundTripsRandomBytes) {
  SeededRandom rnd(2);
  for (int i = 0; i < 500; ++i) {
    const Bytes b = random_bytes(rnd, rnd.uniform(0, 100));
    const std::string text = to_base64url(b);
    EXPECT_EQ(text.find('='), std::string::npos);
    const Result<Bytes> back = from_base64(text);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, b);
  }
}

TEST(Integers, StoreAndLoadRoundTrip) {
  std::byte buf[4];
  store_le32(buf, 0x11223344);
  EXPECT_EQ(to_hex(buf), "44332211");
  EXPECT_EQ(load_le32(buf), 0x11223344u);
  store_be24(buf, 0xabcdef);
  EXPECT_EQ(to_hex(ByteSpan(buf, 3)), "abcdef");
  EXPECT_EQ(load_be24(buf), 0xabcdefu);
  store_be16(buf, 0x0102);
  EXPECT_EQ(load_be16(buf), 0x0102);
}

}  // namespace
}  // namespace mtw::proto
