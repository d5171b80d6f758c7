// See public_address.h.
#include "api/public_address.h"

#include "api/beast.h"
#include "base/url.h"

namespace mtw::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

base::Result<std::string> lookup_public_address(std::string_view url,
                                                std::chrono::milliseconds timeout) {
  auto u = base::parse_http_url(url);
  if (!u) return base::fail(base::Errc::kBadInput, "public_host_lookup: " + u.error().context);
  if (u->tls)
    return base::fail(base::Errc::kBadInput, "public_host_lookup: only http:// is supported");
  asio::io_context io;
  beast::tcp_stream stream(io);
  boost::system::error_code ec;
  asio::ip::tcp::resolver resolver(io);
  auto eps = resolver.resolve(u->host, std::to_string(u->port), ec);
  if (ec)
    return base::fail(base::Errc::kSyscall,
                      "public_host_lookup: resolve " + u->host + ": " + ec.message());
  stream.expires_after(timeout);
  http::request<http::empty_body> req{http::verb::get, u->target, 11};
  req.set(http::field::host, base::http_host_header(*u));  // [IPv6] and a non-default port
  req.set(http::field::user_agent, "mtwarden");
  http::response<http::string_body> res;
  beast::flat_buffer buf;
  // Asynchronous operations driven by run(): tcp_stream's deadline applies
  // to each of them, which the blocking calls would not honour.
  stream.async_connect(eps, [&](const boost::system::error_code& e, const auto&) {
    if (e) {
      ec = e;
      return;
    }
    http::async_write(stream, req, [&](const boost::system::error_code& e2, std::size_t) {
      if (e2) {
        ec = e2;
        return;
      }
      http::async_read(stream, buf, res,
                       [&](const boost::system::error_code& e3, std::size_t) { ec = e3; });
    });
  });
  io.run();
  if (ec == beast::error::timeout)
    return base::fail(base::Errc::kTimeout, "public_host_lookup: no answer in time");
  if (ec) return base::fail(base::Errc::kSyscall, "public_host_lookup: " + ec.message());
  if (res.result() != http::status::ok) {
    return base::fail(base::Errc::kBadInput,
                      "public_host_lookup: HTTP " + std::to_string(res.result_int()));
  }
  std::string body = res.body();
  const auto b = body.find_first_not_of(" \t\r\n");
  const auto e = body.find_last_not_of(" \t\r\n");
  body = b == std::string::npos ? std::string() : body.substr(b, e - b + 1);
  auto addr = asio::ip::make_address(body, ec);
  if (ec || body.size() > 45) {
    return base::fail(base::Errc::kBadInput, "public_host_lookup: the answer is not an IP address");
  }
  return addr.to_string();
}

}  // namespace mtw::api
