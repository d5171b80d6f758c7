// Fake TLS: ClientHello scan/parse/validate (incl. fragmentation), the
// server answer, and the data-phase record layer.
#include "proto/fake_tls.h"

#include <gtest/gtest.h>

#include <set>

#include "proto/tls_crypto.h"
#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;
using testing::random_bytes;

constexpr std::int64_t kNow = 1'700'000'000;

Secret tls_secret(std::uint64_t seed, std::string domain = "www.example.com") {
  SeededRandom rnd(seed);
  Secret s;
  rnd.fill(s.key);
  s.kind = SecretKind::kFakeTls;
  s.domain = std::move(domain);
  return s;
}

Bytes hello_for(const Secret& s, std::int64_t now = kNow, std::uint64_t seed = 7) {
  SeededRandom rnd(seed);
  return build_client_hello(s, now, rnd);
}

// Re-splits a one-record hello into `n` records of random sizes (>= 1 byte).
Bytes fragment(ByteSpan record, std::size_t n, std::uint64_t seed) {
  const ByteSpan payload = record.subspan(kTlsHeaderSize);
  SeededRandom rnd(seed);
  std::vector<std::size_t> cuts{0, payload.size()};
  while (cuts.size() < n + 1) {
    const std::size_t c = rnd.uniform(1, static_cast<std::uint32_t>(payload.size() - 1));
    if (std::find(cuts.begin(), cuts.end(), c) == cuts.end()) cuts.push_back(c);
  }
  std::sort(cuts.begin(), cuts.end());
  Bytes out;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    const std::size_t len = cuts[i + 1] - cuts[i];
    for (unsigned b : {0x16u, 0x03u, 0x01u, unsigned(len >> 8), unsigned(len & 0xff)}) {
      out.push_back(std::byte(b));
    }
    out.insert(out.end(), payload.begin() + cuts[i], payload.begin() + cuts[i + 1]);
  }
  return out;
}

// --- ClientHello --------------------------------------------------------

TEST(ClientHello, BuiltHelloIs517BytesAndValidates) {
  const Secret s = tls_secret(1);
  const Bytes rec = hello_for(s);
  EXPECT_EQ(rec.size(), 517u);
  auto hello = parse_client_hello(rec);
  ASSERT_TRUE(hello.has_value()) << hello.error().to_string();
  EXPECT_EQ(hello->consumed, 517u);
  EXPECT_EQ(hello->sni, "www.example.com");
  EXPECT_EQ(hello->session_id_len, 32u);
  EXPECT_EQ(hello->cipher_suite, 0x1301);  // the GREASE suite before it is skipped
  auto ts = validate_client_hello(*hello, s.key, ClockWindow{.now = kNow, .max_skew_seconds = 0});
  ASSERT_TRUE(ts.has_value()) << ts.error().to_string();
  EXPECT_EQ(*ts, static_cast<std::uint32_t>(kNow));
}

TEST(ClientHello, HmacInputIsTheRecordWithRandomZeroed) {
  const Bytes rec = hello_for(tls_secret(1));
  auto hello = parse_client_hello(rec);
  ASSERT_TRUE(hello.has_value());
  Bytes expect = rec;
  std::fill(expect.begin() + 11, expect.begin() + 43, std::byte{0});
  EXPECT_EQ(hello->hmac_input, expect);
  EXPECT_TRUE(std::equal(hello->random.begin(), hello->random.end(), rec.begin() + 11));
}

TEST(ClientHello, LongestDomainStillFitsIn517Bytes) {
  const Secret s = tls_secret(2, std::string(170, 'a') + ".example.com");  // 182: client cap
  const Bytes rec = hello_for(s);
  EXPECT_EQ(rec.size(), 517u);
  auto hello = parse_client_hello(rec);
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->sni, s.domain);
  EXPECT_TRUE(validate_client_hello(*hello, s.key, ClockWindow{.now = kNow}).has_value());
}

