// Cell egress in the nftables table of nft.h (NftConfig::restrict_egress):
// a packet a cell starts towards anything but an allowed (address, protocol,
// port) is dropped and counted per cell. The allowed triples live in two
// sets (egress4, egress6) that egress_commands() replaces in one
// transaction, so an update never opens a moment where nothing (or
// everything) is allowed, and established connections are never touched
// (they are accepted before the sets are looked at). The drop counters are
// the elements of a dynamic set keyed by the cell's host-end name, made by
// the kernel on a cell's first drop: creating a cell changes no rule.
// Pure text functions (unit-tested) plus two calls through libnftables.
// Thread-safety: plain functions; the nft calls are serialised by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::netns {

enum class L4 : std::uint8_t { kTcp, kUdp };

struct EgressRule {
  std::string addr;  // literal IPv4 or IPv6 address, as inet_pton takes it
  L4 proto = L4::kTcp;
  std::uint16_t port = 0;
  friend auto operator<=>(const EgressRule&, const EgressRule&) = default;
};

// Names of the table's egress objects (nft_ruleset declares them).
inline constexpr std::string_view kEgressSet4 = "egress4";
inline constexpr std::string_view kEgressSet6 = "egress6";
inline constexpr std::string_view kEgressDropSet = "egress_drops";

// Sorted, duplicates removed, addresses in canonical form ("2001:db8::1",
// not "2001:0db8:0:0::1"). kBadInput names the first address that is not a
// literal, or a port 0.
[[nodiscard]] base::Result<std::vector<EgressRule>> normalize_egress(std::vector<EgressRule> rules);

// The commands that make `rules` the whole content of both sets of table
// `family table`, in one transaction (flush + add). kBadInput as
// normalize_egress, or for a table name outside [0-9a-z_-].
[[nodiscard]] base::Result<std::string> egress_commands(const std::string& family,
                                                        const std::string& table,
                                                        const std::vector<EgressRule>& rules);

// Drops counted for one cell: its host-end interface name and packets.
struct EgressDrops {
  std::string host_if;
  std::uint64_t packets = 0;
  friend bool operator==(const EgressDrops&, const EgressDrops&) = default;
};

// The elements of `nft list set FAMILY TABLE egress_drops` (text output):
// `"mtw1a" counter packets 4 bytes 240` and the like, wherever the lines
// wrap. kBadInput when an element has no packet count.
[[nodiscard]] base::Result<std::vector<EgressDrops>> parse_egress_drops(std::string_view text);

// Lists the drop set and parses it. kNft/kPermission as nft_run.
[[nodiscard]] base::Result<std::vector<EgressDrops>> read_egress_drops(const std::string& family,
                                                                       const std::string& table);

}  // namespace mtw::netns
