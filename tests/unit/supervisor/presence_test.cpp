#include "supervisor/presence.h"

#include <gtest/gtest.h>

namespace mtw::supervisor {
namespace {

ClientAddr v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
  ClientAddr x;
  x.family = 4;
  x.addr[0] = std::byte{a};
  x.addr[1] = std::byte{b};
  x.addr[2] = std::byte{c};
  x.addr[3] = std::byte{d};
  return x;
}

// 2001:db8:0:<net>::<host>
ClientAddr v6(std::uint8_t net, std::uint8_t host) {
  ClientAddr x;
  x.family = 6;
  x.addr[0] = std::byte{0x20};
  x.addr[1] = std::byte{0x01};
  x.addr[2] = std::byte{0x0d};
  x.addr[3] = std::byte{0xb8};
  x.addr[7] = std::byte{net};
  x.addr[15] = std::byte{host};
  return x;
}

TEST(OpenIps, ListsEachAddressWithItsUniqueIpKey) {
  const std::vector<ClientCount> reported = {{v4(198, 51, 100, 7), 2}, {v6(1, 5), 1}};
  const auto ips = open_ips(reported, {}, 64);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0].address, "198.51.100.7");
  EXPECT_EQ(ips[0].key, "198.51.100.7");
  EXPECT_EQ(ips[0].connections, 2u);
  EXPECT_EQ(ips[1].address, "2001:db8:0:1::5");
  EXPECT_EQ(ips[1].key, "2001:db8:0:1::/64");
  EXPECT_EQ(ips[1].connections, 1u);
}

TEST(OpenIps, TwoAddressesOfOneIPv6PrefixShareAKeyButStaySeparate) {
  const std::vector<ClientCount> reported = {{v6(1, 9), 1}, {v6(1, 5), 3}, {v6(2, 5), 1}};
  const auto ips = open_ips(reported, {}, 64);
  ASSERT_EQ(ips.size(), 3u);
  EXPECT_EQ(ips[0].address, "2001:db8:0:1::5");  // by key, then address
  EXPECT_EQ(ips[1].address, "2001:db8:0:1::9");
  EXPECT_EQ(ips[0].key, ips[1].key);
  EXPECT_EQ(ips[2].key, "2001:db8:0:2::/64");
  // The whole address as key with prefix 128.
  EXPECT_EQ(open_ips(reported, {}, 128)[0].key, "2001:db8:0:1::5");
}

TEST(OpenIps, UnreportedConnectionsAddToTheirAddress) {
  const std::vector<ClientCount> reported = {{v4(10, 0, 0, 1), 1}};
  const std::vector<ClientAddr> since = {v4(10, 0, 0, 1), v4(10, 0, 0, 2), v4(10, 0, 0, 2)};
  const auto ips = open_ips(reported, since, 64);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0].connections, 2u);
  EXPECT_EQ(ips[1].address, "10.0.0.2");
  EXPECT_EQ(ips[1].connections, 2u);
}

TEST(OpenIps, UnknownFamiliesAreLeftOut) {
  const std::vector<ClientAddr> since = {ClientAddr{}, v4(10, 0, 0, 3)};
  const auto ips = open_ips({}, since, 64);
  ASSERT_EQ(ips.size(), 1u);
  EXPECT_EQ(ips[0].address, "10.0.0.3");
  EXPECT_TRUE(open_ips({}, {}, 64).empty());
}

TEST(OpenIps, ConnectionCountSaturates) {
  const std::vector<ClientCount> reported = {{v4(10, 0, 0, 1), UINT32_MAX}};
  const std::vector<ClientAddr> since = {v4(10, 0, 0, 1)};
  EXPECT_EQ(open_ips(reported, since, 64)[0].connections, UINT32_MAX);
}

TEST(SeenAfterReport, OpenConnectionsMeanSeenAtTheReport) {
  EXPECT_EQ(seen_after_report(100, 500, 2, 300), 500);
}

TEST(SeenAfterReport, NoneOpenMeansSeenWhenTheLastOneEnded) {
  EXPECT_EQ(seen_after_report(100, 500, 0, 300), 300);
}

TEST(SeenAfterReport, NeverGoesBack) {
  // A handoff seen at 400, then a report of a close at 300 (an older
  // connection): 400 stays. A worker that closed nothing says 0.
  EXPECT_EQ(seen_after_report(400, 500, 0, 300), 400);
  EXPECT_EQ(seen_after_report(400, 500, 0, 0), 400);
  EXPECT_EQ(seen_after_report(0, 500, 0, 0), 0);
}

}  // namespace
}  // namespace mtw::supervisor