TEST(ClientHello, FragmentedIntoTwoToTenRecordsValidatesLikeOne) {
  const Secret s = tls_secret(3);
  const Bytes rec = hello_for(s);
  auto whole = parse_client_hello(rec);
  ASSERT_TRUE(whole.has_value());
  for (std::size_t n = 2; n <= kMaxClientHelloFragments; ++n) {
    for (std::uint64_t seed = 0; seed < 5; ++seed) {
      const Bytes frag = fragment(rec, n, seed * 100 + n);
      ASSERT_EQ(frag.size(), rec.size() + (n - 1) * kTlsHeaderSize);
      auto hello = parse_client_hello(frag);
      ASSERT_TRUE(hello.has_value()) << "n=" << n << ": " << hello.error().to_string();
      EXPECT_EQ(hello->consumed, frag.size());
      EXPECT_EQ(hello->hmac_input, whole->hmac_input) << "n=" << n;
      EXPECT_EQ(hello->random, whole->random);
      EXPECT_EQ(hello->sni, whole->sni);
      EXPECT_TRUE(validate_client_hello(*hello, s.key, ClockWindow{.now = kNow}).has_value());
    }
  }
}

TEST(ClientHello, SplitInsideTheHandshakeHeaderIsReassembled) {
  const Secret s = tls_secret(4);
  const Bytes rec = hello_for(s);
  for (std::size_t first = 1; first <= 3; ++first) {
    Bytes frag = hex("1603010000");
    frag[4] = std::byte(first);
    frag.insert(frag.end(), rec.begin() + 5, rec.begin() + 5 + first);
    const std::size_t rest = rec.size() - 5 - first;
    for (unsigned b : {0x16u, 0x03u, 0x01u, unsigned(rest >> 8), unsigned(rest & 0xff)}) {
      frag.push_back(std::byte(b));
    }
    frag.insert(frag.end(), rec.begin() + 5 + first, rec.end());
    auto hello = parse_client_hello(frag);
    ASSERT_TRUE(hello.has_value()) << first;
    EXPECT_TRUE(validate_client_hello(*hello, s.key, ClockWindow{.now = kNow}).has_value());
  }
}

TEST(ClientHello, ElevenFragmentsAreRejected) {
  const Bytes frag = fragment(hello_for(tls_secret(5)), 11, 1);
  auto scan = scan_client_hello(frag);
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, Errc::kBadInput);
}

TEST(ClientHello, ScanNeedsMoreUntilTheLastByte) {
  const Bytes frag = fragment(hello_for(tls_secret(6)), 3, 9);
  for (std::size_t k = 0; k < frag.size(); ++k) {
    auto scan = scan_client_hello(ByteSpan(frag).first(k));
    ASSERT_TRUE(scan.has_value()) << k;
    ASSERT_FALSE(scan->complete) << k;
    ASSERT_GT(scan->needed, k);
    ASSERT_LE(scan->needed, frag.size());
    auto parsed = parse_client_hello(ByteSpan(frag).first(k));
    ASSERT_EQ(parsed.error().code, Errc::kShortInput);
  }
  auto scan = scan_client_hello(frag);
  ASSERT_TRUE(scan.has_value());
  EXPECT_TRUE(scan->complete);
  EXPECT_EQ(scan->needed, frag.size());
}

TEST(ClientHello, TrailingBytesAfterTheHelloAreNotConsumed) {
  Bytes rec = hello_for(tls_secret(6));
  const std::size_t n = rec.size();
  for (unsigned b : {0x14u, 0x03u, 0x03u, 0x00u, 0x01u, 0x01u}) rec.push_back(std::byte(b));
  auto hello = parse_client_hello(rec);
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ(hello->consumed, n);
}

TEST(ClientHello, NonTlsIsRejectedFromTheFirstBytes) {
  for (const char* h : {"47", "1602", "160303", "17030100"}) {
    auto scan = scan_client_hello(hex(h));
    ASSERT_FALSE(scan.has_value()) << h;
    EXPECT_EQ(scan.error().code, Errc::kBadInput) << h;
  }
  // Handshake type 02 (ServerHello) is not a ClientHello.
  EXPECT_FALSE(scan_client_hello(hex("160301020002")).has_value());
}

