#include "base/ip_set.h"

#include <gtest/gtest.h>

#include <random>

using namespace mtw::base;

namespace {

IpAddr ip(std::string_view s) {
  auto a = parse_ip(s);
  EXPECT_TRUE(a) << s;
  return a ? *a : IpAddr{};
}

IpSet set_of(std::initializer_list<std::string_view> texts) {
  std::vector<IpPrefix> v;
  for (auto t : texts) {
    auto p = parse_ip_prefix(t);
    EXPECT_TRUE(p) << t;
    if (p) v.push_back(*p);
  }
  return IpSet(v);
}

}  // namespace

TEST(IpPrefix, ParsesAndFormatsCanonically) {
  for (auto [in, out] : std::initializer_list<std::pair<const char*, const char*>>{
           {"192.0.2.1", "192.0.2.1"},
           {"192.0.2.0/24", "192.0.2.0/24"},
           {"0.0.0.0/0", "0.0.0.0/0"},
           {"2001:DB8::/32", "2001:db8::/32"},
           {"2001:db8:0:0:0:0:0:1", "2001:db8::1"},
           {"::/0", "::/0"},
           {"::ffff:192.0.2.1", "::ffff:192.0.2.1"}}) {
    auto p = parse_ip_prefix(in);
    ASSERT_TRUE(p) << in;
    EXPECT_EQ(format_ip_prefix(*p), out);
  }
}

TEST(IpPrefix, RefusesWhatIsNotAPrefixNamingTheReason) {
  for (const char* bad :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/33", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/08",
        "::/129", "[::1]", "fe80::1%eth0", "example.org", "1.2.3.4 ", "01.2.3.4", "1.2.3.4/2x"})
    EXPECT_FALSE(parse_ip_prefix(bad)) << bad;
  auto e = parse_ip_prefix("192.0.2.1/24");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().context.find("192.0.2.0/24"), std::string::npos) << e.error().context;
}

TEST(IpPrefix, PrefixOfClearsHostBits) {
  EXPECT_EQ(format_ip_prefix(prefix_of(ip("2001:db8:1:2:3:4:5:6"), 64)), "2001:db8:1:2::/64");
  EXPECT_EQ(format_ip_prefix(prefix_of(ip("198.51.100.77"), 22)), "198.51.100.0/22");
  EXPECT_EQ(format_ip_prefix(prefix_of(ip("198.51.100.77"), 40)), "198.51.100.77");
}

TEST(IpSet, MatchesInsideAndNotOutsideEachPrefix) {
  IpSet s = set_of({"10.0.0.0/8", "192.0.2.7", "2001:db8::/64", "2001:db8:ffff::1"});
  EXPECT_TRUE(s.contains(ip("10.0.0.0")));
  EXPECT_TRUE(s.contains(ip("10.255.255.255")));
  EXPECT_FALSE(s.contains(ip("11.0.0.0")));
  EXPECT_FALSE(s.contains(ip("9.255.255.255")));
  EXPECT_TRUE(s.contains(ip("192.0.2.7")));
  EXPECT_FALSE(s.contains(ip("192.0.2.8")));
  EXPECT_TRUE(s.contains(ip("2001:db8::ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(s.contains(ip("2001:db8:0:1::")));
  EXPECT_TRUE(s.contains(ip("2001:db8:ffff::1")));
  EXPECT_FALSE(s.contains(ip("2001:db8:ffff::2")));
}

TEST(IpSet, KeepsIpv4AndIpv6Apart) {
  IpSet any6 = set_of({"::/0"});
  EXPECT_TRUE(any6.contains(ip("::ffff:1.2.3.4")));
  EXPECT_FALSE(any6.contains(ip("1.2.3.4")));
  IpSet any4 = set_of({"0.0.0.0/0"});
  EXPECT_TRUE(any4.contains(ip("255.255.255.255")));
  EXPECT_FALSE(any4.contains(ip("::")));
}

TEST(IpSet, MergesOverlappingAndAdjacentRanges) {
  IpSet s = set_of({"10.0.0.0/25", "10.0.0.128/25", "10.0.0.5", "10.0.1.0/24", "255.255.255.255",
                    "255.255.255.254", "::/1", "8000::/1", "2001:db8::/48"});
  EXPECT_EQ(s.ranges(), 3u);  // 10.0.0.0-10.0.1.255, 255.255.255.254-255, ::/0
  EXPECT_TRUE(s.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_TRUE(s.contains(ip("10.0.1.200")));
  EXPECT_FALSE(s.contains(ip("10.0.2.0")));
}

TEST(IpSet, AgreesWithALinearScanOnRandomSets) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::vector<IpPrefix> entries;
    for (int i = 0; i < 40; ++i) {
      IpAddr a;
      a.v6 = rng() & 1;
      for (auto& b : a.bytes) b = static_cast<std::uint8_t>(rng() & 0x0f);  // dense: overlaps
      if (!a.v6) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
      entries.push_back(prefix_of(a, static_cast<std::uint8_t>(rng() % (a.v6 ? 129 : 33))));
    }
    IpSet s(entries);
    for (int q = 0; q < 500; ++q) {
      IpAddr a;
      a.v6 = rng() & 1;
      for (auto& b : a.bytes) b = static_cast<std::uint8_t>(rng() & 0x0f);
      if (!a.v6) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
      bool expected = false;
      for (const auto& e : entries)
        if (e.addr.v6 == a.v6 && prefix_of(a, e.length) == e) expected = true;
      ASSERT_EQ(s.contains(a), expected) << format_ip_prefix(prefix_of(a, 128));
    }
  }
}

TEST(IpList, ReadsFireholListsWithCommentsAndBlanks) {
  auto l = parse_ip_list(
      "#\n# firehol_level1 style header\n#\n\n1.2.3.0/24\r\n  5.6.7.8  # trailing\n; ipset "
      "comment\n2001:db8::/32\n");
  ASSERT_TRUE(l) << l.error().context;
  ASSERT_EQ(l->entries.size(), 3u);
  EXPECT_EQ(format_ip_prefix(l->entries[1]), "5.6.7.8");
}

TEST(IpList, FailsWholeOnTheFirstBadLineNamingIt) {
  auto l = parse_ip_list("1.2.3.4\n5.6.7.8\n<html>\n");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().context.rfind("line 3: ", 0), 0u) << l.error().context;
  // A download cut mid-line is refused, not read as a shorter list.
  EXPECT_FALSE(parse_ip_list("1.2.3.4\n5.6.7."));
  auto big = parse_ip_list("1.1.1.1\n2.2.2.2\n3.3.3.3\n", 2);
  ASSERT_FALSE(big);
  EXPECT_NE(big.error().context.find("more than 2"), std::string::npos);
}
