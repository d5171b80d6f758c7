// Beast client over asio::local::stream_protocol or TCP. Operations are
// asynchronous on a private io_context driven with run_for(), which gives
// the whole exchange one deadline without threads or socket options.
#include "ctl/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace mtw::ctl {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using base::Errc;
using base::fail;
using base::Result;
using boost::system::error_code;

namespace {

constexpr std::uint64_t kBodyLimit = 32u << 20;

// Maps a connect error to the kinds the CLI explains differently.
base::Error connect_error(const error_code& ec, const std::string& where) {
  int e = ec.value();
  if (ec.category() == boost::system::system_category() ||
      ec.category() == asio::error::get_system_category()) {
    if (e == ENOENT) return {Errc::kNotFound, e, where + ": no such socket"};
    if (e == EACCES || e == EPERM) return {Errc::kPermission, e, where + ": permission denied"};
  }
  return {Errc::kSyscall, e, where + ": " + ec.message()};
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(Endpoint ep, std::chrono::milliseconds timeout)
      : ep_(std::move(ep)), timeout_(timeout) {}

  Result<HttpResponse> send(const std::string& method, const std::string& target,
                            const std::string& body) override {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, ep_.tcp ? ep_.host + ":" + ep_.port : std::string("localhost"));
    req.set(http::field::user_agent, "mtwardenctl");
    req.set(http::field::accept, "application/json, image/png, image/svg+xml");
    if (!ep_.token.empty()) req.set(http::field::authorization, "Bearer " + ep_.token);
    if (!body.empty()) {  // "none or {}": a bodyless POST needs no type
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.keep_alive(false);
    req.prepare_payload();
    if (ep_.tcp) {
      asio::ip::tcp::socket sock(io_);
      return exchange(sock, req);
    }
    asio::local::stream_protocol::socket sock(io_);
    return exchange(sock, req);
  }

 private:
  template <class Socket>
  Result<HttpResponse> exchange(Socket& sock, http::request<http::string_body>& req) {
    std::optional<base::Error> err;
    bool connected = false, done = false;
    boost::beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kBodyLimit);
    std::string where = ep_.tcp ? "http://" + ep_.host + ":" + ep_.port : ep_.socket_path;

    auto on_read = [&](error_code ec, std::size_t) {
      done = true;
      if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
        err = base::Error{Errc::kBadInput, 0,
                          "response: the connection closed before a complete answer"};
      } else if (ec == http::error::body_limit) {
        err = base::Error{Errc::kBadInput, 0, "response: body over 32 MiB"};
      } else if (ec &&
                 ec.category() == http::make_error_code(http::error::bad_version).category()) {
        err = base::Error{Errc::kBadInput, 0, "response: not HTTP (" + ec.message() + ")"};
      } else if (ec) {
        err = base::Error{Errc::kSyscall, ec.value(), "response: " + ec.message()};
      }
    };
    auto on_connected = [&](error_code ec) {
      if (ec) {
        err = connect_error(ec, where);
        done = true;
        return;
      }
      connected = true;
      http::async_write(sock, req, [&](error_code wec, std::size_t) {
        if (wec) {
          err = base::Error{Errc::kSyscall, wec.value(),
                            "response: sending the request: " + wec.message()};
          done = true;
          return;
        }
        http::async_read(sock, buf, parser, on_read);
      });
    };
    start_connect(sock, where, on_connected, err, done);
    io_.run_for(timeout_);
    if (!done) {
      error_code ignored;
      sock.close(ignored);
      if (resolver_) resolver_->cancel();
      io_.run();  // let the cancelled handlers finish before locals go away
      auto ms = timeout_.count();
      auto within = ms % 1000 ? std::to_string(ms) + " ms" : std::to_string(ms / 1000) + " s";
      return fail(Errc::kTimeout, connected ? "response: no answer within " + within
                                            : where + ": no connection within " + within);
    }
    if (err) return tl::unexpected(*err);
    auto& res = parser.get();
    return HttpResponse{res.result_int(), std::string(res[http::field::content_type]),
                        std::move(res.body())};
  }

  template <class Handler>
  void start_connect(asio::local::stream_protocol::socket& sock, const std::string&, Handler&& h,
                     std::optional<base::Error>&, bool&) {
    sock.async_connect(asio::local::stream_protocol::endpoint(ep_.socket_path),
                       std::forward<Handler>(h));
  }

  template <class Handler>
  void start_connect(asio::ip::tcp::socket& sock, const std::string& where, Handler&& h,
                     std::optional<base::Error>& err, bool& done) {
    resolver_.emplace(io_);
    resolver_->async_resolve(
        ep_.host, ep_.port, [&, h](error_code ec, asio::ip::tcp::resolver::results_type r) {
          if (ec) {
            err = base::Error{Errc::kSyscall, ec.value(),
                              where + ": cannot resolve " + ep_.host + ": " + ec.message()};
            done = true;
            return;
          }
          asio::async_connect(
              sock, r, [h](error_code cec, const asio::ip::tcp::endpoint&) mutable { h(cec); });
        });
  }

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  asio::io_context io_;
  std::optional<asio::ip::tcp::resolver> resolver_;
};

}  // namespace

std::unique_ptr<Transport> make_http_transport(const Endpoint& endpoint,
                                               std::chrono::milliseconds timeout) {
  return std::make_unique<HttpTransport>(endpoint, timeout);
}

}  // namespace mtw::ctl
