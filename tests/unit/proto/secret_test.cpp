#include "proto/secret.h"

#include <gtest/gtest.h>

#include <string>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

constexpr std::string_view kKeyHex = "367a189aee18fa31c190054efd4a8e95";
// protocol.md §9 / mtg client_side_snapshot_test.go.
constexpr std::string_view kTlsHex =
    "ee367a189aee18fa31c190054efd4a8e9573746f726167652e676f6f676c65617069732e636f6d";

SecretKey key_of(std::string_view h) {
  SecretKey k{};
  const Bytes b = hex(h);
  std::copy(b.begin(), b.end(), k.begin());
  return k;
}

TEST(ParseSecret, AcceptsPlainHex) {
  const Result<Secret> s = parse_secret(kKeyHex);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->kind, SecretKind::kSimple);
  EXPECT_EQ(s->key, key_of(kKeyHex));
  EXPECT_TRUE(s->domain.empty());
}

TEST(ParseSecret, AcceptsUppercaseHex) {
  const Result<Secret> s = parse_secret("367A189AEE18FA31C190054EFD4A8E95");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->key, key_of(kKeyHex));
}

TEST(ParseSecret, AcceptsDdHex) {
  const Result<Secret> s = parse_secret("dd" + std::string(kKeyHex));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->kind, SecretKind::kSecure);
  EXPECT_EQ(s->key, key_of(kKeyHex));
}

TEST(ParseSecret, AcceptsEeHexWithDomain) {
  const Result<Secret> s = parse_secret(kTlsHex);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->kind, SecretKind::kFakeTls);
  EXPECT_EQ(s->key, key_of(kKeyHex));
  EXPECT_EQ(s->domain, "storage.googleapis.com");
}

TEST(ParseSecret, AcceptsBase64UrlAndStandardForms) {
  // mtg's vector file carries this key as standard base64 without padding.
  for (std::string_view text :
       {"NnoYmu4Y+jHBkAVO/UqOlQ", "NnoYmu4Y-jHBkAVO_UqOlQ", "NnoYmu4Y+jHBkAVO/UqOlQ=="}) {
    const Result<Secret> s = parse_secret(text);
    ASSERT_TRUE(s.has_value()) << text;
    EXPECT_EQ(s->kind, SecretKind::kSimple);
    EXPECT_EQ(s->key, key_of(kKeyHex));
  }
}

TEST(ParseSecret, AcceptsBase64OfFakeTlsSecret) {
  const std::string text = to_base64url(hex(kTlsHex));
  const Result<Secret> s = parse_secret(text);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->kind, SecretKind::kFakeTls);
  EXPECT_EQ(s->domain, "storage.googleapis.com");
}

struct BadCase {
  const char* name;
  std::string text;
};

TEST(ParseSecret, RejectsMalformedInputWithBadInput) {
  const std::string key(kKeyHex);
  const BadCase cases[] = {
      {"empty", ""},
      {"15 bytes", key.substr(0, 30)},
      {"simple with extra byte", key + "00"},
      {"dd too long", "dd" + key + "00"},
      {"unknown prefix", "ab" + key},
      {"ee without domain", "ee" + key},
      {"ee domain with space", "ee" + key + "6120"},
      {"ee domain with NUL", "ee" + key + "6100"},
      {"ee domain too long", "ee" + key + std::string(183 * 2, '6')},
      {"not hex nor base64", "zz!!"},
      {"base64 of 20 bytes", to_base64url(Bytes(20))},
  };
  for (const BadCase& c : cases) {
    const Result<Secret> s = parse_secret(c.text);
    ASSERT_FALSE(s.has_value()) << c.name;
    EXPECT_EQ(s.error().code, Errc::kBadInput) << c.name;
  }
}

TEST(ParseSecret, AcceptsLongestAllowedDomain) {
  const std::string text = "ee" + std::string(kKeyHex) + std::string(182 * 2, '6');
  const Result<Secret> s = parse_secret(text);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->domain, std::string(182, 'f'));
}

