#include "proto/egress.h"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <limits>
#include <set>

namespace mtw::proto {
namespace {

using base::fail;

bool plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '~' || c == '[' || c == ']' || c == '-';
}

std::string encode(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : v) {
    if (plain(c)) {
      out += c;
    } else {
      const auto b = static_cast<unsigned char>(c);
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

Result<std::string> decode(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      if (!plain(v[i])) return fail(Errc::kBadInput, "unencoded byte in a value");
      out += v[i];
      continue;
    }
    unsigned x = 0;
    if (i + 2 >= v.size()) {
      return fail(Errc::kBadInput, "truncated %XX escape");
    }
    auto [p, ec] = std::from_chars(v.data() + i + 1, v.data() + i + 3, x, 16);
    if (ec != std::errc() || p != v.data() + i + 3) return fail(Errc::kBadInput, "bad %XX escape");
    out += static_cast<char>(x);
    i += 2;
  }
  return out;
}

Result<std::uint32_t> number(std::string_view v, std::uint32_t min, std::uint32_t max) {
  std::uint32_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < min || n > max) {
    return fail(Errc::kBadInput,
                "want an integer in " + std::to_string(min) + ".." + std::to_string(max));
  }
  return n;
}

bool ip_literal(const std::string& host) {
  std::array<unsigned char, 16> buf{};
  return ::inet_pton(AF_INET, host.c_str(), buf.data()) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf.data()) == 1;
}

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 64 || n[0] == '.' || n[0] == '-') return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-')) {
      return false;
    }
  }
  return true;
}

