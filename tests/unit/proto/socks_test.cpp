#include "proto/socks.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace mtw::proto::socks {
namespace {

using testing::hex;

Target target(std::string_view host, std::uint16_t port) {
  auto t = make_target(host, port);
  EXPECT_TRUE(t.has_value()) << host;
  return t ? *t : Target{};
}

// --- targets ---

TEST(SocksTarget, IpLiteralsBecomeAddressesNamesStayNames) {
  EXPECT_EQ(target("149.154.167.51", 443).kind, Target::Kind::kIpv4);
  EXPECT_EQ(target("2001:b28:f23d:f001::a", 443).kind, Target::Kind::kIpv6);
  const Target n = target("dc.example", 443);
  EXPECT_EQ(n.kind, Target::Kind::kName);
  EXPECT_EQ(n.name, "dc.example");
}

TEST(SocksTarget, RejectsPortZeroEmptyLongAndNulHosts) {
  EXPECT_EQ(make_target("1.2.3.4", 0).error().code, Errc::kBadInput);
  EXPECT_EQ(make_target("", 443).error().code, Errc::kBadInput);
  EXPECT_EQ(make_target(std::string(256, 'a'), 443).error().code, Errc::kBadInput);
  EXPECT_EQ(make_target(std::string_view("a\0b", 3), 443).error().code, Errc::kBadInput);
}

// --- SOCKS4 / 4a ---

TEST(Socks4, BuildsConnectWithUserId) {
  // VN 4, CD 1, port 443, 149.154.167.51, "alice\0".
  EXPECT_EQ(*build_socks4_connect(target("149.154.167.51", 443), "alice"),
            hex("040101bb959aa733616c69636500"));
}

TEST(Socks4, EmptyUserIdIsJustTheTerminator) {
  EXPECT_EQ(*build_socks4_connect(target("127.0.0.1", 8080), ""), hex("04011f907f00000100"));
}

TEST(Socks4a, SendsNameAfterUserIdWithMarkerAddress) {
  // DSTIP 0.0.0.1, "u\0", "dc.example\0".
  EXPECT_EQ(*build_socks4_connect(target("dc.example", 443), "u"),
            hex("040101bb00000001750064632e6578616d706c6500"));
}

TEST(Socks4, RejectsIpv6TargetAndNulInUserId) {
  EXPECT_EQ(build_socks4_connect(target("::1", 443), "u").error().code, Errc::kBadInput);
  EXPECT_EQ(build_socks4_connect(target("1.2.3.4", 443), std::string_view("a\0b", 3)).error().code,
            Errc::kBadInput);
}

TEST(Socks4, GrantedReplySucceeds) {
  EXPECT_TRUE(parse_socks4_reply(hex("005a000000000000")).has_value());
  EXPECT_TRUE(parse_socks4_reply(hex("045a01bb7f000001")).has_value());  // VN echoed as 4
}

TEST(Socks4, EachRefusalCodeIsNamed) {
  const auto r91 = parse_socks4_reply(hex("005b000000000000"));
  EXPECT_EQ(r91.error().code, Errc::kBadHandshake);
  EXPECT_EQ(r91.error().context, "socks4 connect refused: rejected or failed (91)");
  EXPECT_NE(parse_socks4_reply(hex("005c000000000000")).error().context.find("identd"),
            std::string::npos);
  EXPECT_NE(parse_socks4_reply(hex("005d000000000000")).error().context.find("mismatch"),
            std::string::npos);
}

TEST(Socks4, GarbageReplyIsBadInput) {
  EXPECT_EQ(parse_socks4_reply(hex("485454502f312e31")).error().code,
            Errc::kBadInput);  // "HTTP/1.1"
  EXPECT_EQ(parse_socks4_reply(hex("0001000000000000")).error().code, Errc::kBadInput);
  EXPECT_EQ(parse_socks4_reply(hex("005a0000")).error().code, Errc::kShortInput);
}

// --- SOCKS5 method selection ---

TEST(Socks5, GreetingOffersExactlyOneMethod) {
  EXPECT_EQ(build_socks5_greeting(false), hex("050100"));
  EXPECT_EQ(build_socks5_greeting(true), hex("050102"));
}

TEST(Socks5, MethodReply) {
  EXPECT_EQ(*parse_socks5_method(hex("0500"), false), kMethodNone);
  EXPECT_EQ(*parse_socks5_method(hex("0502"), true), kMethodUserPass);
  EXPECT_EQ(parse_socks5_method(hex("05ff"), true).error().code, Errc::kPermission);
  EXPECT_EQ(parse_socks5_method(hex("05ff"), false).error().context,
            "socks5: proxy requires authentication");
  EXPECT_EQ(parse_socks5_method(hex("0500"), true).error().code, Errc::kBadInput);  // not offered
  EXPECT_EQ(parse_socks5_method(hex("0400"), false).error().code, Errc::kBadInput);
  EXPECT_EQ(parse_socks5_method(hex("05"), false).error().code, Errc::kShortInput);
}

// --- RFC 1929 ---

TEST(Socks5Auth, BuildsRfc1929Request) {
  EXPECT_EQ(*build_socks5_auth({"alice", "pw"}), hex("0105616c696365027077"));
}

TEST(Socks5Auth, FieldsMustBe1To255Bytes) {
  EXPECT_EQ(build_socks5_auth({"", "pw"}).error().code, Errc::kBadInput);
  EXPECT_EQ(build_socks5_auth({"u", ""}).error().code, Errc::kBadInput);
  EXPECT_EQ(build_socks5_auth({std::string(256, 'u'), "pw"}).error().code, Errc::kBadInput);
  EXPECT_EQ(build_socks5_auth({"u", std::string(256, 'p')}).error().code, Errc::kBadInput);
  EXPECT_EQ(build_socks5_auth({std::string(255, 'u'), std::string(255, 'p')})->size(), 513u);
}

TEST(Socks5Auth, ReplyStatus) {
  EXPECT_TRUE(parse_socks5_auth_reply(hex("0100")).has_value());
  EXPECT_TRUE(parse_socks5_auth_reply(hex("0500")).has_value());
  const auto bad = parse_socks5_auth_reply(hex("0101"));
  EXPECT_EQ(bad.error().code, Errc::kPermission);
  EXPECT_EQ(bad.error().context, "socks5 username/password rejected (status 1)");
  EXPECT_EQ(parse_socks5_auth_reply(hex("0200")).error().code, Errc::kBadInput);
}

TEST(Socks5Auth, ErrorsNeverCarryTheCredentials) {
  const auto e = build_socks5_auth({"secret-user", std::string(300, 'p')}).error().to_string();
  EXPECT_EQ(e.find("secret-user"), std::string::npos);
  EXPECT_EQ(e.find("ppp"), std::string::npos);
}

// --- SOCKS5 CONNECT ---

TEST(Socks5Connect, BuildsIpv4Ipv6AndNameRequests) {
  EXPECT_EQ(*build_socks5_connect(target("149.154.167.51", 443)), hex("05010001959aa73301bb"));
  EXPECT_EQ(*build_socks5_connect(target("2001:b28:f23d:f001::a", 443)),
            hex("0501000420010b28f23df001000000000000000a01bb"));
  EXPECT_EQ(*build_socks5_connect(target("dc.example", 80)),
            hex("050100030a64632e6578616d706c650050"));
}

TEST(Socks5Connect, ReplySizeFollowsAddressType) {
  EXPECT_EQ(*socks5_reply_size(hex("0500000100")), 10u);
  EXPECT_EQ(*socks5_reply_size(hex("0500000400")), 22u);
  EXPECT_EQ(*socks5_reply_size(hex("0500000307")), 14u);
  EXPECT_EQ(socks5_reply_size(hex("05000001")).error().code, Errc::kShortInput);
  EXPECT_EQ(socks5_reply_size(hex("0500000900")).error().code, Errc::kBadInput);
  EXPECT_EQ(socks5_reply_size(hex("4854545020")).error().code, Errc::kBadInput);
}

TEST(Socks5Connect, SuccessReturnsBoundAddress) {
  const auto v4 = parse_socks5_reply(hex("050000017f0000019c40"));
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(*v4, target("127.0.0.1", 40000));
  const auto v6 =
      parse_socks5_reply(hex("0500000400000000000000000000000000000001"
                             "0050"));
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(*v6, target("::1", 80));
  const auto name = parse_socks5_reply(hex("0500000301780050"));
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(name->name, "x");
}

TEST(Socks5Connect, EveryReplyCodeIsNamed) {
  const char* texts[] = {"general SOCKS server failure", "connection not allowed by ruleset",
                         "network unreachable",          "host unreachable",
                         "connection refused",           "TTL expired",
                         "command not supported",        "address type not supported"};
  for (int rep = 1; rep <= 8; ++rep) {
    Bytes reply = hex("05000001000000000000");
    reply[1] = std::byte(rep);
    const auto r = parse_socks5_reply(reply);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, Errc::kBadHandshake);
    EXPECT_EQ(r.error().context, std::string("socks5 connect refused: ") + texts[rep - 1] + " (" +
                                     std::to_string(rep) + ")");
  }
  Bytes unknown = hex("05420001000000000000");
  EXPECT_NE(parse_socks5_reply(unknown).error().context.find("unknown (66)"), std::string::npos);
}

