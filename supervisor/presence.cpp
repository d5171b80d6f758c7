// A user's presence (presence.h).
#include "supervisor/presence.h"

#include <algorithm>
#include <map>
#include <utility>

namespace mtw::supervisor {

std::vector<OpenIp> open_ips(std::span<const ClientCount> reported,
                             std::span<const ClientAddr> unreported, unsigned ipv6_prefix) {
  // Keyed by (key, address): the output order, and one entry per address.
  std::map<std::pair<std::string, std::string>, std::uint32_t> by;
  auto add = [&](const ClientAddr& c, std::uint32_t n) {
    if (c.family != 4 && c.family != 6) return;
    auto& sum =
        by[{unique_ip_key(c.family, c.addr, ipv6_prefix), unique_ip_key(c.family, c.addr, 128)}];
    sum = n > UINT32_MAX - sum ? UINT32_MAX : sum + n;
  };
  for (const auto& r : reported) add(r.client, r.connections);
  for (const auto& u : unreported) add(u, 1);
  std::vector<OpenIp> out;
  out.reserve(by.size());
  for (auto& [k, n] : by) out.push_back(OpenIp{k.second, k.first, n});
  return out;
}

UnixSeconds seen_after_report(UnixSeconds last_seen, UnixSeconds report_unix, std::uint64_t open,
                              UnixSeconds last_close_unix) {
  return std::max(last_seen, open > 0 ? report_unix : last_close_unix);
}

}  // namespace mtw::supervisor
