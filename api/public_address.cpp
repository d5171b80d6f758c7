// See public_address.h.
#include "api/public_address.h"

#include <boost/asio/ip/address.hpp>

#include "api/http_get.h"
#include "base/url.h"

namespace mtw::api {

base::Result<std::string> lookup_public_address(std::string_view url,
                                                std::chrono::milliseconds timeout) {
  auto u = base::parse_http_url(url);
  if (!u) return base::fail(base::Errc::kBadInput, "public_host_lookup: " + u.error().context);
  if (u->tls)
    return base::fail(base::Errc::kBadInput, "public_host_lookup: only http:// is supported");
  // An address is at most 45 characters; a page is not an answer.
  auto got = http_get(url, timeout, 4096);
  if (!got) {
    auto e = got.error();
    if (e.code == base::Errc::kTimeout) e.context = "no answer in time";
    e.context = "public_host_lookup: " + e.context;
    return tl::unexpected(std::move(e));
  }
  std::string body = std::move(*got);
  const auto b = body.find_first_not_of(" \t\r\n");
  const auto e = body.find_last_not_of(" \t\r\n");
  body = b == std::string::npos ? std::string() : body.substr(b, e - b + 1);
  boost::system::error_code ec;
  auto addr = boost::asio::ip::make_address(body, ec);
  if (ec || body.size() > 45) {
    return base::fail(base::Errc::kBadInput, "public_host_lookup: the answer is not an IP address");
  }
  return addr.to_string();
}

}  // namespace mtw::api
