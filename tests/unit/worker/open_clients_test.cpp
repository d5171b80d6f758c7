#include "worker/open_clients.h"

#include <gtest/gtest.h>

namespace mtw::worker {
namespace {

using ipc::control::PeerAddress;

PeerAddress v4(std::uint8_t last, std::uint16_t port = 40000) {
  PeerAddress p;
  p.family = 4;
  p.addr[0] = std::byte{203};
  p.addr[1] = std::byte{0};
  p.addr[2] = std::byte{113};
  p.addr[3] = std::byte{last};
  p.port = port;
  return p;
}

PeerAddress v6(std::uint8_t last) {
  PeerAddress p;
  p.family = 6;
  p.addr[0] = std::byte{0x20};
  p.addr[1] = std::byte{0x01};
  p.addr[2] = std::byte{0x0d};
  p.addr[3] = std::byte{0xb8};
  p.addr[15] = std::byte{last};
  return p;
}

TEST(OpenClients, CountsConnectionsPerAddressWhateverThePort) {
  OpenClients c;
  c.opened(v4(7, 1000));
  c.opened(v4(7, 2000));
  c.opened(v6(1));
  const auto r = c.report(16);
  ASSERT_EQ(r.open.size(), 2u);
  EXPECT_EQ(r.open[0].peer.family, 4);  // IPv4 before IPv6
  EXPECT_EQ(r.open[0].peer.addr[3], std::byte{7});
  EXPECT_EQ(r.open[0].peer.port, 0);
  EXPECT_EQ(r.open[0].connections, 2u);
  EXPECT_EQ(r.open[1].peer.family, 6);
  EXPECT_EQ(r.open[1].connections, 1u);
  EXPECT_FALSE(r.truncated);
  EXPECT_EQ(r.last_close_unix, 0);  // nothing ended yet
}

TEST(OpenClients, AnAddressLeavesWithItsLastConnectionAndTheCloseIsTimed) {
  OpenClients c;
  c.opened(v4(7, 1000));
  c.opened(v4(7, 2000));
  c.closed(v4(7, 1000), 1'790'000'010);
  auto r = c.report(16);
  ASSERT_EQ(r.open.size(), 1u);
  EXPECT_EQ(r.open[0].connections, 1u);
  EXPECT_EQ(r.last_close_unix, 1'790'000'010);
  c.closed(v4(7, 2000), 1'790'000'020);
  r = c.report(16);
  EXPECT_TRUE(r.open.empty());
  EXPECT_EQ(c.distinct(), 0u);
  EXPECT_EQ(r.last_close_unix, 1'790'000'020);
}

TEST(OpenClients, LastCloseNeverGoesBack) {
  OpenClients c;
  c.closed(v4(1), 200);
  c.closed(v4(1), 100);  // a clock step back
  EXPECT_EQ(c.report(16).last_close_unix, 200);
}

TEST(OpenClients, UnknownFamilyIsNotListedButItsCloseIsTimed) {
  OpenClients c;
  PeerAddress web;  // a WEB front stream: no address
  c.opened(web);
  EXPECT_TRUE(c.report(16).open.empty());
  c.closed(web, 50);
  EXPECT_EQ(c.report(16).last_close_unix, 50);
}

TEST(OpenClients, IgnoresBytesBeyondAnIPv4Address) {
  OpenClients c;
  auto a = v4(9);
  auto b = v4(9);
  b.addr[10] = std::byte{0xff};  // garbage after the 4 bytes that count
  c.opened(a);
  c.opened(b);
  const auto r = c.report(16);
  ASSERT_EQ(r.open.size(), 1u);
  EXPECT_EQ(r.open[0].connections, 2u);
  EXPECT_EQ(r.open[0].peer.addr[10], std::byte{0});
}

TEST(OpenClients, ACloseWithoutAnOpenLeavesOthersAlone) {
  OpenClients c;
  c.opened(v4(1));
  c.closed(v4(2), 10);
  const auto r = c.report(16);
  ASSERT_EQ(r.open.size(), 1u);
  EXPECT_EQ(r.open[0].connections, 1u);
}

TEST(OpenClients, ReportIsCappedAndSaysSo) {
  OpenClients c;
  for (std::uint8_t i = 1; i <= 5; ++i) c.opened(v4(i));
  const auto r = c.report(3);
  ASSERT_EQ(r.open.size(), 3u);
  EXPECT_TRUE(r.truncated);
  EXPECT_EQ(r.open[2].peer.addr[3], std::byte{3});
  EXPECT_FALSE(c.report(5).truncated);
}

}  // namespace
}  // namespace mtw::worker