TEST(Socks5Connect, RefusalWithZeroAddressTypeStillNamesTheCode) {
  EXPECT_EQ(socks5_reply_size(hex("0505000000")).error().context,
            "socks5 connect refused: connection refused (5)");
}

// --- the state machine ---

TEST(ClientHandshake, Socks5WithCredentialsRunsThreeRoundTrips) {
  auto hs = ClientHandshake::start(Version::kSocks5, target("127.0.0.1", 443), {"alice", "pw"});
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->first_request(), hex("050102"));
  EXPECT_EQ(hs->first_need(), 2u);
  auto s1 = hs->feed(hex("0502"));
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->consumed, 2u);
  EXPECT_EQ(s1->send, hex("0105616c696365027077"));
  EXPECT_EQ(s1->need, 2u);
  auto s2 = hs->feed(hex("0100"));
  ASSERT_TRUE(s2.has_value());
  EXPECT_EQ(s2->send, hex("050100017f00000101bb"));
  EXPECT_EQ(s2->need, 5u);
  // The reply arrives in pieces: the first 5 bytes tell its size.
  auto s3 = hs->feed(hex("0500000100"));
  ASSERT_TRUE(s3.has_value());
  EXPECT_EQ(s3->consumed, 0u);
  EXPECT_EQ(s3->need, 10u);
  EXPECT_FALSE(hs->done());
  auto s4 =
      hs->feed(hex("050000010a0000019c40"
                   "ef"));  // one tunnel byte after the reply
  ASSERT_TRUE(s4.has_value());
  EXPECT_TRUE(s4->done);
  EXPECT_EQ(s4->consumed, 10u);
  EXPECT_TRUE(hs->done());
  // The proxy's end of the tunnel, as a middle proxy sees it: 10.0.0.1:40000.
  EXPECT_EQ(s4->bound, target("10.0.0.1", 40000));
}

