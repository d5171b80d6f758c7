// Connection: masking. A connection that fails the handshake goes to its mask
// target (proto::route_mask: the SNI's domain, the listener's, the global
// one) with every byte already read, then both directions are spliced until
// each side has closed (a FIN is passed on as a FIN). Without a target, or
// when it cannot be reached, the client is read and discarded until a
// jittered timeout: closing at once would tell a prober that the bytes
// meant something.
#include <sys/socket.h>

#include <array>

#include "base/log.h"
#include "conn/connection.h"
#include "proto/mask_route.h"
#include "proto/random.h"

namespace mtw::conn {
namespace {

// Discarded bytes land here; any number of pending reads may share it since
// nobody looks at the contents (single-threaded process).
std::array<std::byte, 4096> g_discard;

// An unreachable mask is worth a warning, but a prober (or a down mask under
// load) must not turn it into a log flood: one line per kWarnEvery, with the
// number of failures left out since the last line.
constexpr auto kWarnEvery = std::chrono::seconds(10);
Clock::time_point g_last_warn{};
std::uint64_t g_unwarned = 0;

void warn_unreachable(const proto::Endpoint& target, std::string_view why) {
  static const auto log = base::logger("conn");
  const auto now = Clock::now();
  if (g_last_warn != Clock::time_point{} && now - g_last_warn < kWarnEvery) {
    ++g_unwarned;
    return;
  }
  log->warn("mask unreachable target={} error={} not_logged_since_last={}",
            proto::format_endpoint(target), why, g_unwarned);
  g_last_warn = now;
  g_unwarned = 0;
}

// SO_LINGER 0: the socket's close sends an RST, as a reset passed on must.
void reset_on_close(tcp::socket& s) noexcept {
  const ::linger abort_close{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &abort_close, sizeof abort_close);
}

}  // namespace

awaitable<void> Connection::mask(BufferLease& buf, std::size_t filled, bool client_eof) {
  ++rt_.counters[Counter::kMasked];
  const proto::MaskRoute route =
      proto::route_mask(rt_.settings.mask, listener_id(), {buf.data(), filled}, *rt_.index);
  if (route.action == proto::MaskAction::kDrop) {
    ++rt_.counters[Counter::kMaskDropped];
    close();
    co_return;
  }
  if (route.action == proto::MaskAction::kDiscard) {
    co_await discard(buf);
    co_return;
  }
  if (mirroring_) {
    mirroring_ = false;
    if (route.target == mirror_target_ && phase_ != Phase::kClosed) {
      // The mask has been watching since the mirror began: the rest only.
      co_await splice_to_mask(buf, mirrored_bytes_, filled, client_eof);
      co_return;
    }
    error_code ignored;
    upstream_.close(ignored);  // the hello named another domain: its own target
  }
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.settings.mask_connect_timeout_ms);
  if (auto ec = co_await connect_endpoint(upstream_, route.target, rt_.mask_names); ec) {
    if (phase_ == Phase::kClosed) co_return;  // evicted or shut down meanwhile
    ++rt_.counters[Counter::kMaskUnreachable];
    warn_unreachable(route.target, deadline_hit_ ? "timed out" : ec.message());
    co_await discard(buf);
    co_return;
  }
  if (upstream_is_loop()) {
    ++rt_.counters[Counter::kMaskUnreachable];
    warn_unreachable(route.target, "the target is this listener (loop)");
    error_code ignored;
    upstream_.close(ignored);
    co_await discard(buf);
    co_return;
  }
  tune_socket(upstream_);
  co_await splice_to_mask(buf, 0, filled, client_eof);
}

