// The http:// and https:// URLs mtwarden itself dials (webhooks, the public
// address lookup): a pure parser shared by the config loader, which rejects a
// bad URL at load, and the clients that use it. Deliberately narrow: no user
// info, no fragment, no percent-decoding, ASCII only, so that what the config
// accepts is exactly what the clients send. Thread-safe: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::base {

struct HttpUrl {
  bool tls = false;          // https
  std::string host;          // a DNS name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 80;   // 80 / 443 unless the URL names one (1..65535)
  std::string target = "/";  // path and query as sent in the request line; starts with '/'

  bool operator==(const HttpUrl&) const = default;
};

// "http://HOST[:PORT][/PATH][?QUERY]" or "https://..."; HOST is a name
// (labels of [A-Za-z0-9-], 1..63 characters, no leading or trailing '-', at
// most 253 in all), a dotted IPv4 address, or a [bracketed] IPv6 address.
// The scheme is lower case. kBadInput with the reason (e.g. "port must be
// 1..65535") for anything else; the reason does not repeat the URL.
[[nodiscard]] Result<HttpUrl> parse_http_url(std::string_view url);

// The URL back in canonical form (default port omitted, IPv6 in brackets);
// parse_http_url(format_http_url(u)) == u for every parsed u.
[[nodiscard]] std::string format_http_url(const HttpUrl& u);

// The Host header value: the host (IPv6 in brackets) and the port when it is
// not the scheme's default.
[[nodiscard]] std::string http_host_header(const HttpUrl& u);

// `s` as one path segment or query value: every byte except RFC 3986's
// unreserved ones (A-Z a-z 0-9 - . _ ~) as %XX, upper-case hex.
[[nodiscard]] std::string percent_encode(std::string_view s);

}  // namespace mtw::base