Result<void> read_policy(std::string_view key, const std::string& value, EgressPolicy& p) {
  auto set = [&](std::uint32_t& out, std::uint32_t min, std::uint32_t max) -> Result<void> {
    auto n = number(value, min, max);
    if (!n) return tl::unexpected(n.error());
    out = *n;
    return {};
  };
  if (key == "health_interval_ms") return set(p.health_interval_ms, 0, 86'400'000);
  if (key == "failures") return set(p.failures, 1, 1'000);
  if (key == "retry_min_ms") return set(p.retry_min_ms, 1, 86'400'000);
  if (key == "retry_max_ms") return set(p.retry_max_ms, 1, 86'400'000);
  if (key == "health_dc") {
    // Signed DC numbers; the wire form is the unsigned value + 32768.
    std::uint32_t biased = 0;
    if (auto r = set(biased, 0, 65535); !r) return r;
    p.health_dc = static_cast<std::int16_t>(static_cast<std::int32_t>(biased) - 32768);
    if (p.health_dc == 0) return fail(Errc::kBadInput, "DC 0");
    return {};
  }
  if (key == "fallback_direct") {
    if (value != "0" && value != "1") return fail(Errc::kBadInput, "want 0 or 1");
    p.fallback_direct = value == "1";
    return {};
  }
  return fail(Errc::kBadInput, "unknown policy key");
}

Result<void> read_upstream(std::string_view key, const std::string& value, UpstreamSpec& u,
                           std::set<std::string, std::less<>>& seen) {
  if (!seen.insert(std::string(key)).second) return fail(Errc::kBadInput, "repeated key");
  if (key == "name") {
    if (!valid_name(value)) return fail(Errc::kBadInput, "bad upstream name");
    u.name = value;
  } else if (key == "type") {
    if (value == "direct") {
      u.type = UpstreamType::kDirect;
    } else if (value == "socks4") {
      u.type = UpstreamType::kSocks4;
    } else if (value == "socks5") {
      u.type = UpstreamType::kSocks5;
    } else {
      return fail(Errc::kBadInput, "type must be direct, socks4 or socks5");
    }
  } else if (key == "address") {
    auto e = parse_endpoint(value);
    if (!e || !ip_literal(e->host)) {
      return fail(Errc::kBadInput, "address must be IP:PORT or [IPv6]:PORT");
    }
    u.address = *e;
  } else if (key == "weight") {
    auto n = number(value, 1, 1'000);
    if (!n) return tl::unexpected(n.error());
    u.weight = *n;
  } else if (key == "username") {
    if (value.empty() || value.size() > 255) return fail(Errc::kBadInput, "username: 1..255 bytes");
    u.username = value;
  } else if (key == "password") {
    if (value.empty() || value.size() > 255) return fail(Errc::kBadInput, "password: 1..255 bytes");
    u.password = value;
  } else {
    return fail(Errc::kBadInput, "unknown upstream key");
  }
  return {};
}

Result<void> check_upstream(const UpstreamSpec& u, const std::set<std::string, std::less<>>& seen) {
  if (!seen.contains("name") || !seen.contains("type")) {
    return fail(Errc::kBadInput, "upstream needs name and type");
  }
  const bool socks = u.type != UpstreamType::kDirect;
  if (socks != seen.contains("address")) {
    return fail(Errc::kBadInput,
                socks ? "a SOCKS upstream needs an address" : "a direct upstream has no address");
  }
  if (u.type != UpstreamType::kSocks5 && !u.password.empty()) {
    return fail(Errc::kBadInput, "only socks5 carries a password");
  }
  if (u.type == UpstreamType::kSocks5 && u.username.empty() != u.password.empty()) {
    return fail(Errc::kBadInput, "socks5 needs both username and password, or neither");
  }
  if (u.type == UpstreamType::kDirect && !u.username.empty()) {
    return fail(Errc::kBadInput, "a direct upstream has no username");
  }
  if (u.type == UpstreamType::kSocks4 && u.username.find('\0') != std::string::npos) {
    return fail(Errc::kBadInput, "socks4 user id contains NUL");
  }
  return {};
}

}  // namespace

std::string_view upstream_type_name(UpstreamType t) noexcept {
  switch (t) {
    case UpstreamType::kDirect:
      return "direct";
    case UpstreamType::kSocks4:
      return "socks4";
    case UpstreamType::kSocks5:
      return "socks5";
  }
  return "direct";
}

std::string format_egress(const EgressSpec& spec) {
  const EgressPolicy& p = spec.policy;
  std::string out = "policy health_interval_ms=";
  out += std::to_string(p.health_interval_ms);
  out += " health_dc=";
  out += std::to_string(static_cast<std::int32_t>(p.health_dc) + 32768);
  out += " failures=";
  out += std::to_string(p.failures);
  out += " retry_min_ms=";
  out += std::to_string(p.retry_min_ms);
  out += " retry_max_ms=";
  out += std::to_string(p.retry_max_ms);
  out += " fallback_direct=";
  out += p.fallback_direct ? "1" : "0";
  out += "\n";
  for (const UpstreamSpec& u : spec.upstreams) {
    out += "upstream name=";
    out += encode(u.name);
    out += " type=";
    out += upstream_type_name(u.type);
    if (u.type != UpstreamType::kDirect) {
      out += " address=";
      out += encode(format_endpoint(u.address));
    }
    out += " weight=";
    out += std::to_string(u.weight);
    if (!u.username.empty()) {
      out += " username=";
      out += encode(u.username);
    }
    if (!u.password.empty()) {
      out += " password=";
      out += encode(u.password);
    }
    out += "\n";
  }
  return out;
}

Result<EgressSpec> parse_egress(std::string_view text) {
  EgressSpec spec;
  bool have_policy = false;
  std::set<std::string, std::less<>> names;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    auto bad = [&](const std::string& why) {
      return fail(Errc::kBadInput, "egress line " + std::to_string(line_no) + ": " + why);
    };
    const auto sp = line.find(' ');
    const std::string_view kind = line.substr(0, sp);
    std::string_view rest = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (kind != "policy" && kind != "upstream") return bad("unknown record");
    if (kind == "policy" && have_policy) return bad("second policy record");
    UpstreamSpec u;
    std::set<std::string, std::less<>> seen;
    while (!rest.empty()) {
      const auto next = rest.find(' ');
      const std::string_view field = rest.substr(0, next);
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
      const auto eq = field.find('=');
      if (eq == std::string_view::npos || eq == 0) return bad("field without key=value");
      const std::string_view key = field.substr(0, eq);
      auto value = decode(field.substr(eq + 1));
      if (!value) return bad(value.error().context);
      auto r = kind == "policy" ? read_policy(key, *value, spec.policy)
                                : read_upstream(key, *value, u, seen);
      if (!r) return bad(std::string(key) + ": " + r.error().context);
    }
    if (kind == "policy") {
      have_policy = true;
      continue;
    }
    if (auto r = check_upstream(u, seen); !r) return bad(r.error().context);
    if (!names.insert(u.name).second) return bad("duplicate upstream name " + u.name);
    spec.upstreams.push_back(std::move(u));
  }
  if (spec.policy.retry_min_ms > spec.policy.retry_max_ms) {
    return fail(Errc::kBadInput, "egress policy: retry_min_ms above retry_max_ms");
  }
  return spec;
}

}  // namespace mtw::proto
