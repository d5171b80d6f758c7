// See http_get.h.
#include "api/http_get.h"

#include <openssl/ssl.h>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "api/beast.h"
#include "base/url.h"

namespace mtw::api {
namespace {

using namespace detail;
namespace ssl = asio::ssl;

// Drives one GET on `stream` (connected, handshaken for TLS) to completion.
template <class Stream>
void exchange(Stream& stream, const base::HttpUrl& u, std::size_t max_bytes,
              http::response_parser<http::string_body>& parser, error_code& ec) {
  auto req = std::make_shared<http::request<http::empty_body>>(http::verb::get, u.target, 11);
  req->set(http::field::host, base::http_host_header(u));
  req->set(http::field::user_agent, "mtwarden");
  auto buf = std::make_shared<beast::flat_buffer>();
  parser.body_limit(max_bytes);
  http::async_write(stream, *req, [&, req, buf](const error_code& e, std::size_t) {
    if (e) {
      ec = e;
      return;
    }
    http::async_read(stream, *buf, parser,
                     [&, buf](const error_code& e2, std::size_t) { ec = e2; });
  });
}

}  // namespace

base::Result<std::string> http_get(std::string_view url, std::chrono::milliseconds timeout,
                                   std::size_t max_bytes) {
  auto u = base::parse_http_url(url);
  if (!u) return base::fail(base::Errc::kBadInput, u.error().context);
  asio::io_context io;
  error_code ec;
  tcp::resolver resolver(io);
  auto eps = resolver.resolve(u->host, std::to_string(u->port), ec);
  if (ec) return base::fail(base::Errc::kSyscall, "resolve " + u->host + ": " + ec.message());
  http::response_parser<http::string_body> parser;
  std::optional<ssl::context> ctx;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::optional<beast::tcp_stream> plain;
  beast::tcp_stream* lowest = nullptr;
  if (u->tls) {
    ctx.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    ctx->set_verify_mode(ssl::verify_peer);
    ctx->set_default_verify_paths(ec);
    tls.emplace(io, *ctx);
    error_code not_ip;
    asio::ip::make_address(u->host, not_ip);
    if (not_ip)  // SNI carries names only (RFC 6066), never an address literal
      SSL_set_tlsext_host_name(tls->native_handle(), u->host.c_str());
    tls->set_verify_callback(ssl::host_name_verification(u->host));
    lowest = &beast::get_lowest_layer(*tls);
  } else {
    plain.emplace(io);
    lowest = &*plain;
  }
  lowest->expires_after(timeout);
  // Asynchronous operations driven by run(): the stream's deadline applies
  // to each of them, which blocking calls would not honour.
  lowest->async_connect(eps, [&](const error_code& e, const auto&) {
    if (e) {
      ec = e;
      return;
    }
    if (!tls) {
      exchange(*plain, *u, max_bytes, parser, ec);
      return;
    }
    tls->async_handshake(ssl::stream_base::client, [&](const error_code& e2) {
      if (e2) {
        ec = e2;
        return;
      }
      exchange(*tls, *u, max_bytes, parser, ec);
    });
  });
  io.run();
  if (ec == beast::error::timeout) return base::fail(base::Errc::kTimeout, "no answer in time");
  if (ec == http::error::body_limit)
    return base::fail(base::Errc::kTooLarge, "answer over " + std::to_string(max_bytes) + " bytes");
  // A connection cut before Content-Length bytes arrived is partial_message:
  // an error like any other, so a truncated download never counts.
  if (ec) return base::fail(base::Errc::kSyscall, ec.message());
  const auto& res = parser.get();
  if (res.result() != http::status::ok)
    return base::fail(base::Errc::kBadInput, "HTTP " + std::to_string(res.result_int()));
  return res.body();
}

HttpFetcher::~HttpFetcher() {
  for (auto& j : jobs_) j.thread.join();
}

void HttpFetcher::fetch(const std::string& url, std::size_t max_bytes, Done done) {
  // Finished threads are joined here, so only the fetches in flight (three
  // sources a round) hold one.
  std::erase_if(jobs_, [](Job& j) {
    if (!j.finished->load()) return false;
    j.thread.join();
    return true;
  });
  auto finished = std::make_shared<std::atomic<bool>>(false);
  std::thread t([this, url, max_bytes, finished, done = std::move(done)]() mutable {
    auto r = http_get(url, timeout_, max_bytes);
    asio::post(io_, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    finished->store(true);
  });
  jobs_.push_back(Job{std::move(t), std::move(finished)});
}

}  // namespace mtw::api
