// Cell naming: every kernel object of a cell carries "<prefix><id>" so that a
// restarted supervisor can find (and only find) what mtwarden created.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::netns {

// IFNAMSIZ is 16 including the NUL: an interface name has at most 15 chars.
inline constexpr std::size_t kMaxIfnameLen = 15;

struct CellNames {
  std::string netns;    // file under the run dir, e.g. "mtw1a2b" (as `ip netns` lists it)
  std::string host_if;  // host end of the veth, same as `netns`
  std::string cell_if;  // cell end, inside the cell's own namespace (no clash possible)
};

// Short id for a numeric user id: lowercase base36 ("0".."zzzz..."), at most
// 13 chars for 2^64-1.
std::string short_id(std::uint64_t n);

// True when `name` is a legal Linux interface name: 1..15 bytes, no '/',
// ':', whitespace or NUL, and not "." or "..".
bool valid_ifname(std::string_view name) noexcept;

// Builds the names for cell `id` ([0-9a-z]+). Fails with kBadInput when the
// prefix or id holds other characters, or when prefix+id exceeds IFNAMSIZ-1.
[[nodiscard]] base::Result<CellNames> make_names(std::string_view prefix, std::string_view id,
                                                 std::string_view cell_if = "eth0");

// True when `name` is "<prefix>" followed by a non-empty [0-9a-z]+ id: the
// shape make_names() produces, used by reconciliation to recognise our objects.
bool is_cell_name(std::string_view prefix, std::string_view name) noexcept;

}  // namespace mtw::netns
