#include "base/ip_set.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

namespace mtw::base {
namespace {

std::uint32_t v4_number(const IpAddr& a) noexcept {
  return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
         (std::uint32_t{a.bytes[2]} << 8) | a.bytes[3];
}

template <class U>
U v6_number(const IpAddr& a) noexcept {
  U u;
  for (int i = 0; i < 8; ++i) u.hi = (u.hi << 8) | a.bytes[i];
  for (int i = 8; i < 16; ++i) u.lo = (u.lo << 8) | a.bytes[i];
  return u;
}

// Mask of the low `bits` bits of a 64-bit word (bits 0..64).
constexpr std::uint64_t low_ones(unsigned bits) noexcept {
  return bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

Result<IpAddr> parse_ip(std::string_view text) {
  // inet_pton needs a NUL-terminated string; the longest valid text form
  // (IPv6 with an embedded IPv4 tail) is 45 characters.
  if (text.empty() || text.size() > 45) return fail(Errc::kBadInput, "not an IP address");
  char buf[46];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (text.find(':') != std::string_view::npos) {
    if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1)
      return fail(Errc::kBadInput, "not an IPv6 address");
    a.v6 = true;
  } else if (inet_pton(AF_INET, buf, a.bytes.data()) != 1) {
    return fail(Errc::kBadInput, "not an IPv4 address");
  }
  return a;
}

IpPrefix prefix_of(const IpAddr& a, std::uint8_t length) noexcept {
  const unsigned width = a.v6 ? 128 : 32;
  IpPrefix p{a, static_cast<std::uint8_t>(std::min<unsigned>(length, width))};
  for (unsigned bit = p.length; bit < width; ++bit)
    p.addr.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return p;
}

Result<IpPrefix> parse_ip_prefix(std::string_view text) {
  const auto slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr) return tl::unexpected(addr.error());
  const unsigned width = addr->v6 ? 128 : 32;
  if (slash == std::string_view::npos) return IpPrefix{*addr, static_cast<std::uint8_t>(width)};
  const std::string_view len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (len_text.empty() || ec != std::errc{} || end != len_text.data() + len_text.size() ||
      len > width || (len_text.size() > 1 && len_text[0] == '0'))
    return fail(Errc::kBadInput, "prefix length must be 0.." + std::to_string(width));
  IpPrefix p = prefix_of(*addr, static_cast<std::uint8_t>(len));
  if (!(p.addr == *addr))
    return fail(Errc::kBadInput, "address has bits set past the prefix length (the network is " +
                                     format_ip_prefix(p) + ")");
  return p;
}

std::string format_ip_prefix(const IpPrefix& p) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(p.addr.v6 ? AF_INET6 : AF_INET, p.addr.bytes.data(), buf, sizeof buf);
  std::string out = buf;
  if (p.length != (p.addr.v6 ? 128 : 32)) {
    out += '/';
    out += std::to_string(p.length);
  }
  return out;
}

IpSet::IpSet(const std::vector<IpPrefix>& entries) {
  for (const auto& e : entries) {
    if (!e.addr.v6) {
      const std::uint32_t first = v4_number(e.addr);
      const std::uint32_t span = static_cast<std::uint32_t>(low_ones(32u - e.length));
      v4_.push_back({first, first | span});
    } else {
      const U128 first = v6_number<U128>(e.addr);
      U128 last = first;
      const unsigned host = 128u - e.length;
      last.lo |= low_ones(std::min(host, 64u));
      if (host > 64) last.hi |= low_ones(host - 64);
      v6_.push_back({first, last});
    }
  }
  // Sort by start, then merge overlapping and adjacent ranges, so a lookup
  // is one binary search for the last range starting at or before the key.
  auto merge = [](auto& v, auto next_of) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (out > 0 && (v[i].first <= v[out - 1].last || next_of(v[out - 1].last, v[i].first))) {
        v[out - 1].last = std::max(v[out - 1].last, v[i].last);
      } else {
        v[out++] = v[i];
      }
    }
    v.resize(out);
    v.shrink_to_fit();
  };
  merge(v4_, [](std::uint32_t last, std::uint32_t first) {
    return last != UINT32_MAX && last + 1 == first;
  });
  merge(v6_, [](const U128& last, const U128& first) {
    U128 next = last;
    if (++next.lo == 0) {
      if (++next.hi == 0) return false;  // last was the top address
    }
    return next == first;
  });
}

bool IpSet::contains(const IpAddr& a) const noexcept {
  auto find = [](const auto& v, const auto& key) {
    // First range starting after the key; the one before it may hold it.
    auto it = std::upper_bound(v.begin(), v.end(), key,
                               [](const auto& k, const auto& r) { return k < r.first; });
    return it != v.begin() && key <= std::prev(it)->last;
  };
  return a.v6 ? find(v6_, v6_number<U128>(a)) : find(v4_, v4_number(a));
}

Result<IpList> parse_ip_list(std::string_view text, std::size_t max_entries) {
  IpList list;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (const auto c = line.find_first_of("#;"); c != std::string_view::npos)
      line = line.substr(0, c);
    line = trim(line);
    if (line.empty()) continue;
    auto p = parse_ip_prefix(line);
    if (!p)
      return fail(Errc::kBadInput, "line " + std::to_string(line_no) + ": " + p.error().context);
    if (list.entries.size() == max_entries)
      return fail(Errc::kBadInput, "line " + std::to_string(line_no) + ": more than " +
                                       std::to_string(max_entries) + " entries");
    list.entries.push_back(*p);
  }
  return list;
}

}  // namespace mtw::base
