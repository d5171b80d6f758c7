// Fake-TLS ClientHello vectors from 9seconds/mtg (../shared/vectors/mtg,
// see its README): ok hellos validate at their own time and give the same
// fields mtg extracted; the bad one fails the HMAC; GREASE is skipped.
#include <gtest/gtest.h>

#include <boost/json/src.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "proto/fake_tls.h"
#include "proto/secret.h"

namespace mtw::proto {
namespace {

constexpr std::string_view kSecretHex =
    "ee367a189aee18fa31c190054efd4a8e9573746f726167652e676f6f676c65617069732e636f6d";

struct HelloVector {
  std::string name;
  Bytes full, random, session_id;
  std::string host;
  std::uint16_t cipher_suite = 0;
  std::int64_t time = 0;
};

Bytes b64(const boost::json::value& v) {
  auto r = from_base64(std::string_view(v.as_string()));
  EXPECT_TRUE(r.has_value()) << v;
  return r ? *r : Bytes{};
}

std::vector<HelloVector> load_vectors() {
  std::vector<HelloVector> out;
  const std::filesystem::path dir = std::filesystem::path(MTW_SHARED_VECTORS_DIR) / "mtg";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("client-hello-", 0) != 0) continue;
    std::ifstream f(entry.path());
    std::stringstream ss;
    ss << f.rdbuf();
    const auto obj = boost::json::parse(ss.str()).as_object();
    HelloVector v;
    v.name = name;
    v.full = b64(obj.at("full"));
    v.random = b64(obj.at("random"));
    v.session_id = b64(obj.at("sessionId"));
    v.host = std::string(obj.at("host").as_string());
    v.cipher_suite = static_cast<std::uint16_t>(obj.at("cipherSuite").to_number<int>());
    v.time = obj.at("time").to_number<std::int64_t>();
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.name < b.name; });
  return out;
}

const std::vector<HelloVector>& vectors() {
  static const auto v = load_vectors();
  return v;
}

Secret mtg_secret() {
  auto s = parse_secret(kSecretHex);
  EXPECT_TRUE(s.has_value());
  return s ? *s : Secret{};
}

bool is_ok(const HelloVector& v) { return v.name.find("-ok-") != std::string::npos; }

TEST(MtgTlsVectors, SecretIsTheStorageGoogleapisOne) {
  const Secret s = mtg_secret();
  EXPECT_EQ(s.kind, SecretKind::kFakeTls);
  EXPECT_EQ(s.domain, "storage.googleapis.com");
  EXPECT_EQ(to_hex(s.key), "367a189aee18fa31c190054efd4a8e95");
}

TEST(MtgTlsVectors, AllSevenFilesArePresent) {
  std::size_t ok = 0, bad = 0;
  for (const auto& v : vectors()) (is_ok(v) ? ok : bad)++;
  EXPECT_EQ(ok, 6u);
  EXPECT_EQ(bad, 1u);
}

TEST(MtgTlsVectors, OkHellosValidateAtTheirTimeWithMtgFields) {
  const Secret secret = mtg_secret();
  for (const auto& v : vectors()) {
    if (!is_ok(v)) continue;
    SCOPED_TRACE(v.name);
    auto hello = parse_client_hello(v.full);
    ASSERT_TRUE(hello.has_value()) << hello.error().to_string();
    EXPECT_EQ(hello->consumed, v.full.size());
    EXPECT_EQ(Bytes(hello->random.begin(), hello->random.end()), v.random);
    EXPECT_EQ(Bytes(hello->session_id.begin(), hello->session_id.begin() + hello->session_id_len),
              v.session_id);
    EXPECT_EQ(hello->cipher_suite, v.cipher_suite);
    EXPECT_EQ(hello->sni, v.host);
    EXPECT_TRUE(check_sni(*hello, secret.domain).has_value());

    auto ts = validate_client_hello(*hello, secret.key,
                                    ClockWindow{.now = v.time, .max_skew_seconds = 0});
    ASSERT_TRUE(ts.has_value()) << ts.error().to_string();
    EXPECT_EQ(*ts, static_cast<std::uint32_t>(v.time));
  }
}

TEST(MtgTlsVectors, OkHellosAreOutsideAWindowAnHourLater) {
  const Secret secret = mtg_secret();
  for (const auto& v : vectors()) {
    if (!is_ok(v)) continue;
    auto hello = parse_client_hello(v.full);
    ASSERT_TRUE(hello.has_value());
    auto ts = validate_client_hello(*hello, secret.key, ClockWindow{.now = v.time + 3600});
    ASSERT_FALSE(ts.has_value());
    EXPECT_EQ(ts.error().code, Errc::kClockSkew) << v.name;
  }
}

TEST(MtgTlsVectors, BadHelloFailsTheHmac) {
  const Secret secret = mtg_secret();
  for (const auto& v : vectors()) {
    if (is_ok(v)) continue;
    auto hello = parse_client_hello(v.full);
    ASSERT_TRUE(hello.has_value()) << hello.error().to_string();
    auto ts = validate_client_hello(*hello, secret.key, ClockWindow{.now = v.time});
    ASSERT_FALSE(ts.has_value());
    EXPECT_EQ(ts.error().code, Errc::kBadHandshake);
    EXPECT_FALSE(client_hello_timestamp(*hello, secret.key).has_value());
  }
}

TEST(MtgTlsVectors, GreaseFirstHelloSkipsTheGreaseSuite) {
  const auto it = std::find_if(vectors().begin(), vectors().end(), [](auto& v) {
    return v.name == "client-hello-ok-grease-first.json";
  });
  ASSERT_NE(it, vectors().end());
  // Suites start after header(5) + type/len(4) + version(2) + random(32) + sid.
  const std::size_t suites = 5 + 4 + 2 + 32 + 1 + it->session_id.size() + 2;
  const std::uint16_t first = load_be16(it->full.data() + suites);
  EXPECT_EQ(first & 0x0f0f, 0x0a0a) << "first offered suite must be GREASE";
  auto hello = parse_client_hello(it->full);
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->cipher_suite, 0x1303);
}

TEST(MtgTlsVectors, WrongKeyFailsEveryOkHello) {
  SecretKey other = mtg_secret().key;
  other[0] ^= std::byte{1};
  for (const auto& v : vectors()) {
    auto hello = parse_client_hello(v.full);
    ASSERT_TRUE(hello.has_value());
    EXPECT_FALSE(client_hello_timestamp(*hello, other).has_value()) << v.name;
  }
}

}  // namespace
}  // namespace mtw::proto
