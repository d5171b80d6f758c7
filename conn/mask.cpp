// Connection: masking. A connection that fails the handshake goes to the mask
// host with every byte already read, then both directions are spliced until
// each side has closed (a FIN is passed on as a FIN). Without a mask host the
// client is read and discarded until a jittered timeout: closing at once
// would tell a prober that the bytes meant something.
#include <array>

#include "base/log.h"
#include "conn/connection.h"
#include "proto/random.h"

namespace mtw::conn {
namespace {

// Discarded bytes land here; any number of pending reads may share it since
// nobody looks at the contents (single-threaded process).
std::array<std::byte, 4096> g_discard;

}  // namespace

awaitable<void> Connection::mask(BufferLease& buf, std::size_t filled, bool client_eof) {
  static const auto log = base::logger("conn");
  ++rt_.counters[Counter::kMasked];
  if (!rt_.settings.mask) {
    co_await discard(buf);
    co_return;
  }
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.settings.connect_timeout_ms);
  if (auto ec = co_await connect_endpoint(upstream_, *rt_.settings.mask); ec) {
    log->warn("mask connect failed error={}", ec.message());
    co_await discard(buf);
    co_return;
  }
  tune_socket(upstream_);
  phase_ = Phase::kMask;
  last_activity_ = Clock::now();
  if (filled != 0) {
    auto [ec, n] =
        co_await asio::async_write(upstream_, asio::buffer(buf.data(), filled), use_nothrow);
    if (ec) {
      close();
      co_return;
    }
    rt_.counters[Counter::kMaskedBytesToMask] += filled;
  }
  buf.reset();
  error_code ignored;
  if (client_eof) upstream_.shutdown(tcp::socket::shutdown_send, ignored);
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> {
        co_await self->splice(self->upstream_, self->client_, Counter::kMaskedBytesFromMask);
      },
      LogExceptions{"mask splice"});
  if (!client_eof) co_await splice(client_, upstream_, Counter::kMaskedBytesToMask);
}

awaitable<void> Connection::splice(tcp::socket& from, tcp::socket& to, Counter counter) {
  // Buffers as in the relay (relay.cpp): none while idle, kept while
  // speculative reads return data.
  BufferLease buf;
  for (;;) {
    error_code ec = asio::error::would_block;
    std::size_t n = 0;
    if (buf) n = from.read_some(asio::buffer(buf.data(), kBufferSize), ec);
    if (ec == asio::error::would_block) {
      if (co_await wait_readable(from, buf)) continue;
      close();
      co_return;
    }
    if (ec == asio::error::eof) {
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);  // pass the FIN on
      co_return;
    }
    if (ec) {
      close();
      co_return;
    }
    rt_.counters[counter] += n;
    last_activity_ = Clock::now();
    auto [wr, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), use_nothrow);
    if (wr) {
      close();
      co_return;
    }
  }
}

awaitable<void> Connection::discard(BufferLease& buf) {
  buf.reset();
  phase_ = Phase::kDiscard;
  const std::uint32_t base_ms = rt_.settings.mask_discard_timeout_ms;
  const std::uint32_t jitter_ms = proto::system_random().uniform(0, base_ms);
  deadline_ = Clock::now() + std::chrono::milliseconds(std::uint64_t{base_ms} + jitter_ms);
  for (;;) {
    auto [ec, n] = co_await client_.async_read_some(asio::buffer(g_discard), use_nothrow);
    if (ec) break;
  }
  close();
}

}  // namespace mtw::conn