TEST(ClientHello, HandshakeUnder512BytesIsRejected) {
  // Record of 0x1fc bytes whose handshake claims 0x1f8 = 504 bytes (+4 header = 508).
  auto scan = scan_client_hello(hex("16030101fc010001f8"));
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, Errc::kBadInput);
  // Exactly 512 is fine so far.
  auto ok = scan_client_hello(hex("1603010200010001fc"));
  ASSERT_TRUE(ok.has_value());
  EXPECT_FALSE(ok->complete);
  EXPECT_EQ(ok->needed, 517u);
}

TEST(ClientHello, RecordRunningPastTheHandshakeIsRejected) {
  auto scan = scan_client_hello(hex("1603010300010001fc"));
  ASSERT_FALSE(scan.has_value());
  EXPECT_EQ(scan.error().code, Errc::kBadInput);
}

TEST(ClientHello, TruncatedBodyIsBadInput) {
  Bytes rec = hello_for(tls_secret(7));
  rec[43] = std::byte{33};  // session id length 33 > 32
  auto hello = parse_client_hello(rec);
  ASSERT_FALSE(hello.has_value());
  EXPECT_EQ(hello.error().code, Errc::kBadInput);
}

TEST(ClientHello, WrongKeyFailsWithBadHandshake) {
  const Bytes rec = hello_for(tls_secret(8));
  auto hello = parse_client_hello(rec);
  ASSERT_TRUE(hello.has_value());
  auto ts = validate_client_hello(*hello, tls_secret(9).key, ClockWindow{.now = kNow});
  ASSERT_FALSE(ts.has_value());
  EXPECT_EQ(ts.error().code, Errc::kBadHandshake);
}

TEST(ClientHello, ClockWindowIsInclusiveOnBothSides) {
  const Secret s = tls_secret(10);
  auto hello = parse_client_hello(hello_for(s));
  ASSERT_TRUE(hello.has_value());
  for (std::int64_t d : {-600, 0, 600}) {
    EXPECT_TRUE(validate_client_hello(*hello, s.key, ClockWindow{.now = kNow + d}).has_value())
        << d;
  }
  for (std::int64_t d : {-601, 601, 86400}) {
    auto ts = validate_client_hello(*hello, s.key, ClockWindow{.now = kNow + d});
    ASSERT_FALSE(ts.has_value()) << d;
    EXPECT_EQ(ts.error().code, Errc::kClockSkew);
  }
}

TEST(ClientHello, TimeSinceBootIsAcceptedBelowTheThreshold) {
  const Secret s = tls_secret(11);
  auto hello = parse_client_hello(hello_for(s, /*now=*/3600));
  ASSERT_TRUE(hello.has_value());
  ClockWindow clock{.now = kNow, .max_skew_seconds = 600, .accept_below = 0};
  EXPECT_FALSE(validate_client_hello(*hello, s.key, clock).has_value());
  clock.accept_below = 86'400'000;
  auto ts = validate_client_hello(*hello, s.key, clock);
  ASSERT_TRUE(ts.has_value());
  EXPECT_EQ(*ts, 3600u);
}

TEST(ClientHello, SniCheckIsCaseInsensitive) {
  auto hello = parse_client_hello(hello_for(tls_secret(12, "Www.Example.COM")));
  ASSERT_TRUE(hello.has_value());
  EXPECT_TRUE(check_sni(*hello, "www.example.com").has_value());
  auto wrong = check_sni(*hello, "www.example.org");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code, Errc::kWrongSni);
  EXPECT_FALSE(check_sni(*hello, "www.example.co").has_value());
}

TEST(ClientHello, MissingSniFailsTheSniCheck) {
  auto hello = parse_client_hello(hello_for(tls_secret(13, "")));
  ASSERT_TRUE(hello.has_value());
  EXPECT_FALSE(hello->sni.has_value());
  auto r = check_sni(*hello, "www.example.com");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kWrongSni);
}

// --- Server answer --------------------------------------------------------

