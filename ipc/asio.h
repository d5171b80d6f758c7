// The Asio vocabulary every process of mtwarden shares (supervisor, worker,
// gate): the headers, the nothrow completion token and the socket helpers.
// Precompiled (target_precompile_headers) so only this header pays for Asio.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "proto/dc_table.h"

namespace mtw::ipc {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
template <class T = void>
using awaitable = asio::awaitable<T>;
using Clock = std::chrono::steady_clock;

// Completion token: errors come back as a tuple element, never as exceptions.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// TCP_NODELAY and keepalive (60 s idle, 10 s interval, 3 probes). Errors ignored:
// a socket that cannot take them still works. Linux copies all five options
// from a listener to the sockets it accepts, so tune_listener() once replaces
// tune_socket() on every accepted client (handed-off sockets still need it).
void tune_socket(tcp::socket& s) noexcept;
void tune_listener(tcp::acceptor& a) noexcept;

// Resolves `ep` (address literal without a lookup) and connects `sock` to the
// first address that answers, leaving it in non-blocking mode (speculative
// read_some calls report would_block instead of blocking). The caller
// enforces the deadline by closing the socket. Returns the last error on
// failure.
awaitable<error_code> connect_endpoint(tcp::socket& sock, const proto::Endpoint& ep);
// The same for addresses already known, tried in order.
awaitable<error_code> connect_addresses(tcp::socket& sock,
                                        const std::vector<tcp::endpoint>& targets);

// A co_spawn completion handler that logs an escaped exception under `what`.
struct LogExceptions {
  const char* what;
  void operator()(std::exception_ptr e) const noexcept;
};

}  // namespace mtw::ipc
