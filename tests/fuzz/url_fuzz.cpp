// Fuzzes base::parse_http_url (the config's [api] webhooks and
// public_host_lookup URLs). The whole input is one URL. Properties:
//  - errors are kBadInput only, with a non-empty reason;
//  - a parsed URL has a non-empty host, a port != 0, a target starting with
//    '/', and no space, control or non-ASCII byte in host or target;
//  - round trip: parse(format(u)) == u, and format is a fixed point of
//    format∘parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/url.h"

namespace {

using mtw::base::Errc;
using mtw::base::HttpUrl;

bool visible_ascii(std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

void check_parsed(const HttpUrl& u) {
  if (u.host.empty() || u.port == 0 || u.target.empty() || u.target.front() != '/') std::abort();
  if (!visible_ascii(u.host) || !visible_ascii(u.target)) std::abort();
  if (u.target.find('#') != std::string::npos || u.host.find('@') != std::string::npos)
    std::abort();
  const std::string text = mtw::base::format_http_url(u);
  const auto again = mtw::base::parse_http_url(text);
  if (!again || *again != u) std::abort();
  if (mtw::base::format_http_url(*again) != text) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto u = mtw::base::parse_http_url(in);
  if (!u) {
    if (u.error().code != Errc::kBadInput || u.error().context.empty()) std::abort();
    return 0;
  }
  check_parsed(*u);
  return 0;
}