TEST(TlsCrypto, X25519MatchesRfc7748Alice) {
  const Bytes priv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const auto pub = x25519_public_key(std::span<const std::byte, 32>(priv.data(), 32));
  EXPECT_EQ(to_hex(pub), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
}

TEST(TlsCrypto, HmacSha256MatchesRfc4231Case2) {
  const auto mac =
      hmac_sha256(as_bytes("Jefe"), {as_bytes("what do ya want "), as_bytes("for nothing?")});
  EXPECT_EQ(to_hex(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

struct Answer {
  ClientHello hello;
  Bytes bytes;
};

Answer answer_for(const Secret& s, ServerHelloOptions opts, std::uint64_t seed) {
  auto hello = parse_client_hello(hello_for(s));
  EXPECT_TRUE(hello.has_value());
  SeededRandom rnd(seed);
  Bytes bytes = build_server_hello(*hello, s.key, opts, rnd);
  return {std::move(*hello), std::move(bytes)};
}

TEST(ServerHello, LayoutFollowsTheOfficialProxy) {
  const Secret s = tls_secret(20);
  const auto a = answer_for(s, {.app_data_min = 100, .app_data_max = 100}, 1);
  ASSERT_EQ(a.bytes.size(), 127u + 6 + 5 + 100);
  const ByteSpan b = a.bytes;
  EXPECT_EQ(to_hex(b.first(11)), "160303007a020000760303");
  EXPECT_EQ(b[43], std::byte{32});
  EXPECT_TRUE(std::equal(a.hello.session_id.begin(), a.hello.session_id.end(), b.begin() + 44));
  // suite echo, no compression, 46 bytes of extensions, key_share x25519.
  EXPECT_EQ(to_hex(b.subspan(76, 13)),
            "1301"
            "00"
            "002e"
            "00330024001d0020");
  EXPECT_EQ(to_hex(b.subspan(121, 6)), "002b00020304");
  EXPECT_EQ(to_hex(b.subspan(127, 11)),
            "140303000101"
            "1703030064");
}

TEST(ServerHello, VerifiesWithTheClientSideCheck) {
  const Secret s = tls_secret(21);
  const auto a = answer_for(s, {}, 2);
  auto n = verify_server_hello(a.bytes, a.hello.random, s.key);
  ASSERT_TRUE(n.has_value()) << n.error().to_string();
  EXPECT_EQ(*n, a.bytes.size());
}

TEST(ServerHello, TamperingOrAnotherKeyFailsVerification) {
  const Secret s = tls_secret(22);
  const auto a = answer_for(s, {}, 3);
  for (std::size_t at : {std::size_t{11}, std::size_t{60}, std::size_t{100}, a.bytes.size() - 1}) {
    Bytes t = a.bytes;
    t[at] ^= std::byte{0x01};
    auto r = verify_server_hello(t, a.hello.random, s.key);
    ASSERT_FALSE(r.has_value()) << at;
    EXPECT_EQ(r.error().code, Errc::kBadHandshake);
  }
  EXPECT_FALSE(verify_server_hello(a.bytes, a.hello.random, tls_secret(23).key).has_value());
}

TEST(ServerHello, TruncatedAnswerNeedsMore) {
  const Secret s = tls_secret(24);
  const auto a = answer_for(s, {}, 4);
  for (std::size_t k : {std::size_t{0}, std::size_t{4}, std::size_t{130}, a.bytes.size() - 1}) {
    auto r = verify_server_hello(ByteSpan(a.bytes).first(k), a.hello.random, s.key);
    ASSERT_FALSE(r.has_value()) << k;
    EXPECT_EQ(r.error().code, Errc::kShortInput) << k;
  }
}

TEST(ServerHello, KeyShareIsTheX25519PointOfItsPrivateKey) {
  // The answer's key share must differ per answer and be a derived public key,
  // i.e. never the raw random bytes that precede it in the stream.
  const Secret s = tls_secret(25);
  const auto a1 = answer_for(s, {}, 5);
  const auto a2 = answer_for(s, {}, 6);
  const ByteSpan k1 = ByteSpan(a1.bytes).subspan(89, 32);
  const ByteSpan k2 = ByteSpan(a2.bytes).subspan(89, 32);
  EXPECT_FALSE(std::equal(k1.begin(), k1.end(), k2.begin()));
  EXPECT_NE(to_hex(k1), std::string(64, '0'));
}

TEST(ServerHello, AppDataLengthIsUniformInTheRange) {
  const Secret s = tls_secret(26);
  auto hello = parse_client_hello(hello_for(s));
  ASSERT_TRUE(hello.has_value());
  SeededRandom rnd(7);
  std::set<std::size_t> seen;
  for (int i = 0; i < 300; ++i) {
    const Bytes b =
        build_server_hello(*hello, s.key, {.app_data_min = 1000, .app_data_max = 1010}, rnd);
    const std::size_t n = load_be16(b.data() + 127 + 6 + 3);
    ASSERT_EQ(b.size(), 127u + 6 + 5 + n);
    ASSERT_GE(n, 1000u);
    ASSERT_LE(n, 1010u);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 11u);
}

// --- Record layer ---------------------------------------------------------

Result<Bytes> read_all(ByteSpan in) {
  Bytes out;
  auto n = read_tls_records(in, [&](ByteSpan p) { out.insert(out.end(), p.begin(), p.end()); });
  if (!n) return tl::unexpected(n.error());
  if (*n != in.size()) return base::fail(Errc::kShortInput, "partial");
  return out;
}

TEST(TlsRecords, RoundTripInRandomChunksWithFixedSeeds) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    SeededRandom rnd(seed);
    const Bytes payload = random_bytes(rnd, rnd.uniform(0, 70000));
    const std::size_t max = rnd.uniform(1, kMaxTlsRecordPayload);
    Bytes wire;
    write_tls_records(payload, wire, max);
    ASSERT_EQ(wire.size(), payload.size() + (payload.size() + max - 1) / max * kTlsHeaderSize);

    Bytes got, pending;
    std::size_t records = 0;
    for (std::size_t pos = 0; pos < wire.size();) {
      const std::size_t n = std::min<std::size_t>(rnd.uniform(1, 20000), wire.size() - pos);
      pending.insert(pending.end(), wire.begin() + pos, wire.begin() + pos + n);
      pos += n;
      auto used = read_tls_records(pending, [&](ByteSpan p) {
        ASSERT_LE(p.size(), max);
        got.insert(got.end(), p.begin(), p.end());
        ++records;
      });
      ASSERT_TRUE(used.has_value()) << seed;
      pending.erase(pending.begin(), pending.begin() + *used);
    }
    EXPECT_TRUE(pending.empty());
    EXPECT_EQ(got, payload) << "seed " << seed;
    EXPECT_EQ(records, (payload.size() + max - 1) / max);
  }
}

TEST(TlsRecords, DefaultWriterCapKeepsRecordsAt16384BytesTotal) {
  Bytes wire;
  write_tls_records(Bytes(40000, std::byte{7}), wire);
  EXPECT_EQ(load_be16(wire.data() + 3), 16384 - 5);
  EXPECT_EQ(wire.size(), 40000u + 3 * 5);
}

TEST(TlsRecords, ChangeCipherSpecIsSkipped) {
  auto r =
      read_all(hex("140303000101"
                   "1703030003616263"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(testing::str(*r), "abc");
}

TEST(TlsRecords, PartialRecordIsLeftForTheNextRead) {
  std::vector<std::string> got;
  auto n = read_tls_records(hex("1703030001"
                                "78"
                                "17030300056869"),
                            [&](ByteSpan p) { got.push_back(testing::str(p)); });
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(got, std::vector<std::string>{"x"});
}

TEST(TlsRecords, OtherTypesAndVersionsAreRejected) {
  for (const char* h : {"1503030002", "1603030002", "1703010002", "1702", "15"}) {
    auto r = read_tls_records(hex(h), [](ByteSpan) {});
    ASSERT_FALSE(r.has_value()) << h;
    EXPECT_EQ(r.error().code, Errc::kBadInput) << h;
  }
}

TEST(TlsRecords, PayloadOver16640IsTooLarge) {
  auto r = read_tls_records(hex("1703034101"), [](ByteSpan) {});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kTooLarge);
  Bytes ok = hex("1703034100");
  ok.resize(ok.size() + 16640);
  std::size_t len = 0;
  auto n = read_tls_records(ok, [&](ByteSpan p) { len = p.size(); });
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(len, 16640u);
}

TEST(TlsRecords, HeaderWriterEncodesLengthBigEndian) {
  std::array<std::byte, kTlsHeaderSize> h{};
  write_tls_header(h, 0x1234);
  EXPECT_EQ(to_hex(h), "1703031234");
}

}  // namespace
}  // namespace mtw::proto