awaitable<void> Connection::splice_to_mask(BufferLease& buf, std::size_t from, std::size_t filled,
                                           bool client_eof) {
  phase_ = Phase::kMask;
  last_activity_ = Clock::now();
  bool to_mask = !client_eof;
  if (filled > from) {
    auto [ec, n] = co_await asio::async_write(
        upstream_, asio::buffer(buf.data() + from, filled - from), use_nothrow);
    if (ec && !mask_refused(ec)) {
      close();
      co_return;
    }
    if (ec) to_mask = false;  // what the mask sent before its reset still goes to the client
    if (!ec) rt_.counters[Counter::kMaskedBytesToMask] += filled - from;
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
  if (to_mask) co_await splice(client_, upstream_, Counter::kMaskedBytesToMask);
}

// The mask reset the connection while we still had the client's bytes to
// give it (a web server closes on a request it refuses, e.g. an oversized
// TLS record, with the rest unread, and its kernel answers what follows
// with a reset). The client must see what the mask's own client sees: the
// mask's last bytes (its alert), then the reset; so the mask-to-client
// direction drains what was received before the reset and the client's
// socket is closed with an RST, whichever direction notices first.
bool Connection::mask_refused(const error_code& ec) {
  if (ec != asio::error::connection_reset && ec != asio::error::broken_pipe) return false;
  mask_reset_ = true;
  reset_on_close(client_);
  return true;
}

bool Connection::client_bytes_pending() {
  if (writes_to_mask_ > 0) return true;
  error_code ec;
  const std::size_t unread = client_.available(ec);
  if (!ec && unread > 0) return true;
  // Written, but they reached the mask after its close: its kernel answered
  // them with a reset that the FIN before it hid from our read.
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(upstream_.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
         (err == ECONNRESET || err == EPIPE);
}

bool Connection::upstream_is_loop() {
  // A target on this host at the port the client came in on (the domain
  // points at this host) would loop back into our own listener: the kernel
  // gives a connection to a local address that address as its source.
  error_code cec, rec, lec;
  const auto client_local = client_.local_endpoint(cec);
  const auto target = upstream_.remote_endpoint(rec);
  const auto source = upstream_.local_endpoint(lec);
  return !cec && !rec && !lec && target.port() == client_local.port() &&
         target.address() == source.address();
}

awaitable<void> Connection::start_mirror(BufferLease& buf, std::size_t filled) {
  const proto::MaskRoute route =
      proto::route_mask(rt_.settings.mask, listener_id(), {buf.data(), filled}, *rt_.index);
  if (route.action != proto::MaskAction::kMask) co_return;
  // The connect gets the mask's deadline; the handshake's resumes after it.
  const auto handshake_deadline = deadline_;
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.settings.mask_connect_timeout_ms);
  const auto ec = co_await connect_endpoint(upstream_, route.target, rt_.mask_names);
  if (phase_ == Phase::kClosed) co_return;
  phase_ = Phase::kHandshake;
  deadline_ = handshake_deadline;
  deadline_hit_ = false;
  error_code ignored;
  if (ec || upstream_is_loop()) {
    upstream_.close(ignored);
    co_return;
  }
  tune_socket(upstream_);
  if (filled != 0) {
    auto [wec, wn] =
        co_await asio::async_write(upstream_, asio::buffer(buf.data(), filled), use_nothrow);
    if (phase_ == Phase::kClosed) co_return;
    if (wec) {
      upstream_.close(ignored);
      co_return;
    }
    rt_.counters[Counter::kMaskedBytesToMask] += filled;
  }
  mirroring_ = true;
  mirrored_bytes_ = filled;
  mirror_target_ = route.target;
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->watch_mirror(); },
      LogExceptions{"mask mirror"});
}

awaitable<void> Connection::watch_mirror() {
  auto [ec] = co_await upstream_.async_wait(tcp::socket::wait_read, use_nothrow);
  if (ec || !mirroring_ || phase_ != Phase::kHandshake) co_return;
  mask_spoke_ = true;
  error_code ignored;
  client_.cancel(ignored);
}

void Connection::stop_mirror() noexcept {
  if (!mirroring_) return;
  mirroring_ = false;
  error_code ignored;
  upstream_.close(ignored);
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
      if (&from == &upstream_ && mask_reset_) {  // drained after the mask's reset
        close();
        co_return;
      }
      if (&from == &upstream_ && client_bytes_pending()) {
        // The mask closed while the client's bytes were still on their way
        // to it. A client talking to the mask directly would have had them
        // in the mask's receive queue, and a close with unread bytes is a
        // reset (nginx refusing an oversized record read 5 B of 20 kB):
        // the client sees the reset, not a FIN that only our relay's
        // timing produced.
        reset_on_close(client_);
        close();
        co_return;
      }
      error_code ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);  // pass the FIN on
      if (&from == &upstream_) mask_finished_ = true;
      co_return;
    }
    if (ec) {
      if (ec == asio::error::connection_reset) {
        // A reset is passed on as a reset, as the prober would have seen it
        // from the mask itself.
        reset_on_close(to);
      }
      close();
      co_return;
    }
    rt_.counters[counter] += n;
    last_activity_ = Clock::now();
    if (&to == &upstream_) ++writes_to_mask_;
    auto [wr, wn] = co_await asio::async_write(to, asio::buffer(buf.data(), n), use_nothrow);
    if (&to == &upstream_) --writes_to_mask_;
    if (wr) {
      // Refused by the mask: the other direction drains its last bytes and
      // closes, unless it has already finished (the mask's FIN came first).
      if (&to == &upstream_ && mask_refused(wr) && !mask_finished_) co_return;
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
