#include "netns/snat.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

namespace mtw::netns {

using base::Errc;

namespace {

bool safe_word(const std::string& s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-';
  });
}

base::Result<std::string> canonical(const std::string& addr, int family) {
  unsigned char bin[16];
  char buf[INET6_ADDRSTRLEN] = {};
  if (::inet_pton(family, addr.c_str(), bin) != 1 ||
      ::inet_ntop(family, bin, buf, sizeof buf) == nullptr) {
    return base::fail(Errc::kBadInput, std::string("source nat: \"") + addr + "\" is not an IPv" +
                                           (family == AF_INET ? "4" : "6") + " address");
  }
  return std::string(buf);
}

}  // namespace

base::Result<std::string> source_nat_commands(const std::string& family, const std::string& table,
                                              const std::vector<SourceNat>& entries) {
  if (!safe_word(family, 16) || !safe_word(table, 64))
    return base::fail(Errc::kBadInput, "source nat: nft table name holds unexpected characters");
  std::set<std::string> seen;
  std::string v4, v6;
  for (const auto& e : entries) {
    // IFNAMSIZ: 15 bytes and NUL.
    if (!safe_word(e.host_if, 15))
      return base::fail(Errc::kBadInput, "source nat: bad interface name \"" + e.host_if + "\"");
    if (!seen.insert(e.host_if).second)
      return base::fail(Errc::kBadInput, "source nat: " + e.host_if + " listed twice");
    for (auto [addr, af, out] : {std::tuple{&e.addr4, AF_INET, &v4}, {&e.addr6, AF_INET6, &v6}}) {
      if (addr->empty()) continue;
      auto c = canonical(*addr, af);
      if (!c) return tl::unexpected(c.error());
      if (!out->empty()) *out += ", ";
      *out += "\"" + e.host_if + "\" : " + *c;
    }
  }
  const std::string t = family + " " + table + " ";
  std::string s;
  for (auto [map, elems] : {std::pair{kSnatMap4, &v4}, {kSnatMap6, &v6}}) {
    s += "flush map " + t + std::string(map) + "\n";
    if (!elems->empty()) s += "add element " + t + std::string(map) + " { " + *elems + " }\n";
  }
  return s;
}

}  // namespace mtw::netns
