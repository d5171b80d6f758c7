#include "webfront/backend.h"

#include "webfront/beast.h"

namespace mtw::webfront {
namespace {

using namespace detail;

class TcpBackend final : public StreamBackend {
 public:
  TcpBackend(asio::io_context& io, const proto::Endpoint& target, std::uint32_t timeout_ms)
      : io_(io), target_(target), timeout_ms_(timeout_ms) {}

  awaitable<base::Result<base::UniqueFd>> open(proto::WebUserId, const ClientAddress&) override {
    error_code ec;
    auto addr = asio::ip::make_address(target_.host, ec);
    if (ec) co_return base::fail(base::Errc::kBadInput, "backend is not a numeric address");
    beast::tcp_stream stream(io_);
    stream.expires_after(std::chrono::milliseconds(timeout_ms_));
    auto [cec] = co_await stream.async_connect(tcp::endpoint(addr, target_.port), use_nothrow);
    if (cec == beast::error::timeout) co_return base::fail(base::Errc::kTimeout, "backend connect");
    if (cec) co_return base::fail(base::Errc::kSyscall, "backend connect: " + cec.message());
    stream.socket().set_option(tcp::no_delay(true), ec);
    co_return base::UniqueFd(stream.release_socket().release());
  }

 private:
  asio::io_context& io_;
  proto::Endpoint target_;
  std::uint32_t timeout_ms_;
};

}  // namespace

std::unique_ptr<StreamBackend> make_tcp_backend(boost::asio::io_context& io,
                                                const proto::Endpoint& target,
                                                std::uint32_t timeout_ms) {
  return std::make_unique<TcpBackend>(io, target, timeout_ms);
}

}  // namespace mtw::webfront
