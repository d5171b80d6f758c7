// identify(): the gate's decision over 1000 users with mixed secret kinds.
#include "proto/identify.h"

#include <gtest/gtest.h>

#include <set>

#include "test_util.h"

namespace mtw::proto {
namespace {

constexpr std::int64_t kNow = 1'700'000'000;
constexpr std::size_t kUsers = 1000;

// User i: i%10==0 simple secret, i%10==1 dd secret, else fake TLS with one of
// 50 domains (so ~16 users share each domain). User id = 10000 + i.
std::vector<UserSecret> make_users() {
  SeededRandom rnd(42);
  std::vector<UserSecret> out;
  for (std::size_t i = 0; i < kUsers; ++i) {
    UserSecret u;
    u.user = static_cast<UserId>(10000 + i);
    rnd.fill(u.secret.key);
    if (i % 10 == 0) {
      u.secret.kind = SecretKind::kSimple;
    } else if (i % 10 == 1) {
      u.secret.kind = SecretKind::kSecure;
    } else {
      u.secret.kind = SecretKind::kFakeTls;
      u.secret.domain = "d" + std::to_string(i % 50) + ".example.com";
    }
    out.push_back(std::move(u));
  }
  return out;
}

class Identify : public ::testing::Test {
 protected:
  UserIndex index{make_users()};
  ReplayCache replay{ReplayCacheOptions{.max_entries = 4096, .hash_key = {1, 2}}};
  IdentifyOptions opts{.clock = {.now = kNow}, .allowed = {}, .try_all_on_sni_miss = true};
  SeededRandom rnd{7};

