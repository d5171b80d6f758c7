// Telegram DC addresses (protocol.md §3): production IPv4/IPv6 per DC, media
// DCs (negative index) mapped to their DC's address, DC 203 (CDN), test DCs
// (+10000) mapped to the same number, and every entry overridable by
// configuration (tests point them at loopback). No I/O: addresses are text.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "proto/bytes.h"

namespace mtw::proto {

struct Endpoint {
  std::string host;  // literal IPv4 or IPv6 address (no brackets), or a name
  std::uint16_t port = 443;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;
};
// "1.2.3.4:443", "[2001:db8::1]:443", "host:443". kBadInput otherwise.
[[nodiscard]] Result<Endpoint> parse_endpoint(std::string_view text);
// "HOST:PORT[,HOST:PORT...]": one or more endpoints, in order. kBadInput
// naming the first bad one. The one parser of endpoint lists: the command
// line's --dc and the configuration's [telegram] dc both use it.
[[nodiscard]] Result<std::vector<Endpoint>> parse_endpoint_list(std::string_view text);
std::string format_endpoint(const Endpoint& e);

class DcTable {
 public:
  // The production table.
  DcTable();
  // Replaces all addresses for `dc` (signed; a media override wins over the
  // plain DC for negative indices, an override of n covers -n and n+10000).
  // An empty list removes the override.
  void set(std::int16_t dc, std::vector<Endpoint> endpoints);
  // "N=HOST:PORT[,HOST:PORT...]" as on the command line. kBadInput on a bad
  // spec, leaving the table unchanged.
  [[nodiscard]] Result<void> set_from_text(std::string_view spec);
  // Addresses to try for the client's DC index, preferred family first (an
  // override: its listed order, IPv6 literals first when prefer_ipv6).
  // Unknown indices fall back to DC 2 (as mtg does for 0 and unknowns);
  // a test DC (|dc| > 10000) maps to dc % 10000.
  std::vector<Endpoint> lookup(std::int16_t dc, bool prefer_ipv6) const;

 private:
  struct Entry {
    std::vector<Endpoint> v4, v6;
    bool overridden = false;
    std::vector<Endpoint> custom;
  };
  std::map<std::int16_t, Entry> entries_;
};

}  // namespace mtw::proto
