// Session: the relay pumps, one per direction. Each waits for readability
// without a buffer, borrows a 64 KiB one from the pool when the socket is
// readable, keeps it while speculative non-blocking reads return data (read
// -> transform -> write) and gives it back on would_block, so idle
// connections hold no buffer and a slow reader stops the other side's reads
// (backpressure: one buffer per direction).
#include <algorithm>
#include <array>
#include <cstring>
#include <span>

#include "base/log.h"
#include "proto/fake_tls.h"
#include "worker/session.h"

namespace mtw::worker {
namespace {

// Toward a fake-TLS client a buffer is cut into slots of one whole record:
// a 5-byte header, then up to `payload` bytes (the mask's full record size,
// proto::relay_record_payload). One scatter read fills the payloads, so the
// records of a read leave in one write.
constexpr std::size_t kMaxTlsSlots = kBufferSize / (proto::kTlsHeaderSize + 1024);

std::size_t tls_slots(std::size_t payload) {
  return std::min(kMaxTlsSlots, kBufferSize / (proto::kTlsHeaderSize + payload));
}

// A speculative read into the payload part of every slot (the socket is in
// non-blocking mode: data, an error or would_block, never a wait).
std::size_t read_tls_slots(tcp::socket& sock, std::byte* buf, std::size_t payload, error_code& ec) {
  std::array<asio::mutable_buffer, kMaxTlsSlots> slots;
  const std::size_t n = tls_slots(payload);
  const std::size_t step = proto::kTlsHeaderSize + payload;
  for (std::size_t i = 0; i < n; ++i)
    slots[i] = asio::buffer(buf + i * step + proto::kTlsHeaderSize, payload);
  return sock.read_some(std::span(slots.data(), n), ec);
}

}  // namespace

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
    error_code ec = asio::error::would_block;
    std::size_t n = 0;
    if (buf) n = client_.read_some(asio::buffer(buf.data() + tail, kBufferSize - tail), ec);
    if (ec == asio::error::would_block) {
      if (tail == 0) {
        if (!co_await wait_readable(client_, buf)) break;
        continue;
      }
      // A partial TLS record keeps its buffer until the rest has arrived.
      auto [wec] = co_await client_.async_wait(tcp::socket::wait_read, use_nothrow);
      if (wec) break;
      continue;
    }
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
  }
  close();
}

std::size_t Session::prepare_down(std::byte* buf, std::size_t n) {
  if (!fake_tls_) {
    if (!fast_) {
      std::span<std::byte> data(buf, n);
      dc_dec_.apply(data);
      client_enc_.apply(data);
    }
    return n;
  }
  // Every slot but the last is full, so the records lie back to back.
  std::size_t wire = 0;
  for (std::size_t left = n; left != 0;) {
    std::size_t len = std::min(left, record_payload_);
    std::byte* record = buf + wire;
    if (!fast_) {
      std::span<std::byte> data(record + proto::kTlsHeaderSize, len);
      dc_dec_.apply(data);
      client_enc_.apply(data);
    }
    proto::write_tls_header(std::span<std::byte, proto::kTlsHeaderSize>(record, 5), len);
    wire += proto::kTlsHeaderSize + len;
    left -= len;
  }
  return wire;
}

awaitable<void> Session::pump_dc_to_client() {
  BufferLease buf;
  for (;;) {
    error_code ec = asio::error::would_block;
    std::size_t n = 0;
    if (buf) {
      n = fake_tls_ ? read_tls_slots(upstream_, buf.data(), record_payload_, ec)
                    : upstream_.read_some(asio::buffer(buf.data(), kBufferSize), ec);
    }
    if (ec == asio::error::would_block) {
      if (!co_await wait_readable(upstream_, buf)) break;
      continue;
    }
    if (ec) break;
    std::size_t wire = prepare_down(buf.data(), n);
    bytes_down_ += n;
    rt_.counters[Counter::kBytesDcToClient] += n;
    last_activity_ = Clock::now();
    auto [wr, wn] =
        co_await asio::async_write(client_, asio::buffer(buf.data(), wire), use_nothrow);
    if (wr) break;
  }
  close();
}

void Session::log_relay_error(const char* what) {
  static const auto log = base::logger("worker");
  log->debug("relay error id={} what={}", id_, what);
}

}  // namespace mtw::worker