  const Secret& secret(std::size_t i) const { return index.secrets()[i].secret; }
  Bytes hello(const Secret& s, std::int64_t now = kNow) { return build_client_hello(s, now, rnd); }
  Bytes init(const Secret& s, ProtoTag tag, std::int16_t dc = 2) {
    auto c = build_client_init(s.key, tag, dc, rnd);
    return Bytes(c.wire.begin(), c.wire.end());
  }
  Identification run(ByteSpan in) { return identify(in, index, replay, opts); }
};

TEST_F(Identify, IndexGroupsFakeTlsSecretsByDomain) {
  EXPECT_EQ(index.fake_tls_count(), 800u);
  const auto* d2 = index.by_domain("D2.Example.COM");
  ASSERT_NE(d2, nullptr);
  EXPECT_EQ(d2->size(), 20u);                             // i = 2, 52, 102, ... 952
  EXPECT_EQ(index.by_domain("d0.example.com"), nullptr);  // i%50==0 are all simple secrets
  EXPECT_EQ(index.by_domain("nowhere.example.com"), nullptr);
}

TEST_F(Identify, FindsTheRightTlsUserAmong1000) {
  for (std::size_t i : {2, 3, 52, 555, 999}) {
    const Bytes h = hello(secret(i));
    const auto id = run(h);
    ASSERT_EQ(id.rejection, Rejection::kNone) << i << " " << rejection_name(id.rejection);
    EXPECT_EQ(id.user, 10000 + i);
    EXPECT_EQ(id.secret_index, i);
    EXPECT_TRUE(id.fake_tls);
    EXPECT_EQ(id.consumed, h.size());
    EXPECT_EQ(id.tls_timestamp, static_cast<std::uint32_t>(kNow));
    ASSERT_TRUE(id.hello.has_value());
    EXPECT_EQ(id.hello->sni, secret(i).domain);
    EXPECT_FALSE(id.init.has_value());
  }
}

TEST_F(Identify, UpperCaseSniStillHitsTheIndex) {
  Secret s = secret(13);
  s.domain = "D13.EXAMPLE.com";
  opts.try_all_on_sni_miss = false;  // must be found through the index
  const auto id = run(hello(s));
  ASSERT_EQ(id.rejection, Rejection::kNone) << rejection_name(id.rejection);
  EXPECT_EQ(id.user, 10013u);
}

TEST_F(Identify, FindsTheRightObfs2UserForEachAllowedTag) {
  struct Case {
    std::size_t user;
    ProtoTag tag;
  };
  for (auto [i, tag] :
       {Case{0, ProtoTag::kAbridged}, Case{10, ProtoTag::kIntermediate},
        Case{990, ProtoTag::kPadded}, Case{1, ProtoTag::kPadded}, Case{991, ProtoTag::kPadded}}) {
    const auto id = run(init(secret(i), tag, -4));
    ASSERT_EQ(id.rejection, Rejection::kNone) << i << " " << rejection_name(id.rejection);
    EXPECT_EQ(id.user, 10000 + i);
    EXPECT_FALSE(id.fake_tls);
    EXPECT_EQ(id.consumed, kInitSize);
    ASSERT_TRUE(id.init.has_value());
    EXPECT_EQ(id.init->tag, tag);
    EXPECT_EQ(id.init->dc, -4);
  }
}

TEST_F(Identify, TlsHelloWithAnotherUsersDomainIsWrongSni) {
  Secret s = secret(3);
  s.domain = "d4.example.com";  // some other users' domain: their HMACs fail
  auto id = run(hello(s));
  EXPECT_EQ(id.rejection, Rejection::kWrongSni);
  EXPECT_EQ(id.user, 10003u);
  s.domain = "unknown.example.org";
  id = run(hello(s));
  EXPECT_EQ(id.rejection, Rejection::kWrongSni);
}

TEST_F(Identify, WrongSniWithoutTheSlowPathIsBadHmac) {
  Secret s = secret(3);
  s.domain = "unknown.example.org";
  opts.try_all_on_sni_miss = false;
  EXPECT_EQ(run(hello(s)).rejection, Rejection::kBadHmac);
}

TEST_F(Identify, UnknownKeyIsBadHmac) {
  Secret s = secret(3);
  s.key[5] ^= std::byte{0x40};
  EXPECT_EQ(run(hello(s)).rejection, Rejection::kBadHmac);
}

TEST_F(Identify, OldHelloIsClockSkew) {
  const auto id = run(hello(secret(4), kNow - 3600));
  EXPECT_EQ(id.rejection, Rejection::kClockSkew);
  EXPECT_EQ(id.user, 10004u);
  EXPECT_EQ(replay.size(), 0u);  // rejected hellos are not remembered
}

TEST_F(Identify, ReplayedHelloIsRejected) {
  const Bytes h = hello(secret(5));
  EXPECT_EQ(run(h).rejection, Rejection::kNone);
  const auto again = run(h);
  EXPECT_EQ(again.rejection, Rejection::kReplay);
  EXPECT_EQ(again.user, 10005u);
}

TEST_F(Identify, ReplayedInitIsRejected) {
  const Bytes i = init(secret(20), ProtoTag::kPadded);
  EXPECT_EQ(run(i).rejection, Rejection::kNone);
  EXPECT_EQ(run(i).rejection, Rejection::kReplay);
}

TEST_F(Identify, DdSecretRefusesAbridgedAndIntermediate) {
  for (ProtoTag tag : {ProtoTag::kAbridged, ProtoTag::kIntermediate}) {
    const auto id = run(init(secret(11), tag));
    EXPECT_EQ(id.rejection, Rejection::kProtocolNotAllowed);
    EXPECT_EQ(id.user, 10011u);
  }
}

TEST_F(Identify, FakeTlsKeyDoesNotOpenObfs2) {
  EXPECT_EQ(run(init(secret(2), ProtoTag::kPadded)).rejection, Rejection::kUnknownTag);
}

TEST_F(Identify, AllowedProtocolsAreHonoured) {
  opts.allowed = *parse_allowed_protocols("secure");
  EXPECT_EQ(run(init(secret(30), ProtoTag::kAbridged)).rejection, Rejection::kProtocolNotAllowed);
  EXPECT_EQ(run(init(secret(30), ProtoTag::kIntermediate)).rejection,
            Rejection::kProtocolNotAllowed);
  EXPECT_EQ(run(init(secret(30), ProtoTag::kPadded)).rejection, Rejection::kNone);
  EXPECT_EQ(run(hello(secret(32))).rejection, Rejection::kProtocolNotAllowed);
  opts.allowed = *parse_allowed_protocols("tls");
  EXPECT_EQ(run(hello(secret(32))).rejection, Rejection::kNone);
  EXPECT_EQ(run(init(secret(30), ProtoTag::kPadded)).rejection, Rejection::kProtocolNotAllowed);
}

TEST_F(Identify, TlsOnlyDecidesNonTlsBytesAtOnce) {
  opts.allowed = *parse_allowed_protocols("tls");
  for (std::string_view s : {"S", "SSH-2.0-OpenSSH_9.2\r\n", "\x01\x02\x03", "\x16\x04"}) {
    EXPECT_EQ(run(as_bytes(s)).rejection, Rejection::kProtocolNotAllowed) << s;
  }
  EXPECT_EQ(run(as_bytes("GET / HTTP/1.1\r\n")).rejection, Rejection::kNotMtproxy);
  // What may still become a ClientHello waits for it.
  const Bytes h = hello(secret(32));
  EXPECT_EQ(run(ByteSpan(h).first(1)).rejection, Rejection::kNeedMore);
  EXPECT_EQ(run(ByteSpan(h).first(100)).rejection, Rejection::kNeedMore);
  // With an obfuscated2 protocol allowed too, the same bytes wait for 64.
  opts.allowed = *parse_allowed_protocols("tls,secure");
  EXPECT_EQ(run(as_bytes("SSH-2.0-OpenSSH_9.2\r\n")).rejection, Rejection::kNeedMore);
}

TEST_F(Identify, HttpAndPlainTransportsAreNotMtproxy) {
  for (std::string_view s : {"GET / HTTP/1.1\r\n", "POST /x HTTP/1.1", "PRI * HTTP/2.0",
                             "\xef\x01\x02\x03", "\xdd\xdd\xdd\xdd"}) {
    EXPECT_EQ(run(as_bytes(s)).rejection, Rejection::kNotMtproxy) << s;
  }
}

TEST_F(Identify, RandomBytesAreAnUnknownTag) {
  Bytes junk = testing::random_bytes(rnd, 64);
  junk[0] = std::byte{0x01};
  EXPECT_EQ(run(junk).rejection, Rejection::kUnknownTag);
}

TEST_F(Identify, ShortTlsRecordIsNotMtproxy) {
  // A real TLS 1.0 hello under 512 bytes: not ours once 64 bytes are in.
  Bytes h = testing::hex("16030100f0010000ec0303");
  h.resize(64);
  EXPECT_EQ(run(h).rejection, Rejection::kNotMtproxy);
  EXPECT_EQ(run(ByteSpan(h).first(20)).rejection, Rejection::kNeedMore);
}

TEST_F(Identify, HelloFedByteByByteNeedsMoreUntilComplete) {
  const Bytes h = hello(secret(6));
  for (std::size_t k = 0; k < h.size(); ++k) {
    const auto id = run(ByteSpan(h).first(k));
    ASSERT_EQ(id.rejection, Rejection::kNeedMore) << k;
    ASSERT_TRUE(id.needed == 0 || id.needed > k) << k;
  }
  EXPECT_EQ(replay.size(), 0u);
  EXPECT_EQ(run(h).rejection, Rejection::kNone);
}

TEST_F(Identify, InitFedByteByByteNeedsMoreUntil64Bytes) {
  const Bytes i = init(secret(40), ProtoTag::kIntermediate);
  for (std::size_t k = 0; k < kInitSize; ++k) {
    const auto id = run(ByteSpan(i).first(k));
    ASSERT_EQ(id.rejection, Rejection::kNeedMore) << k;
    if (k > 0) {
      ASSERT_EQ(id.needed, kInitSize) << k;
    }
  }
  EXPECT_EQ(run(i).rejection, Rejection::kNone);
}

TEST_F(Identify, FragmentedHelloIsIdentified) {
  const Bytes h = hello(secret(7));
  Bytes frag;
  for (std::size_t pos = 5; pos < h.size(); pos += 100) {
    const std::size_t len = std::min<std::size_t>(100, h.size() - pos);
    for (unsigned b : {0x16u, 0x03u, 0x01u, 0u, unsigned(len)}) frag.push_back(std::byte(b));
    frag.insert(frag.end(), h.begin() + pos, h.begin() + pos + len);
  }
  const auto id = run(frag);
  ASSERT_EQ(id.rejection, Rejection::kNone) << rejection_name(id.rejection);
  EXPECT_EQ(id.user, 10007u);
  EXPECT_EQ(id.consumed, frag.size());
}

TEST(AllowedProtocols, ParsesAllAndCommaLists) {
  EXPECT_EQ(*parse_allowed_protocols("all"), AllowedProtocols{});
  auto a = parse_allowed_protocols(" abridged , TLS");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, (AllowedProtocols{
                    .abridged = true, .intermediate = false, .padded = false, .fake_tls = true}));
  auto b = parse_allowed_protocols("intermediate,secure");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(*b, (AllowedProtocols{
                    .abridged = false, .intermediate = true, .padded = true, .fake_tls = false}));
}

TEST(AllowedProtocols, RejectsUnknownAndEmptyNames) {
  for (std::string_view s : {"", "tls,", "obfs3", "all,tls"}) {
    auto r = parse_allowed_protocols(s);
    ASSERT_FALSE(r.has_value()) << s;
    EXPECT_EQ(r.error().code, Errc::kBadInput);
  }
}

TEST(RejectionName, EveryValueHasItsOwnName) {
  std::set<std::string_view> names;
  for (int r = 0; r <= static_cast<int>(Rejection::kProtocolNotAllowed); ++r) {
    names.insert(rejection_name(static_cast<Rejection>(r)));
  }
  EXPECT_EQ(names.size(), 9u);
  EXPECT_EQ(names.count("unknown"), 0u);
  EXPECT_EQ(rejection_name(Rejection::kWrongSni), "wrong_sni");
}

}  // namespace
}  // namespace mtw::proto
