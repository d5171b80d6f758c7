#include "netns/addr_pool.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

namespace mtw::netns {
namespace {

AddrPool make(const PoolConfig& cfg) {
  auto p = AddrPool::create(cfg);
  EXPECT_TRUE(p.has_value()) << p.error().to_string();
  return std::move(*p);
}

TEST(AddrPool, Slash30SlotsGiveHostDotOneCellDotTwo) {
  AddrPool p = make(PoolConfig{"10.200.0.0/16", 30, "fd6d:7477:6172::/48", 64});
  EXPECT_EQ(p.capacity(), 16384u);
  CellAddrs a = p.addrs(0);
  EXPECT_EQ(to_string(a.host4), "10.200.0.1");
  EXPECT_EQ(to_string(a.cell4), "10.200.0.2");
  EXPECT_EQ(a.prefix4, 30);
  CellAddrs b = p.addrs(65);  // 65 * 4 = 260 = 1.4
  EXPECT_EQ(to_string(b.host4), "10.200.1.5");
  EXPECT_EQ(to_string(b.cell4), "10.200.1.6");
  ASSERT_TRUE(b.has_v6);
  EXPECT_EQ(to_string(b.host6), "fd6d:7477:6172:41::1");
  EXPECT_EQ(to_string(b.cell6), "fd6d:7477:6172:41::2");
  EXPECT_EQ(b.prefix6, 64);
}

TEST(AddrPool, Slash31And127SlotsArePointToPoint) {
  AddrPool p = make(PoolConfig{"10.9.0.0/24", 31, "fd00:1::/120", 127});
  EXPECT_EQ(p.capacity(), 128u);  // 256 addresses / 2, v6 has 2^7 too
  CellAddrs a = p.addrs(3);
  EXPECT_EQ(to_string(a.host4), "10.9.0.6");
  EXPECT_EQ(to_string(a.cell4), "10.9.0.7");
  EXPECT_EQ(to_string(a.host6), "fd00:1::6");
  EXPECT_EQ(to_string(a.cell6), "fd00:1::7");
}

TEST(AddrPool, MasksHostBitsOfThePoolAddress) {
  AddrPool p = make(PoolConfig{"10.200.3.7/16", 30, "", 64});
  EXPECT_EQ(p.v4_cidr(), "10.200.0.0/16");
  EXPECT_EQ(p.v6_cidr(), "");
  EXPECT_FALSE(p.addrs(0).has_v6);
}

TEST(AddrPool, AllocatesLowestFreeAndReportsExhaustion) {
  AddrPool p = make(PoolConfig{"10.0.0.0/29", 30, "", 64});  // 2 cells
  EXPECT_EQ(*p.allocate(), 0u);
  EXPECT_EQ(*p.allocate(), 1u);
  auto third = p.allocate();
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error().code, base::Errc::kExhausted);
  p.release(0);
  EXPECT_EQ(*p.allocate(), 0u);
  EXPECT_EQ(p.in_use(), 2u);
}

TEST(AddrPool, ReserveRejectsTakenAndOutOfRangeSlots) {
  AddrPool p = make(PoolConfig{"10.0.0.0/29", 30, "", 64});
  ASSERT_TRUE(p.reserve(1).has_value());
  EXPECT_EQ(p.reserve(1).error().code, base::Errc::kExists);
  EXPECT_EQ(p.reserve(2).error().code, base::Errc::kBadInput);
  EXPECT_EQ(*p.allocate(), 0u);
}

TEST(AddrPool, FindsSlotFromHostAddress) {
  AddrPool p = make(PoolConfig{"10.200.0.0/16", 30, "", 64});
  EXPECT_EQ(p.slot_of_host(p.addrs(77).host4), 77u);
  EXPECT_FALSE(p.slot_of_host(p.addrs(77).cell4).has_value());
  in_addr outside{};
  outside.s_addr = htonl(0x0a000001);
  EXPECT_FALSE(p.slot_of_host(outside).has_value());
}

TEST(AddrPool, RejectsBadConfigs) {
  EXPECT_EQ(AddrPool::create({"10.0.0.0", 30, "", 64}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(AddrPool::create({"10.0.0.0/16", 29, "", 64}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(AddrPool::create({"10.0.0.0/31", 30, "", 64}).error().code, base::Errc::kBadInput);
  EXPECT_EQ(AddrPool::create({"10.0.0.0/16", 30, "2001:db8::/48", 64}).error().code,
            base::Errc::kBadInput);  // not ULA
  EXPECT_EQ(AddrPool::create({"10.0.0.0/16", 30, "fd00::/48", 96}).error().code,
            base::Errc::kBadInput);
}

TEST(AddrLease, ReturnsSlotOnDestructionAndMove) {
  AddrPool p = make(PoolConfig{"10.0.0.0/29", 30, "", 64});
  {
    AddrLease a(&p, *p.allocate());
    AddrLease b = std::move(a);
    EXPECT_EQ(p.in_use(), 1u);
  }
  EXPECT_EQ(p.in_use(), 0u);
}

// to_string(in_addr) formats by hand; inet_ntop is the reference.
TEST(AddrPool, Ipv4TextMatchesInetNtop) {
  for (std::uint32_t v : {0x00000000u, 0xffffffffu, 0x0a0a0001u, 0x7f000001u, 0xc0a86464u,
                          0x01020304u, 0x090a6364u, 0xfe00ff09u}) {
    in_addr a{htonl(v)};
    char ref[INET_ADDRSTRLEN];
    ASSERT_NE(inet_ntop(AF_INET, &a, ref, sizeof ref), nullptr);
    EXPECT_EQ(to_string(a), ref) << std::hex << v;
  }
  for (std::uint32_t v = 0; v < 256 * 256;
       v += 97) {  // every octet length mix in the low two bytes
    in_addr a{htonl(0x0a000000u | v)};
    char ref[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ref, sizeof ref);
    ASSERT_EQ(to_string(a), ref);
  }
}

}  // namespace
}  // namespace mtw::netns
