// Session: the relay pumps, one per direction. Each waits for readability
// without a buffer, borrows one from the pool for read -> transform -> write,
// and gives it back, so idle connections hold no buffer and a slow reader
// stops the other side's reads (backpressure: one buffer per direction).
#include <cstring>

#include "base/log.h"
#include "proto/fake_tls.h"
#include "worker/session.h"

namespace mtw::worker {

std::size_t Session::unwrap_tls(std::byte* buf, std::size_t from, std::size_t end,
                                std::size_t& tail_begin, bool& bad) {
  // Payloads move toward the front of the same buffer (out never passes in).
  std::byte* out = buf + from;
  auto consumed = proto::read_tls_records({buf + from, end - from}, [&out](proto::ByteSpan p) {
    std::memmove(out, p.data(), p.size());
    out += p.size();
  });
  if (!consumed) {
    bad = true;
    tail_begin = end;
    return from;
  }
  tail_begin = from + *consumed;
  return static_cast<std::size_t>(out - buf);
}

awaitable<void> Session::pump_client_to_dc(BufferLease buf, std::size_t tail) {
  for (;;) {
    if (!buf) {
      auto [wec] = co_await client_.async_wait(tcp::socket::wait_read, use_nothrow);
      if (wec) break;
      buf = rt_.pool.borrow();
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(buf.data() + tail, kBufferSize - tail), use_nothrow);
    if (ec) break;
    std::size_t end = tail + n;
    std::size_t payload = end;
    std::size_t tail_begin = end;
    if (fake_tls_) {
      bool bad = false;
      payload = unwrap_tls(buf.data(), 0, end, tail_begin, bad);
      if (bad) {
        log_relay_error("bad tls record from client");
        break;
      }
    }
    std::span<std::byte> data(buf.data(), payload);
    client_dec_.apply(data);
    dc_enc_.apply(data);
    bytes_up_ += payload;
    rt_.counters[Counter::kBytesClientToDc] += payload;
    last_activity_ = Clock::now();
    if (payload != 0) {
      auto [wec, wn] =
          co_await asio::async_write(upstream_, asio::buffer(buf.data(), payload), use_nothrow);
      if (wec) break;
    }
    tail = end - tail_begin;
    std::memmove(buf.data(), buf.data() + tail_begin, tail);
    if (tail == 0) buf.reset();
  }
  close();
}

awaitable<void> Session::pump_dc_to_client() {
  // Toward a fake-TLS client every read becomes one record: header room in front.
  const std::size_t header = fake_tls_ ? proto::kTlsHeaderSize : 0;
  const std::size_t cap = fake_tls_ ? proto::kMaxTlsWritePayload : kBufferSize;
  for (;;) {
    auto [wec] = co_await upstream_.async_wait(tcp::socket::wait_read, use_nothrow);
    if (wec) break;
    BufferLease buf = rt_.pool.borrow();
    auto [ec, n] =
        co_await upstream_.async_read_some(asio::buffer(buf.data() + header, cap), use_nothrow);
    if (ec) break;
    std::span<std::byte> data(buf.data() + header, n);
    if (!fast_) {
      dc_dec_.apply(data);
      client_enc_.apply(data);
    }
    if (fake_tls_) {
      proto::write_tls_header(std::span<std::byte, proto::kTlsHeaderSize>(buf.data(), header), n);
    }
    bytes_down_ += n;
    rt_.counters[Counter::kBytesDcToClient] += n;
    last_activity_ = Clock::now();
    auto [wr, wn] =
        co_await asio::async_write(client_, asio::buffer(buf.data(), header + n), use_nothrow);
    if (wr) break;
  }
  close();
}

void Session::log_relay_error(const char* what) {
  static const auto log = base::logger("worker");
  log->debug("relay error id={} what={}", id_, what);
}

}  // namespace mtw::worker
