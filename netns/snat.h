// Per-cell source addresses in the nftables table of nft.h: a cell listed
// here leaves the host from the given address (SNAT) instead of the address
// masquerade would pick, so users of one multi-address host reach the
// outside from different public addresses. The choice lives in two maps
// keyed by the cell's host-end interface (snat4, snat6), looked up by one
// rule each in nat_out before the masquerade rule; a cell without an
// element (or without one of its family) is masqueraded as before.
// source_nat_commands() replaces both maps in one transaction; conntrack
// keeps the translation of every connection already made, so a change
// reaches new connections only. Pure text functions (unit-tested).
// Thread-safety: plain functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::netns {

inline constexpr std::string_view kSnatMap4 = "snat4";
inline constexpr std::string_view kSnatMap6 = "snat6";

struct SourceNat {
  std::string host_if;  // the cell's host end (CellNames::host_if)
  std::string addr4;    // literal IPv4 address, or empty: masquerade IPv4
  std::string addr6;    // literal IPv6 address, or empty: masquerade IPv6
  friend auto operator<=>(const SourceNat&, const SourceNat&) = default;
};

// The commands that make `entries` the whole content of both maps of table
// `family table` (flush + add, one transaction). Addresses are written in
// canonical form. kBadInput for an interface name that is not a legal one
// made of [0-9a-z_-] (cells' names), an address that is not a literal of its
// family, a table name outside [0-9a-z_-], or an interface listed twice.
[[nodiscard]] base::Result<std::string> source_nat_commands(const std::string& family,
                                                            const std::string& table,
                                                            const std::vector<SourceNat>& entries);

}  // namespace mtw::netns
