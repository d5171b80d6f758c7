// Sets of IP addresses and prefixes for admission tables (allow / deny
// lists, blocklists in FireHOL / ipset list format): parse, build once,
// then answer "is this address in the set" in O(log n) with no allocation.
// A set is immutable: an edit (API, reloaded list) builds a new one from
// the entries, which at 100k entries costs a few milliseconds
// (bench/ip_set_bench). IPv4 and IPv6 are separate spaces: an IPv6 rule
// never matches an IPv4 client (the gate sees IPv4 clients as IPv4, not
// as ::ffff:a.b.c.d). Thread-safe once built: const access only.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::base {

// An address; for IPv4 only bytes[0..3] are used.
struct IpAddr {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

// A network: the address with every bit past `length` zero.
struct IpPrefix {
  IpAddr addr;
  std::uint8_t length = 32;  // 0..32 for IPv4, 0..128 for IPv6

  friend bool operator==(const IpPrefix&, const IpPrefix&) = default;
};

// "192.0.2.1", "2001:db8::1" (no brackets, no zone). kBadInput otherwise.
[[nodiscard]] Result<IpAddr> parse_ip(std::string_view text);
// An address ("/32" or "/128" implied) or "ADDR/LEN". Host bits must be
// zero ("192.0.2.1/24" is refused: it is most likely a typo, and the
// refusal names the network it would have meant).
[[nodiscard]] Result<IpPrefix> parse_ip_prefix(std::string_view text);
// Canonical text: "192.0.2.0/24", "2001:db8::/32"; a full-length prefix
// without "/LEN".
std::string format_ip_prefix(const IpPrefix& p);
// The prefix of `length` bits that holds `a` (the client's /64, say).
IpPrefix prefix_of(const IpAddr& a, std::uint8_t length) noexcept;

class IpSet {
 public:
  IpSet() = default;
  // Overlapping and adjacent entries are merged.
  explicit IpSet(const std::vector<IpPrefix>& entries);

  bool contains(const IpAddr& a) const noexcept;
  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  // Disjoint ranges after merging (what a lookup searches).
  std::size_t ranges() const noexcept { return v4_.size() + v6_.size(); }

 private:
  struct Range4 {
    std::uint32_t first, last;
  };
  // An IPv6 address as a number: high and low 64 bits.
  struct U128 {
    std::uint64_t hi = 0, lo = 0;
    friend auto operator<=>(const U128&, const U128&) = default;
  };
  struct Range6 {
    U128 first, last;
  };
  std::vector<Range4> v4_;
  std::vector<Range6> v6_;
};

// What a list file holds, with its entries in file order.
struct IpList {
  std::vector<IpPrefix> entries;
};

// FireHOL / ipset list text: one address or prefix per line, blank lines
// and comments ('#' or ';' to the end of the line) ignored, surrounding
// blanks trimmed, CRLF accepted. Nothing else: the first bad line fails
// the whole list (kBadInput, "line N: reason"), so a truncated or garbled
// download never replaces a good list. At most `max_entries` entries.
[[nodiscard]] Result<IpList> parse_ip_list(std::string_view text,
                                           std::size_t max_entries = 1'000'000);

}  // namespace mtw::base