TEST(ParseSecret, ErrorNeverContainsTheSecret) {
  const std::string key(kKeyHex);
  for (const std::string& text :
       {"dd" + key + "00", "ab" + key, "ee" + key + "6120", key + "zz", key.substr(0, 30)}) {
    const Result<Secret> s = parse_secret(text);
    ASSERT_FALSE(s.has_value());
    const std::string msg = s.error().to_string();
    EXPECT_EQ(msg.find(key.substr(0, 8)), std::string::npos) << msg;
    EXPECT_EQ(msg.find(text), std::string::npos) << msg;
  }
}

TEST(FormatSecret, PrintsHexAndBase64Url) {
  const Result<Secret> s = parse_secret(kTlsHex);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(format_hex(*s), kTlsHex);
  EXPECT_EQ(format_base64url(*s), to_base64url(hex(kTlsHex)));
  EXPECT_EQ(format_base64url(*s).find('='), std::string::npos);
}

TEST(FormatSecret, WireBytesCarryKindMarker) {
  Secret s;
  s.key = key_of(kKeyHex);
  EXPECT_EQ(secret_bytes(s).size(), 16u);
  s.kind = SecretKind::kSecure;
  EXPECT_EQ(to_hex(secret_bytes(s)), "dd" + std::string(kKeyHex));
}

// Property: parse(format(s)) == s for random secrets of every kind, both formats.
TEST(FormatSecret, RoundTripsRandomSecretsInBothFormats) {
  SeededRandom rnd(7);
  const std::string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-";
  for (int i = 0; i < 600; ++i) {
    const auto kind = static_cast<SecretKind>(i % 3);
    std::string domain;
    if (kind == SecretKind::kFakeTls) {
      const std::uint32_t len = rnd.uniform(1, 182);
      for (std::uint32_t j = 0; j < len; ++j) {
        domain.push_back(alphabet[rnd.uniform(0, static_cast<std::uint32_t>(alphabet.size() - 1))]);
      }
    }
    const Result<Secret> s = generate_secret(kind, domain, rnd);
    ASSERT_TRUE(s.has_value());
    for (const std::string& text : {format_hex(*s), format_base64url(*s)}) {
      const Result<Secret> back = parse_secret(text);
      ASSERT_TRUE(back.has_value()) << "kind " << i % 3;
      EXPECT_EQ(*back, *s);
    }
  }
}

TEST(GenerateSecret, ProducesFreshKeysOfRequestedKind) {
  const Result<Secret> a = generate_secret(SecretKind::kFakeTls, "example.com");
  const Result<Secret> b = generate_secret(SecretKind::kFakeTls, "example.com");
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->kind, SecretKind::kFakeTls);
  EXPECT_EQ(a->domain, "example.com");
  EXPECT_NE(a->key, b->key);
}

TEST(GenerateSecret, RejectsBadOrMisplacedDomain) {
  EXPECT_FALSE(generate_secret(SecretKind::kFakeTls, "").has_value());
  EXPECT_FALSE(generate_secret(SecretKind::kFakeTls, "bad_domain").has_value());
  EXPECT_FALSE(generate_secret(SecretKind::kSimple, "example.com").has_value());
}

TEST(ValidTlsDomain, ChecksLengthAndCharacters) {
  EXPECT_TRUE(valid_tls_domain("a"));
  EXPECT_TRUE(valid_tls_domain("storage.googleapis.com"));
  EXPECT_TRUE(valid_tls_domain(std::string(182, 'x')));
  EXPECT_FALSE(valid_tls_domain(std::string(183, 'x')));
  EXPECT_FALSE(valid_tls_domain(""));
  EXPECT_FALSE(valid_tls_domain("a b"));
  EXPECT_FALSE(valid_tls_domain("a/b"));
  EXPECT_FALSE(valid_tls_domain("\xc3\xa9.com"));
}

}  // namespace
}  // namespace mtw::proto