TEST(ClientHandshake, Socks5WithoutCredentialsSkipsAuth) {
  auto hs = ClientHandshake::start(Version::kSocks5, target("::1", 443), {});
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->first_request(), hex("050100"));
  auto s1 = hs->feed(hex("0500"));
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->send, hex("050100040000000000000000000000000000000101bb"));
  auto s2 = hs->feed(hex("05000001000000000000"));
  ASSERT_TRUE(s2.has_value());
  EXPECT_TRUE(s2->done);
}

TEST(ClientHandshake, Socks5AuthRejectionFailsAndStaysFailed) {
  auto hs = ClientHandshake::start(Version::kSocks5, target("127.0.0.1", 443), {"alice", "bad"});
  ASSERT_TRUE(hs->feed(hex("0502")).has_value());
  const auto r = hs->feed(hex("0101"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kPermission);
  EXPECT_FALSE(hs->feed(hex("05000001000000000000")).has_value());
  EXPECT_FALSE(hs->done());
}

TEST(ClientHandshake, Socks4IsOneRoundTrip) {
  auto hs = ClientHandshake::start(Version::kSocks4, target("127.0.0.1", 443), {"alice", "x"});
  ASSERT_TRUE(hs.has_value());
  EXPECT_EQ(hs->first_request(), hex("040101bb7f000001616c69636500"));
  EXPECT_EQ(hs->first_need(), 8u);
  auto s = hs->feed(hex("005a000000000000"));
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->done);
  EXPECT_EQ(s->consumed, 8u);
  EXPECT_EQ(s->bound.port, 0u);  // no bound address reported
}

TEST(ClientHandshake, Socks4ReportsDstipAndDstportAsTheBoundAddress) {
  auto hs = ClientHandshake::start(Version::kSocks4, target("127.0.0.1", 443), {});
  ASSERT_TRUE(hs.has_value());
  auto s = hs->feed(hex("005a9c40c0a80107"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->bound, target("192.168.1.7", 40000));
}

TEST(ClientHandshake, StartValidatesTheRequest) {
  EXPECT_EQ(ClientHandshake::start(Version::kSocks4, target("::1", 443), {}).error().code,
            Errc::kBadInput);
  EXPECT_EQ(ClientHandshake::start(Version::kSocks5, target("::1", 443), {"u", ""}).error().code,
            Errc::kBadInput);
}

TEST(ClientHandshake, ShortInputAsksForMoreWithoutConsuming) {
  auto hs = ClientHandshake::start(Version::kSocks4, target("127.0.0.1", 443), {});
  auto s = hs->feed(hex("005a"));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->consumed, 0u);
  EXPECT_EQ(s->need, 8u);
  EXPECT_FALSE(s->done);
}

}  // namespace
}  // namespace mtw::proto::socks
