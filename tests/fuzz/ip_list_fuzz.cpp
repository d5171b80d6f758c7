// Fuzzes the admission tables' list parser and address sets (base/ip_set.h):
// the input is a FireHOL / ipset list. Properties:
//  - a refusal names the line ("line N: ...");
//  - every accepted entry formats to text that parses back to itself;
//  - the set built from the entries holds each entry's first and last
//    address, and agrees with a linear scan of the entries on addresses
//    near each entry's edges (where merging and search mistakes show).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/ip_set.h"

using namespace mtw::base;

namespace {

bool scan(const std::vector<IpPrefix>& entries, const IpAddr& a) {
  for (const auto& e : entries)
    if (e.addr.v6 == a.v6 && prefix_of(a, e.length) == e) return true;
  return false;
}

// The address `delta` (-1, 0, +1) away from `a` (wrapping).
IpAddr step(IpAddr a, int delta) {
  const int top = a.v6 ? 15 : 3;
  for (int i = top; i >= 0 && delta != 0; --i) {
    const int v = a.bytes[i] + delta;
    a.bytes[i] = static_cast<std::uint8_t>(v & 0xff);
    if (v >= 0 && v <= 0xff) break;
  }
  return a;
}

IpAddr last_of(const IpPrefix& p) {
  IpAddr a = p.addr;
  const unsigned width = a.v6 ? 128 : 32;
  for (unsigned bit = p.length; bit < width; ++bit) a.bytes[bit / 8] |= 0x80u >> (bit % 8);
  return a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto list = parse_ip_list(text, 64);
  if (!list) {
    if (list.error().context.rfind("line ", 0) != 0) std::abort();
    return 0;
  }
  for (const auto& e : list->entries) {
    auto again = parse_ip_prefix(format_ip_prefix(e));
    if (!again || !(*again == e)) std::abort();
  }
  const IpSet set(list->entries);
  if (set.ranges() > list->entries.size()) std::abort();
  for (const auto& e : list->entries) {
    if (!set.contains(e.addr) || !set.contains(last_of(e))) std::abort();
    for (const IpAddr& edge : {step(e.addr, -1), step(last_of(e), 1)})
      if (set.contains(edge) != scan(list->entries, edge)) std::abort();
  }
  return 0;
}
