// Telegram DC address table (protocol.md §3) with per-index overrides.
#include "proto/dc_table.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace mtw::proto {
namespace {

constexpr std::int16_t kDefaultDc = 2;  // mtg's DefaultDC for 0 and unknown indices
constexpr int kTestDcOffset = 10000;

struct ProductionDc {
  std::int16_t dc;
  std::vector<const char*> v4, v6;
};

// PY TG_DATACENTERS_V4/V6 and mtg essentials/addresses.go; DC 2's second v4
// address is mtg's extra.
const std::vector<ProductionDc>& production() {
  static const std::vector<ProductionDc> table = {
      {1, {"149.154.175.50"}, {"2001:b28:f23d:f001::a"}},
      {2, {"149.154.167.51", "95.161.76.100"}, {"2001:67c:04e8:f002::a"}},
      {3, {"149.154.175.100"}, {"2001:b28:f23d:f003::a"}},
      {4, {"149.154.167.91"}, {"2001:67c:04e8:f004::a"}},
      {5, {"149.154.171.5"}, {"2001:b28:f23f:f005::a"}},
      {203, {"91.105.192.100"}, {"2a0a:f280:203:a:5000::100"}},
  };
  return table;
}

bool valid_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

bool valid_ipv6_char(char c) noexcept {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':' ||
         c == '.';
}

template <class Int>
bool parse_int(std::string_view s, Int& out) noexcept {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view text) {
  Endpoint e;
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return base::fail(Errc::kBadInput, "endpoint: expected [IPv6]:PORT");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos ||
        !std::all_of(host.begin(), host.end(), valid_ipv6_char)) {
      return base::fail(Errc::kBadInput, "endpoint: bad IPv6 address in brackets");
    }
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return base::fail(Errc::kBadInput, "endpoint: missing :PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (!std::all_of(host.begin(), host.end(), valid_host_char)) {
      return base::fail(Errc::kBadInput, "endpoint: bad host (IPv6 needs brackets)");
    }
  }
  if (host.empty()) return base::fail(Errc::kBadInput, "endpoint: empty host");
  if (!parse_int(port, e.port) || e.port == 0) {
    return base::fail(Errc::kBadInput, "endpoint: port must be 1..65535");
  }
  e.host = std::string(host);
  return e;
}

Result<std::vector<Endpoint>> parse_endpoint_list(std::string_view text) {
  std::vector<Endpoint> out;
  for (;;) {
    const std::size_t comma = text.find(',');
    Result<Endpoint> e = parse_endpoint(text.substr(0, comma));
    if (!e) return tl::unexpected(e.error());
    out.push_back(std::move(*e));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
  }
}

std::string format_endpoint(const Endpoint& e) {
  const bool v6 = e.host.find(':') != std::string::npos;
  return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

DcTable::DcTable() {
  for (const ProductionDc& p : production()) {
    Entry& entry = entries_[p.dc];
    for (const char* a : p.v4) entry.v4.push_back(Endpoint{a, 443});
    for (const char* a : p.v6) entry.v6.push_back(Endpoint{a, 443});
  }
}

void DcTable::set(std::int16_t dc, std::vector<Endpoint> endpoints) {
  Entry& entry = entries_[dc];
  entry.overridden = !endpoints.empty();
  entry.custom = std::move(endpoints);
}

Result<void> DcTable::set_from_text(std::string_view spec) {
  const std::size_t eq = spec.find('=');
  if (eq == std::string_view::npos)
    return base::fail(Errc::kBadInput, "dc override: expected N=HOST:PORT");
  std::int16_t dc = 0;
  if (!parse_int(spec.substr(0, eq), dc) || dc == 0) {
    return base::fail(Errc::kBadInput, "dc override: N must be a non-zero int16");
  }
  Result<std::vector<Endpoint>> endpoints = parse_endpoint_list(spec.substr(eq + 1));
  if (!endpoints) return tl::unexpected(endpoints.error());
  set(dc, std::move(*endpoints));
  return {};
}

std::vector<Endpoint> DcTable::lookup(std::int16_t dc, bool prefer_ipv6) const {
  const auto overridden = [this](int index) -> const Entry* {
    const auto it = entries_.find(static_cast<std::int16_t>(index));
    return it != entries_.end() && it->second.overridden ? &it->second : nullptr;
  };
  // An override keeps its listed order; prefer_ipv6 moves its IPv6
  // literals to the front.
  const auto custom = [prefer_ipv6](const Entry& e) {
    std::vector<Endpoint> out = e.custom;
    if (prefer_ipv6) {
      std::stable_partition(out.begin(), out.end(), [](const Endpoint& ep) {
        return ep.host.find(':') != std::string::npos;
      });
    }
    return out;
  };
  // Most specific first: the exact index, then the plain production DC.
  if (const Entry* e = overridden(dc)) return custom(*e);
  int plain = std::abs(static_cast<int>(dc));
  if (plain > kTestDcOffset) plain %= kTestDcOffset;
  if (const Entry* e = overridden(plain)) return custom(*e);
  auto it = entries_.find(static_cast<std::int16_t>(plain));
  if (it == entries_.end() || (it->second.v4.empty() && it->second.v6.empty())) {
    if (const Entry* e = overridden(kDefaultDc)) return custom(*e);
    it = entries_.find(kDefaultDc);
  }
  const Entry& entry = it->second;
  std::vector<Endpoint> out = prefer_ipv6 ? entry.v6 : entry.v4;
  const std::vector<Endpoint>& second = prefer_ipv6 ? entry.v4 : entry.v6;
  out.insert(out.end(), second.begin(), second.end());
  return out;
}

}  // namespace mtw::proto
