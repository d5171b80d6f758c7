// See url.h. The checks are stricter than RFC 3986 on purpose: every URL that
// passes is one the resolver, the TLS name check and the receiver all read
// the same way, so a typo is a load-time error rather than a failed delivery.
#include "base/url.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace mtw::base {
namespace {

constexpr std::string_view kHttp = "http://", kHttps = "https://";
constexpr std::size_t kMaxHostName = 253;  // RFC 1035 limits, in text form
constexpr std::size_t kMaxLabel = 63;

tl::unexpected<Error> bad(std::string why) { return fail(Errc::kBadInput, std::move(why)); }

// The offending character for a message: quoted when printable, else \xNN,
// so that a control character in a config value cannot garble the log line.
std::string shown(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u > 0x20 && u < 0x7f) return std::string("'") + c + "'";
  if (u == 0x20) return "' '";
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "\\x%02x", u);
  return buf.data();
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-';
}

// A DNS name or, when its last label is numeric, a dotted IPv4 address
// (getaddrinfo would otherwise read "10.1" or "2130706433" as addresses too).
Result<void> check_name(std::string_view host) {
  if (host.size() > kMaxHostName)
    return bad("host name longer than " + std::to_string(kMaxHostName) + " characters");
  for (char c : host)
    if (c != '.' && !name_char(c)) return bad("bad character " + shown(c) + " in the host");
  std::string_view last;
  for (std::size_t start = 0;;) {
    const std::size_t dot = host.find('.', start);
    const std::string_view label =
        host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty())
      return bad("empty label in the host name (a leading, trailing or double '.')");
    if (label.size() > kMaxLabel)
      return bad("a host name label is longer than " + std::to_string(kMaxLabel) + " characters");
    if (label.front() == '-' || label.back() == '-')
      return bad("a host name label starts or ends with '-'");
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (std::all_of(last.begin(), last.end(), is_digit)) {
    const std::string text(host);
    unsigned char addr[4];
    if (::inet_pton(AF_INET, text.c_str(), addr) != 1) return bad("bad IPv4 address");
  }
  return {};
}

Result<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty()) return bad("empty port");
  unsigned p = 0;
  for (char c : text) {
    if (!is_digit(c) || p > 65535) return bad("port must be a number 1..65535");
    p = p * 10 + static_cast<unsigned>(c - '0');
  }
  if (p == 0 || p > 65535) return bad("port must be a number 1..65535");
  return static_cast<std::uint16_t>(p);
}

// HOST[:PORT] into `out`; the IPv6 form is [ADDR][:PORT].
Result<void> parse_authority(std::string_view authority, HttpUrl& out) {
  if (authority.find('@') != std::string_view::npos)
    return bad("user info (user@) is not supported");
  if (authority.empty()) return bad("no host");
  std::string_view port_text;
  bool has_port = false;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated [IPv6] address");
    out.host = std::string(authority.substr(1, close - 1));
    // inet_pton reads a C string: a NUL (or anything not hex, ':' or '.')
    // would let it judge only a prefix of the host.
    const bool ipv6_chars = std::all_of(out.host.begin(), out.host.end(), [](char c) {
      return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' ||
             c == '.';
    });
    unsigned char addr[16];
    if (out.host.empty() || !ipv6_chars || ::inet_pton(AF_INET6, out.host.c_str(), addr) != 1)
      return bad("bad IPv6 address");
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("junk after the [IPv6] address");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos && authority.find(':', colon + 1) != std::string_view::npos)
      return bad("an IPv6 address must be in [brackets]");
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return bad("no host");
    if (auto ok = check_name(host); !ok) return ok;
    out.host = std::string(host);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    auto p = parse_port(port_text);
    if (!p) return tl::unexpected(p.error());
    out.port = *p;
  }
  return {};
}

}  // namespace

Result<HttpUrl> parse_http_url(std::string_view url) {
  HttpUrl out;
  std::string_view rest;
  if (url.starts_with(kHttps)) {
    out.tls = true;
    out.port = 443;
    rest = url.substr(kHttps.size());
  } else if (url.starts_with(kHttp)) {
    rest = url.substr(kHttp.size());
  } else {
    return bad("must start with http:// or https://");
  }
  // The authority ends where the path, the query or a fragment begins.
  const std::size_t end = std::min(rest.find_first_of("/?#"), rest.size());
  if (auto ok = parse_authority(rest.substr(0, end), out); !ok) return tl::unexpected(ok.error());
  const std::string_view tail = rest.substr(end);
  if (tail.find('#') != std::string_view::npos) return bad("fragments (#...) are not supported");
  // Only visible ASCII: a space or a raw byte would split or garble the
  // request line; such characters must be percent-encoded in the config.
  for (char c : tail) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return bad("bad character " + shown(c) + " in the path (percent-encode it)");
  }
  // Built by appending: GCC 12 -O2 warns (-Wrestrict, a false positive) on
  // "literal" + std::string here and in http_host_header.
  out.target.clear();
  if (tail.empty() || tail.front() == '?') out.target += '/';
  out.target += tail;
  return out;
}

std::string http_host_header(const HttpUrl& u) {
  const bool v6 = u.host.find(':') != std::string::npos;
  std::string h;
  if (v6) h += '[';
  h += u.host;
  if (v6) h += ']';
  if (u.port != (u.tls ? 443 : 80)) {
    h += ':';
    h += std::to_string(u.port);
  }
  return h;
}

std::string format_http_url(const HttpUrl& u) {
  return std::string(u.tls ? kHttps : kHttp) + http_host_header(u) + u.target;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace mtw::base
