#include "supervisor/cell_source.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace mtw::supervisor {
namespace {

InterfaceAddresses table(std::map<std::string, std::vector<std::string>> t) {
  return [t](const std::string& n) -> base::Result<std::vector<std::string>> {
    auto it = t.find(n);
    if (it == t.end())
      return base::fail(base::Errc::kNotFound, "interface " + n + " does not exist");
    return it->second;
  };
}

InterfaceAddresses no_lookup() {
  return [](const std::string& n) -> base::Result<std::vector<std::string>> {
    ADD_FAILURE() << "unexpected lookup of " << n;
    return base::fail(base::Errc::kNotFound, "unexpected");
  };
}

TEST(ResolveCellSource, LiteralAddressesAreTakenAsWritten) {
  auto r = resolve_cell_source({"192.0.2.7", "2001:db8::7", ""}, true, no_lookup());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(*r, (CellSource{"192.0.2.7", "2001:db8::7"}));
}

TEST(ResolveCellSource, LiteralIpv6IsDroppedWhenTheCellsHaveNoIpv6) {
  auto r = resolve_cell_source({"192.0.2.7", "2001:db8::7", ""}, false, no_lookup());
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (CellSource{"192.0.2.7", ""}));
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
  auto none = interface_addresses("mtwnosuchif0");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, base::Errc::kNotFound);
}

}  // namespace
}  // namespace mtw::supervisor
