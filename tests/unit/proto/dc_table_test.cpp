#include "proto/dc_table.h"

#include <gtest/gtest.h>

namespace mtw::proto {
namespace {

Endpoint ep(std::string host, std::uint16_t port = 443) { return {std::move(host), port}; }

TEST(DcTable, ReturnsProductionAddressesPreferredFamilyFirst) {
  const DcTable t;
  const std::vector<Endpoint> v4 = t.lookup(1, false);
  ASSERT_EQ(v4.size(), 2u);
  EXPECT_EQ(v4[0], ep("149.154.175.50"));
  EXPECT_EQ(v4[1], ep("2001:b28:f23d:f001::a"));
  const std::vector<Endpoint> v6 = t.lookup(1, true);
  EXPECT_EQ(v6.front(), ep("2001:b28:f23d:f001::a"));
  EXPECT_EQ(v6.back(), ep("149.154.175.50"));
}

TEST(DcTable, CoversDcs1To5And203) {
  const DcTable t;
  EXPECT_EQ(t.lookup(2, false).front(), ep("149.154.167.51"));
  EXPECT_EQ(t.lookup(3, false).front(), ep("149.154.175.100"));
  EXPECT_EQ(t.lookup(4, false).front(), ep("149.154.167.91"));
  EXPECT_EQ(t.lookup(5, false).front(), ep("149.154.171.5"));
  EXPECT_EQ(t.lookup(5, true).front(), ep("2001:b28:f23f:f005::a"));
  EXPECT_EQ(t.lookup(203, false).front(), ep("91.105.192.100"));
  EXPECT_EQ(t.lookup(203, true).front(), ep("2a0a:f280:203:a:5000::100"));
}

TEST(DcTable, MediaDcUsesItsDcAddress) {
  const DcTable t;
  EXPECT_EQ(t.lookup(-4, false), t.lookup(4, false));
  EXPECT_EQ(t.lookup(-203, true), t.lookup(203, true));
}

TEST(DcTable, TestDcMapsToSameNumber) {
  const DcTable t;
  EXPECT_EQ(t.lookup(10003, false), t.lookup(3, false));
  EXPECT_EQ(t.lookup(-10005, false), t.lookup(5, false));
}

TEST(DcTable, UnknownAndZeroFallBackToDc2) {
  const DcTable t;
  for (std::int16_t dc : {0, 6, -7, 99, 10000, -32768, 32767}) {
    EXPECT_EQ(t.lookup(dc, false), t.lookup(2, false)) << dc;
  }
}

TEST(DcTable, OverrideReplacesAllAddresses) {
  DcTable t;
  ASSERT_TRUE(t.set_from_text("2=127.0.0.1:4430").has_value());
  EXPECT_EQ(t.lookup(2, true), (std::vector<Endpoint>{ep("127.0.0.1", 4430)}));
  EXPECT_EQ(t.lookup(-2, false), (std::vector<Endpoint>{ep("127.0.0.1", 4430)}));
  EXPECT_EQ(t.lookup(0, false), (std::vector<Endpoint>{ep("127.0.0.1", 4430)}));  // fallback too
}

TEST(DcTable, MediaOverrideWinsOverPlainDc) {
  DcTable t;
  ASSERT_TRUE(t.set_from_text("4=127.0.0.1:1").has_value());
  ASSERT_TRUE(t.set_from_text("-4=[::1]:2,localhost:3").has_value());
  EXPECT_EQ(t.lookup(4, false), (std::vector<Endpoint>{ep("127.0.0.1", 1)}));
  EXPECT_EQ(t.lookup(-4, false), (std::vector<Endpoint>{ep("::1", 2), ep("localhost", 3)}));
}

TEST(DcTable, PreferIpv6PutsAnOverridesIpv6AddressesFirst) {
  DcTable t;
  ASSERT_TRUE(t.set_from_text("2=10.0.0.1:1,[fd00::1]:2,10.0.0.2:3,[fd00::2]:4").has_value());
  EXPECT_EQ(t.lookup(2, false), (std::vector<Endpoint>{ep("10.0.0.1", 1), ep("fd00::1", 2),
                                                       ep("10.0.0.2", 3), ep("fd00::2", 4)}));
  EXPECT_EQ(t.lookup(2, true), (std::vector<Endpoint>{ep("fd00::1", 2), ep("fd00::2", 4),
                                                      ep("10.0.0.1", 1), ep("10.0.0.2", 3)}));
  EXPECT_EQ(t.lookup(-2, true).front(), ep("fd00::1", 2));  // the media DC falls back to it
}

TEST(DcTable, OverrideCanAddNewIndexAndBeCleared) {
  DcTable t;
  t.set(7, {ep("10.0.0.7", 7)});
  EXPECT_EQ(t.lookup(7, false), (std::vector<Endpoint>{ep("10.0.0.7", 7)}));
  t.set(7, {});
  EXPECT_EQ(t.lookup(7, false), t.lookup(2, false));
}

TEST(DcTable, RejectsBadOverrideSpecAndKeepsTable) {
  DcTable t;
  for (std::string_view spec : {"", "2", "=1.2.3.4:1", "x=1.2.3.4:1", "0=1.2.3.4:1",
                                "40000=1.2.3.4:1", "2=1.2.3.4", "2=1.2.3.4:1,", "2=::1:443"}) {
    EXPECT_FALSE(t.set_from_text(spec).has_value()) << spec;
  }
  EXPECT_EQ(t.lookup(2, false).front(), ep("149.154.167.51"));
}

TEST(Endpoint, ParsesV4V6AndNames) {
  EXPECT_EQ(parse_endpoint("1.2.3.4:443").value(), ep("1.2.3.4"));
  EXPECT_EQ(parse_endpoint("[2001:db8::1]:8443").value(), ep("2001:db8::1", 8443));
  EXPECT_EQ(parse_endpoint("dc.example:1").value(), ep("dc.example", 1));
}

TEST(Endpoint, RejectsMalformedText) {
  for (std::string_view text : {"", ":443", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
                                "1.2.3.4:+1", "1.2.3.4:12a", "[::1]", "[::1]443", "[]:1",
                                "[zz::1]:1", "::1:443", "a b:1", "[1.2.3.4]:1"}) {
    const Result<Endpoint> e = parse_endpoint(text);
    ASSERT_FALSE(e.has_value()) << text;
    EXPECT_EQ(e.error().code, Errc::kBadInput);
  }
}

TEST(Endpoint, ListKeepsOrderAndRejectsAnyBadMember) {
  const auto list = parse_endpoint_list("1.2.3.4:443,[2001:db8::1]:8443,dc.example:1");
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(*list,
            (std::vector<Endpoint>{ep("1.2.3.4"), ep("2001:db8::1", 8443), ep("dc.example", 1)}));
  for (std::string_view text : {"", ",", "1.2.3.4:443,", ",1.2.3.4:443", "1.2.3.4:443,,1.2.3.4:1",
                                "1.2.3.4:443,1.2.3.4", "1.2.3.4:443;1.2.3.4:1"}) {
    const auto e = parse_endpoint_list(text);
    ASSERT_FALSE(e.has_value()) << text;
    EXPECT_EQ(e.error().code, Errc::kBadInput);
  }
}

TEST(Endpoint, FormatRoundTrips) {
  for (std::string_view text : {"1.2.3.4:443", "[2001:db8::1]:8443", "localhost:65535"}) {
    const Result<Endpoint> e = parse_endpoint(text);
    ASSERT_TRUE(e.has_value()) << text;
    EXPECT_EQ(format_endpoint(*e), text);
  }
}

}  // namespace
}  // namespace mtw::proto
