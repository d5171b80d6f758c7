#include "gate/gate_admission.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace mtw::gate {
namespace {

std::vector<std::byte> v4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return {std::byte(a), std::byte(b), std::byte(c), std::byte(d)};
}

// 2001:db8:<net>:<sub>::<host>
std::vector<std::byte> v6(unsigned net, unsigned sub, unsigned host) {
  std::vector<std::byte> a(16);
  a[0] = std::byte(0x20), a[1] = std::byte(0x01), a[2] = std::byte(0x0d), a[3] = std::byte(0xb8);
  a[4] = std::byte(net >> 8), a[5] = std::byte(net);
  a[6] = std::byte(sub >> 8), a[7] = std::byte(sub);
  a[12] = std::byte(host >> 24), a[13] = std::byte(host >> 16);
  a[14] = std::byte(host >> 8), a[15] = std::byte(host);
  return a;
}

TEST(GateAdmission, AllOfOneIpv6Slash64IsOneSource) {
  AdmissionLimits l;
  EXPECT_EQ(source_keys(v6(1, 2, 3), l), source_keys(v6(1, 2, 0xdeadbeef), l));
  EXPECT_NE(source_keys(v6(1, 2, 3), l).source, source_keys(v6(1, 3, 3), l).source);
  // Different /64s of one /48 share the subnet key.
  EXPECT_EQ(source_keys(v6(1, 2, 3), l).subnet, source_keys(v6(1, 3, 3), l).subnet);
  EXPECT_NE(source_keys(v6(1, 2, 3), l).subnet, source_keys(v6(2, 2, 3), l).subnet);
}

TEST(GateAdmission, Ipv6SourcePrefixIsConfigurable) {
  AdmissionLimits l;
  l.ipv6_source_prefix = 128;
  EXPECT_NE(source_keys(v6(1, 2, 3), l).source, source_keys(v6(1, 2, 4), l).source);
  l.ipv6_source_prefix = 56;  // 2001:db8:1:200::/56 holds sub 0x200..0x2ff
  EXPECT_EQ(source_keys(v6(1, 0x200, 3), l).source, source_keys(v6(1, 0x2ff, 4), l).source);
  EXPECT_NE(source_keys(v6(1, 0x200, 3), l).source, source_keys(v6(1, 0x300, 3), l).source);
}

TEST(GateAdmission, Ipv4HostAndSubnet) {
  AdmissionLimits l;
  EXPECT_NE(source_keys(v4(10, 0, 0, 1), l).source, source_keys(v4(10, 0, 0, 2), l).source);
  EXPECT_EQ(source_keys(v4(10, 0, 0, 1), l).subnet, source_keys(v4(10, 0, 0, 200), l).subnet);
  EXPECT_NE(source_keys(v4(10, 0, 0, 1), l).subnet, source_keys(v4(10, 0, 1, 1), l).subnet);
  l.ipv4_subnet_prefix = 16;
  EXPECT_EQ(source_keys(v4(10, 0, 0, 1), l).subnet, source_keys(v4(10, 0, 9, 1), l).subnet);
}

TEST(GateAdmission, V4MappedIpv6IsKeyedAsIpv4) {
  AdmissionLimits l;
  std::vector<std::byte> mapped(16);
  mapped[10] = mapped[11] = std::byte(0xff);
  mapped[12] = std::byte(10), mapped[15] = std::byte(7);
  EXPECT_EQ(source_keys(mapped, l), source_keys(v4(10, 0, 0, 7), l));
  EXPECT_TRUE(source_keys(std::vector<std::byte>(5), l).source.empty());
}

TEST(GateAdmission, CapsUnfinishedHandshakesPerSource) {
  AdmissionLimits l;
  l.per_source = 3;
  l.per_subnet = 100;
  AdmissionTable t(l);
  std::vector<AdmissionTicket> held;
  for (unsigned i = 0; i < 3; ++i) {
    held.push_back(t.admit(source_keys(v6(1, 2, i), l)));
    EXPECT_TRUE(held.back().held());
  }
  auto k = source_keys(v6(1, 2, 999), l);
  EXPECT_EQ(t.check(k), AdmissionTable::Verdict::kSourceFull);
  EXPECT_FALSE(t.admit(k).held());
  // Another /64 is not affected.
  EXPECT_TRUE(t.admit(source_keys(v6(1, 3, 1), l)).held());
  // A finished handshake gives its slot back.
  held.front().release();
  held.front().release();  // idempotent
  EXPECT_EQ(t.check(k), AdmissionTable::Verdict::kAdmit);
  EXPECT_EQ(t.held(k.source), 2u);
  held.clear();
  EXPECT_EQ(t.keys(), 0u);  // nothing left behind
}

TEST(GateAdmission, CapsUnfinishedHandshakesPerSubnet) {
  AdmissionLimits l;
  l.per_source = 10;
  l.per_subnet = 12;
  AdmissionTable t(l);
  std::vector<AdmissionTicket> held;
  // A dozen IPv4 addresses of one /24, one slot each, fill the subnet.
  for (unsigned i = 1; i <= 12; ++i) held.push_back(t.admit(source_keys(v4(192, 0, 2, i), l)));
  EXPECT_EQ(t.check(source_keys(v4(192, 0, 2, 99), l)), AdmissionTable::Verdict::kSubnetFull);
  EXPECT_EQ(t.check(source_keys(v4(192, 0, 3, 1), l)), AdmissionTable::Verdict::kAdmit);
}

TEST(GateAdmission, DefaultsAdmitABurstOfFifty) {
  AdmissionLimits l;
  AdmissionTable t(l);
  std::vector<AdmissionTicket> held;
  for (int i = 0; i < 50; ++i) {
    held.push_back(t.admit(source_keys(v4(203, 0, 113, 5), l)));
    EXPECT_TRUE(held.back().held()) << i;
  }
}

TEST(GateAdmission, TicketMovesKeepOneSlot) {
  AdmissionLimits l;
  AdmissionTable t(l);
  auto k = source_keys(v4(10, 1, 1, 1), l);
  AdmissionTicket a = t.admit(k);
  AdmissionTicket b = std::move(a);
  EXPECT_FALSE(a.held());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
  EXPECT_EQ(t.held(k.source), 1u);
  b = AdmissionTicket();
  EXPECT_EQ(t.held(k.source), 0u);
}

TEST(GateAdmission, ZeroMeansNoCap) {
  AdmissionLimits l;
  l.per_source = 0;
  l.per_subnet = 0;
  AdmissionTable t(l);
  std::vector<AdmissionTicket> held;
  for (int i = 0; i < 1000; ++i) held.push_back(t.admit(source_keys(v4(10, 0, 0, 1), l)));
  EXPECT_TRUE(held.back().held());
}

}  // namespace
}  // namespace mtw::gate
