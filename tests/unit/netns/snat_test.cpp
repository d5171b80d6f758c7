#include "netns/snat.h"

#include <gtest/gtest.h>

#include "netns/nft.h"

namespace mtw::netns {
namespace {

TEST(SourceNat, ReplacesBothMapsInOneTransaction) {
  auto s = source_nat_commands(
      "inet", "mtwarden", {{"mtw1", "198.51.100.7", ""}, {"mtw2", "198.51.100.8", "2001:db8::8"}});
  ASSERT_TRUE(s.has_value()) << s.error().to_string();
  EXPECT_EQ(*s,
            "flush map inet mtwarden snat4\n"
            "add element inet mtwarden snat4 { \"mtw1\" : 198.51.100.7, \"mtw2\" : 198.51.100.8 }\n"
            "flush map inet mtwarden snat6\n"
            "add element inet mtwarden snat6 { \"mtw2\" : 2001:db8::8 }\n");
}

TEST(SourceNat, EmptyListOnlyFlushes) {
  auto s = source_nat_commands("inet", "mtwarden", {});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, "flush map inet mtwarden snat4\nflush map inet mtwarden snat6\n");
}

TEST(SourceNat, WritesAddressesCanonically) {
  auto s = source_nat_commands("inet", "t", {{"mtw1", "", "2001:0db8:0:0::0008"}});
  ASSERT_TRUE(s.has_value());
  EXPECT_NE(s->find("\"mtw1\" : 2001:db8::8 }"), std::string::npos);
}

TEST(SourceNat, RejectsWrongFamilyAndInjection) {
  EXPECT_EQ(source_nat_commands("inet", "t", {{"mtw1", "2001:db8::1", ""}}).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(source_nat_commands("inet", "t", {{"mtw1", "", "192.0.2.1"}}).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(
      source_nat_commands("inet", "t", {{"mtw1\" }; flush ruleset", "192.0.2.1", ""}}).error().code,
      base::Errc::kBadInput);
  EXPECT_EQ(source_nat_commands("inet", "t; x", {}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(source_nat_commands("inet", "t", {{"mtw1", "192.0.2.1", ""}, {"mtw1", "192.0.2.2", ""}})
                .error()
                .code,
            base::Errc::kBadInput);
}

TEST(SourceNat, RulesetLooksUpTheMapsBeforeMasquerade) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", "fd6d::/48"});
  ASSERT_TRUE(s.has_value());
  const auto snat =
      s->find("ip saddr 10.200.0.0/16 oifname != \"mtw*\" snat ip to iifname map @snat4");
  const auto masq = s->find("ip saddr 10.200.0.0/16 oifname != \"mtw*\" masquerade");
  ASSERT_NE(snat, std::string::npos);
  ASSERT_NE(masq, std::string::npos);
  EXPECT_LT(snat, masq);
  EXPECT_NE(s->find("snat ip6 to iifname map @snat6"), std::string::npos);
  EXPECT_NE(s->find("map snat4 { type ifname : ipv4_addr; }"), std::string::npos);
}

TEST(SourceNat, RoutedPoolsStillHonourSourceAddresses) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", "", false});
  ASSERT_TRUE(s.has_value());
  EXPECT_NE(s->find("snat ip to iifname map @snat4"), std::string::npos);
  EXPECT_EQ(s->find("@snat6"), std::string::npos);
}

}  // namespace
}  // namespace mtw::netns
