#include "supervisor/cell_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace mtw::supervisor {
namespace {

// A fake host: interface -> addresses; "" gives every address.
InterfaceAddresses table(std::map<std::string, std::vector<std::string>> t) {
  return [t](const std::string& n) -> base::Result<std::vector<std::string>> {
    if (n.empty()) {
      std::vector<std::string> all;
      for (const auto& [_, a] : t) all.insert(all.end(), a.begin(), a.end());
      return all;
    }
    auto it = t.find(n);
    if (it == t.end())
      return base::fail(base::Errc::kNotFound, "interface " + n + " does not exist");
    return it->second;
  };
}

TEST(ResolveCellSource, LiteralAddressesOfThisHostAreTakenAsWritten) {
  // The host spells the IPv6 address in full: compared as bytes.
  auto host = table({{"eth0", {"192.0.2.7", "2001:db8:0:0:0:0:0:7"}}});
  auto r = resolve_cell_source({"192.0.2.7", "2001:db8::7", ""}, true, host);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (CellSource{"192.0.2.7", "2001:db8::7"}));
}

TEST(ResolveCellSource, LiteralIpv6IsDroppedWhenTheCellsHaveNoIpv6) {
  auto r = resolve_cell_source({"192.0.2.7", "2001:db8::7", ""}, false,
                               table({{"eth0", {"192.0.2.7"}}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (CellSource{"192.0.2.7", ""}));
}

TEST(ResolveCellSource, LiteralSourceThatIsNotOnThisHostIsRefused) {
  auto host = table({{"eth0", {"192.0.2.7", "2001:db8::7"}}});
  auto r = resolve_cell_source({"192.0.2.8", "", ""}, false, host);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  EXPECT_EQ(r.error().context, "source 192.0.2.8 is not an address of this host");
  auto v6 = resolve_cell_source({"192.0.2.7", "2001:db8::8", ""}, true, host);
  ASSERT_FALSE(v6);
  EXPECT_EQ(v6.error().context, "source 2001:db8::8 is not an address of this host");
}

TEST(ResolveCellSource, InterfaceGivesItsFirstAddressOfEachFamilySkippingLinkLocal) {
  auto lookup =
      table({{"eth1", {"fe80::1", "198.51.100.4", "198.51.100.5", "2001:db8::4", "2001:db8::5"}}});
  auto r = resolve_cell_source({"", "", "eth1"}, true, lookup);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (CellSource{"198.51.100.4", "2001:db8::4"}));
  auto v4only = resolve_cell_source({"", "", "eth1"}, false, lookup);
  ASSERT_TRUE(v4only);
  EXPECT_EQ(*v4only, (CellSource{"198.51.100.4", ""}));
}

TEST(ResolveCellSource, InterfaceWithoutIpv4IsRefusedByName) {
  auto r = resolve_cell_source({"", "", "eth1"}, false, table({{"eth1", {"2001:db8::4"}}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kBadInput);
  EXPECT_EQ(r.error().context, "interface eth1 has no IPv4 address");
}

TEST(ResolveCellSource, InterfaceWithOnlyLinkLocalIpv6IsRefusedWhenTheCellsSendIpv6) {
  auto lookup = table({{"eth1", {"198.51.100.4", "fe80::4"}}});
  auto r = resolve_cell_source({"", "", "eth1"}, true, lookup);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().context.find("interface eth1 has no IPv6 address"), std::string::npos);
  EXPECT_TRUE(resolve_cell_source({"", "", "eth1"}, false, lookup));
}

TEST(ResolveCellSource, MissingInterfaceKeepsTheLookupError) {
  auto r = resolve_cell_source({"", "", "eth9"}, false, table({}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kNotFound);
  EXPECT_EQ(r.error().context, "interface eth9 does not exist");
}

TEST(InterfaceAddresses, LoopbackHasItsAddressAndAMissingNameIsNotFound) {
  auto lo = interface_addresses("lo");
  ASSERT_TRUE(lo) << lo.error().to_string();
  EXPECT_NE(std::find(lo->begin(), lo->end(), "127.0.0.1"), lo->end());
  auto all = interface_addresses("");
  ASSERT_TRUE(all) << all.error().to_string();
  EXPECT_NE(std::find(all->begin(), all->end(), "127.0.0.1"), all->end());
  auto none = interface_addresses("mtwnosuchif0");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, base::Errc::kNotFound);
}

}  // namespace
}  // namespace mtw::supervisor
