#include "netns/egress.h"

#include <gtest/gtest.h>

#include "netns/nft.h"

namespace mtw::netns {
namespace {

TEST(EgressCommands, ReplacesBothSetsInOneTextWithTripletsPerFamily) {
  auto s = egress_commands("inet", "mtwarden",
                           {{"149.154.167.51", L4::kTcp, 443},
                            {"2001:67c:04e8:f002::a", L4::kTcp, 443},
                            {"10.0.0.53", L4::kUdp, 53}});
  ASSERT_TRUE(s.has_value()) << s.error().to_string();
  EXPECT_EQ(*s,
            "flush set inet mtwarden egress4\n"
            "add element inet mtwarden egress4 { 10.0.0.53 . udp . 53, 149.154.167.51 . tcp . 443 "
            "}\n"
            "flush set inet mtwarden egress6\n"
            "add element inet mtwarden egress6 { 2001:67c:4e8:f002::a . tcp . 443 }\n");
}

TEST(EgressCommands, EmptyListOnlyFlushes) {
  auto s = egress_commands("inet", "t", {});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(*s, "flush set inet t egress4\nflush set inet t egress6\n");
}

TEST(EgressCommands, RejectsNamesPortZeroAndInjection) {
  EXPECT_EQ(egress_commands("inet", "t", {{"example.com", L4::kTcp, 443}}).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(
      egress_commands("inet", "t", {{"1.2.3.4 }; flush ruleset", L4::kTcp, 443}}).error().code,
      base::Errc::kBadInput);
  EXPECT_EQ(egress_commands("inet", "t", {{"1.2.3.4", L4::kTcp, 0}}).error().code,
            base::Errc::kBadInput);
  EXPECT_EQ(egress_commands("inet", "t x", {}).error().code, base::Errc::kBadInput);
}

TEST(NormalizeEgress, SortsCanonicalisesAndDeduplicates) {
  auto r = normalize_egress({{"2001:db8:0:0::1", L4::kTcp, 443},
                             {"1.2.3.4", L4::kTcp, 443},
                             {"2001:db8::1", L4::kTcp, 443},
                             {"1.2.3.4", L4::kUdp, 443}});
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0], (EgressRule{"1.2.3.4", L4::kTcp, 443}));
  EXPECT_EQ((*r)[1], (EgressRule{"1.2.3.4", L4::kUdp, 443}));
  EXPECT_EQ((*r)[2], (EgressRule{"2001:db8::1", L4::kTcp, 443}));
}

TEST(ParseEgressDrops, ReadsEveryElementWhereverLinesWrap) {
  const char* text =
      "table inet mtwarden {\n"
      "\tset egress_drops {\n"
      "\t\ttype ifname\n\t\tsize 65536\n\t\tflags dynamic,timeout\n\t\ttimeout 1h\n"
      "\t\tcounter\n"
      "\t\telements = { \"mtw1a\" expires 59m58s counter packets 4 bytes 240,\n"
      "\t\t\t     \"mtw2b\" counter packets 12345678901 bytes 9 }\n"
      "\t}\n}\n";
  auto r = parse_egress_drops(text);
  ASSERT_TRUE(r.has_value()) << r.error().to_string();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0], (EgressDrops{"mtw1a", 4}));
  EXPECT_EQ((*r)[1], (EgressDrops{"mtw2b", 12345678901ull}));
}

TEST(ParseEgressDrops, NoElementsYetIsEmpty) {
  auto r = parse_egress_drops("table inet t {\n set egress_drops {\n type ifname\n }\n}\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->empty());
  EXPECT_FALSE(parse_egress_drops("elements = { \"mtw1a\" counter bytes 3 }").has_value());
}

TEST(NftRuleset, RestrictedEgressChecksTheSetsAndCountsDropsPerCell) {
  NftConfig c{"inet", "mtwarden", "mtw", "10.200.0.0/16", ""};
  c.restrict_egress = true;
  auto s = nft_ruleset(c);
  ASSERT_TRUE(s.has_value());
  const auto pos = [&](const char* needle) { return s->find(needle); };
  EXPECT_NE(pos("set egress4 {"), std::string::npos);
  EXPECT_NE(pos("set egress6 {"), std::string::npos);
  EXPECT_NE(pos("set egress_drops {"), std::string::npos);
  const auto est = pos("iifname \"mtw*\" ct state established,related accept");
  const auto v4 = pos("iifname \"mtw*\" ip daddr . meta l4proto . th dport @egress4 accept");
  const auto count = pos("iifname \"mtw*\" update @egress_drops { iifname }");
  const auto drop = s->rfind("iifname \"mtw*\" drop\n", s->find("chain cell_inp"));
  ASSERT_NE(est, std::string::npos);
  ASSERT_NE(v4, std::string::npos);
  ASSERT_NE(count, std::string::npos);
  ASSERT_NE(drop, std::string::npos);
  // Established first (a reload never cuts a connection), the sets, then
  // count and drop.
  EXPECT_LT(est, v4);
  EXPECT_LT(v4, count);
  EXPECT_LT(count, drop);
  // Cell-to-cell stays dropped before any of it.
  EXPECT_LT(pos("iifname \"mtw*\" oifname \"mtw*\" drop"), est);
}

TEST(NftRuleset, OpenEgressHasNoEgressRules) {
  auto s = nft_ruleset(NftConfig{"inet", "mtwarden", "mtw", "10.200.0.0/16", ""});
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->find("egress"), std::string::npos);
}

}  // namespace
}  // namespace mtw::netns
