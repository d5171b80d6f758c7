// Where a user's cell leaves the host on a multi-address host: the
// configured source (config.h EgressSource: literal addresses, or a host
// interface) turned into the literal addresses the cells' SNAT maps hold
// (netns/snat.h). An interface's addresses are looked up at every call, so a
// reload (or a worker start) follows an address that moved.
// Thread-safety: plain functions; interface_addresses() reads the kernel's
// address list (getifaddrs), a few microseconds.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "supervisor/config.h"

namespace mtw::supervisor {

// The literal source of each family; empty: that family is masqueraded.
struct CellSource {
  std::string addr4, addr6;
  friend bool operator==(const CellSource&, const CellSource&) = default;
};

// The addresses of one host interface as literal text, in the kernel's
// order (the primary IPv4 address first); `ifname` empty: of every
// interface. kNotFound when no interface has that name; kSyscall when the
// list cannot be read.
using InterfaceAddresses =
    std::function<base::Result<std::vector<std::string>>(const std::string&)>;
[[nodiscard]] base::Result<std::vector<std::string>> interface_addresses(const std::string& ifname);

// The addresses for `src`. Literal sources are taken as written (IPv6 only
// when `ipv6_cells`: without an IPv6 pool no cell sends IPv6) once
// `lookup("")` shows them on this host: SNAT to an address the host does
// not have sends packets whose answers never come back, so that is
// kBadInput ("source 192.0.2.7 is not an address of this host"). An interface
// gives its first IPv4 address and, when `ipv6_cells`, its first IPv6
// address outside fe80::/10 (link-local cannot leave the link). kBadInput,
// naming the interface, when it has no address of a family the cells use:
// leaving from the masquerade address instead would break the promise of
// the configuration, so the caller refuses the cell rather than guess.
[[nodiscard]] base::Result<CellSource> resolve_cell_source(const EgressSource& src, bool ipv6_cells,
                                                           const InterfaceAddresses& lookup);

}  // namespace mtw::supervisor
