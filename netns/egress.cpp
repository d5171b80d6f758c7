#include "netns/egress.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "netns/nft.h"

namespace mtw::netns {

using base::Errc;

namespace {

bool safe_word(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-';
  });
}

const char* l4_name(L4 p) { return p == L4::kUdp ? "udp" : "tcp"; }

// The elements of one set, "ADDR . tcp . PORT, ..."; empty when none.
std::string elements(const std::vector<EgressRule>& rules, bool v6) {
  std::string s;
  for (const auto& r : rules) {
    if ((r.addr.find(':') != std::string::npos) != v6) continue;
    if (!s.empty()) s += ", ";
    s += r.addr;
    s += " . ";
    s += l4_name(r.proto);
    s += " . ";
    s += std::to_string(r.port);
  }
  return s;
}

}  // namespace

base::Result<std::vector<EgressRule>> normalize_egress(std::vector<EgressRule> rules) {
  for (auto& r : rules) {
    char buf[INET6_ADDRSTRLEN] = {};
    unsigned char bin[16];
    const int family = r.addr.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    if (::inet_pton(family, r.addr.c_str(), bin) != 1 ||
        ::inet_ntop(family, bin, buf, sizeof buf) == nullptr) {
      return base::fail(Errc::kBadInput, "egress: \"" + r.addr + "\" is not a literal address");
    }
    if (r.port == 0) return base::fail(Errc::kBadInput, "egress: port 0 for " + r.addr);
    r.addr = buf;
  }
  std::sort(rules.begin(), rules.end());
  rules.erase(std::unique(rules.begin(), rules.end()), rules.end());
  return rules;
}

base::Result<std::string> egress_commands(const std::string& family, const std::string& table,
                                          const std::vector<EgressRule>& rules) {
  if (!safe_word(family) || !safe_word(table))
    return base::fail(Errc::kBadInput, "egress: nft table name holds unexpected characters");
  auto norm = normalize_egress(rules);
  if (!norm) return tl::unexpected(norm.error());
  const std::string t = family + " " + table + " ";
  std::string s;
  for (bool v6 : {false, true}) {
    const std::string set = t + std::string(v6 ? kEgressSet6 : kEgressSet4);
    s += "flush set " + set + "\n";
    if (auto e = elements(*norm, v6); !e.empty()) s += "add element " + set + " { " + e + " }\n";
  }
  return s;
}

base::Result<std::vector<EgressDrops>> parse_egress_drops(std::string_view text) {
  std::vector<EgressDrops> out;
  const auto at = text.find("elements = {");
  if (at == std::string_view::npos) return out;  // no cell has dropped anything yet
  std::string_view rest = text.substr(at + 12);
  rest = rest.substr(0, rest.find('}'));
  for (;;) {
    const auto q1 = rest.find('"');
    if (q1 == std::string_view::npos) break;
    const auto q2 = rest.find('"', q1 + 1);
    if (q2 == std::string_view::npos)
      return base::fail(Errc::kBadInput, "egress drops: open quote");
    EgressDrops d;
    d.host_if = std::string(rest.substr(q1 + 1, q2 - q1 - 1));
    rest.remove_prefix(q2 + 1);
    // The element ends at the next comma (or the end of the list).
    const std::string_view elem = rest.substr(0, rest.find(','));
    const auto p = elem.find("packets ");
    if (p == std::string_view::npos)
      return base::fail(Errc::kBadInput, "egress drops: no packet count for " + d.host_if);
    std::string_view num = elem.substr(p + 8);
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), d.packets);
    if (ec != std::errc() || end == num.data())
      return base::fail(Errc::kBadInput, "egress drops: bad packet count for " + d.host_if);
    out.push_back(std::move(d));
  }
  return out;
}

base::Result<std::vector<EgressDrops>> read_egress_drops(const std::string& family,
                                                         const std::string& table) {
  if (!safe_word(family) || !safe_word(table))
    return base::fail(Errc::kBadInput, "egress: nft table name holds unexpected characters");
  auto text =
      nft_list("list set " + family + " " + table + " " + std::string(kEgressDropSet) + "\n");
  if (!text) return tl::unexpected(text.error());
  return parse_egress_drops(*text);
}

}  // namespace mtw::netns
