// Address pool for cells: one IPv4 /30 or /31 and (optionally) one IPv6 ULA
// /64 or /127 per cell, both indexed by the same slot number so a cell's
// addresses follow from its slot alone (and a crashed run's slot can be
// recovered from the host veth's IPv4 address).
// Not thread-safe: the supervisor owns one pool and uses it from one thread.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::netns {

struct PoolConfig {
  std::string v4 = "10.200.0.0/16";        // CIDR the cells' IPv4 /30s (or /31s) are cut from
  int v4_cell_prefix = 30;                 // 30 or 31
  std::string v6 = "fd6d:7477:6172::/48";  // ULA CIDR; empty disables IPv6
  int v6_cell_prefix = 64;                 // 64 or 127
};

// Addresses of one cell. host_* sits on the host end of the veth and is the
// cell's default gateway; cell_* sits on the cell end.
struct CellAddrs {
  std::uint32_t slot = 0;
  in_addr host4{}, cell4{};
  int prefix4 = 30;
  bool has_v6 = false;
  in6_addr host6{}, cell6{};
  int prefix6 = 64;
};

// Parses "a.b.c.d/len" / "x::/len"; kBadInput on malformed text.
[[nodiscard]] base::Result<std::pair<in_addr, int>> parse_cidr4(std::string_view text);
[[nodiscard]] base::Result<std::pair<in6_addr, int>> parse_cidr6(std::string_view text);
std::string to_string(const in_addr& a);
std::string to_string(const in6_addr& a);

class AddrPool {
 public:
  // kBadInput for malformed CIDRs, a cell prefix other than 30/31 (64/127),
  // or a pool smaller than one cell.
  [[nodiscard]] static base::Result<AddrPool> create(const PoolConfig& cfg);

  // Lowest free slot; kExhausted when every slot is taken.
  [[nodiscard]] base::Result<std::uint32_t> allocate();
  // Marks `slot` taken (adopting a crashed run's cell); kExists if taken,
  // kBadInput if out of range.
  [[nodiscard]] base::Result<void> reserve(std::uint32_t slot);
  // Frees `slot`; freeing a free slot is a no-op.
  void release(std::uint32_t slot) noexcept;

  CellAddrs addrs(std::uint32_t slot) const;
  // The slot whose host-end IPv4 address is `host4`, if any.
  std::optional<std::uint32_t> slot_of_host(in_addr host4) const;

  std::uint32_t capacity() const noexcept { return static_cast<std::uint32_t>(used_.size()); }
  std::uint32_t in_use() const noexcept { return in_use_; }
  const PoolConfig& config() const noexcept { return cfg_; }
  // Pool CIDRs in nft syntax, for the NAT rules ("10.200.0.0/16").
  std::string v4_cidr() const;
  std::string v6_cidr() const;  // empty when IPv6 is off

 private:
  AddrPool() = default;
  PoolConfig cfg_;
  std::uint32_t base4_ = 0;  // host byte order
  int plen4_ = 0;
  bool v6_ = false;
  in6_addr base6_{};
  int plen6_ = 0;
  std::vector<bool> used_;
  std::uint32_t in_use_ = 0;
  std::uint32_t hint_ = 0;  // lowest slot that may be free
};

// Owns one slot of a pool; returns it on destruction. The pool must outlive
// the lease. Move-only.
class AddrLease {
 public:
  AddrLease() = default;
  AddrLease(AddrPool* pool, std::uint32_t slot) noexcept : pool_(pool), slot_(slot) {}
  AddrLease(AddrLease&& o) noexcept;
  AddrLease& operator=(AddrLease&& o) noexcept;
  ~AddrLease() { reset(); }
  void reset() noexcept;
  std::uint32_t slot() const noexcept { return slot_; }
  bool valid() const noexcept { return pool_ != nullptr; }

 private:
  AddrPool* pool_ = nullptr;
  std::uint32_t slot_ = 0;
};

}  // namespace mtw::netns
