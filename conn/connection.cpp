// Connection: set-up, deadlines and the handshake reader. Masking is in
// mask.cpp.
#include "conn/connection.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace mtw::conn {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("conn");
  return l;
}

}  // namespace

Connection::Connection(Runtime& rt, tcp::socket client, proto::Bytes initial)
    : rt_(rt),
      client_(std::move(client)),
      upstream_(client_.get_executor()),
      id_(rt.next_connection_id++),
      initial_(std::move(initial)),
      silent_(initial_.empty()) {
  rt_.connections.insert(this);
  if (rt_.connections.size() == 1 && rt_.on_first_connection) rt_.on_first_connection();
  ++rt_.counters[Counter::kActive];
  last_activity_ = Clock::now();
  hello_at_ = last_activity_;
  deadline_ = last_activity_ + std::chrono::milliseconds(rt_.settings.handshake_timeout_ms);
  mirror_at_ = last_activity_ + std::chrono::milliseconds(rt_.settings.mask_mirror_after_ms);
  silent_deadline_ =
      rt_.settings.silent_timeout_ms != 0
          ? last_activity_ + std::chrono::milliseconds(rt_.settings.silent_timeout_ms)
          : deadline_;
}

Connection::~Connection() {
  rt_.connections.erase(this);
  --rt_.counters[Counter::kActive];
  ++rt_.counters[Counter::kClosed];
  log()->debug("connection closed id={} bytes_client_to_dc={} bytes_dc_to_client={}", id_,
               bytes_up_, bytes_down_);
}

// steady_clock is CLOCK_MONOTONIC (libstdc++), the clock the gate's value
// was read from: one clock for every process on the host.
static_assert(std::is_same_v<Clock, std::chrono::steady_clock>);

void Connection::set_hello_at(std::uint64_t ns) noexcept {
  if (ns == 0) return;
  const Clock::time_point at{std::chrono::nanoseconds(ns)};
  const auto now = Clock::now();
  if (at > now || now - at > std::chrono::milliseconds(rt_.settings.handshake_timeout_ms)) return;
  hello_at_ = at;
}

std::uint64_t Connection::hello_at_ns() const noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(hello_at_.time_since_epoch()).count());
}

void Connection::close() noexcept {
  phase_ = Phase::kClosed;
  error_code ec;
  client_.close(ec);
  upstream_.close(ec);
}

void Connection::count_failure(Counter c) {
  ++rt_.counters[c];
  log()->debug("handshake failed id={} reason={}", id_, counter_name(c));
}

void Connection::on_tick(Clock::time_point now) {
  error_code ec;
  switch (phase_) {
    case Phase::kHandshake:
      // A silent socket's deadline comes early; either way it is masked.
      if (now >= deadline_ || (silent_ && now >= silent_deadline_)) {
        deadline_hit_ = true;
        client_.cancel(ec);  // the handshake read ends; the connection goes to the mask
      } else if (rt_.settings.mask_mirror_after_ms != 0 && !mirror_tried_ && now >= mirror_at_) {
        mirror_due_ = true;
        client_.cancel(ec);  // read_handshake starts the mirror, then reads on
      }
      break;
    case Phase::kConnecting:
      if (now >= deadline_) {
        deadline_hit_ = true;
        upstream_.close(ec);
      }
      break;
    case Phase::kRelay:
    case Phase::kMask:
      if (rt_.settings.idle_timeout_ms != 0 &&
          now - last_activity_ >= std::chrono::milliseconds(rt_.settings.idle_timeout_ms)) {
        log()->debug("idle timeout id={}", id_);
        close();
      }
      break;
    case Phase::kDiscard:
      if (now >= deadline_) close();
      break;
    case Phase::kClosed:
      break;
  }
}

awaitable<void> Connection::run() {
  auto self = shared_from_this();
  if (phase_ == Phase::kClosed) co_return;  // closed before it ran
  // TCP_NODELAY and keepalive came from the listener (or the handoff path).
  // Before the first async operation, so this is the socket's only FIONBIO:
  // the relay's speculative reads need user-visible non-blocking mode.
  error_code ec;
  client_.non_blocking(true, ec);
  if (ec) {
    log()->warn("non-blocking mode failed id={} error={}", id_, ec.message());
    close();
    co_return;
  }
  BufferLease buf = rt_.pool.borrow();
  std::size_t filled = std::min(initial_.size(), kHandshakeBytes);
  if (filled != 0) std::memcpy(buf.data(), initial_.data(), filled);
  proto::Bytes().swap(initial_);
  co_await serve(buf, filled);
}

awaitable<HandshakeOutcome> Connection::read_handshake(BufferLease& buf, std::size_t filled,
                                                       const proto::AllowedProtocols& allowed) {
  HandshakeOutcome out;
  out.index = rt_.index;  // a reload during the handshake does not affect us
  // The mirror belongs to this read only: once it ends (the worker reading
  // a fake-TLS client's init, say) the tick must not start one.
  struct NoMirrorAfter {
    bool& tried;
    ~NoMirrorAfter() { tried = true; }
  } no_mirror_after{mirror_tried_};
  for (;;) {
    if (filled > 0) {
      auto opts = rt_.identify_options();
      opts.allowed = allowed;
      out.id = proto::identify({buf.data(), filled}, *out.index, rt_.replay, opts);
      if (out.id.rejection != proto::Rejection::kNeedMore) break;
      if (filled == kHandshakeBytes) {
        out.id.rejection = proto::Rejection::kNotMtproxy;
        break;
      }
    }
    if (mirroring_ && filled > mirrored_bytes_) {
      auto [wec, wn] = co_await asio::async_write(
          upstream_, asio::buffer(buf.data() + mirrored_bytes_, filled - mirrored_bytes_),
          use_nothrow);
      if (wec) {
        stop_mirror();  // mask() connects again if it comes to that
      } else {
        rt_.counters[Counter::kMaskedBytesToMask] += filled - mirrored_bytes_;
        mirrored_bytes_ = filled;
      }
    }
    if (phase_ == Phase::kClosed) {
      on_handshake_end();
      co_return out;
    }
    if (mask_spoke_) {  // the mask answered or closed first: the connection is its own
      silent_ = false;
      on_handshake_end();
      count_failure(Counter::kFailTimeout);
      out.filled = filled;
      out.end = HandshakeOutcome::End::kMask;
      co_return out;
    }
    if (mirror_due_ && !deadline_hit_) {
      mirror_due_ = false;
      mirror_tried_ = true;
      co_await start_mirror(buf, filled);
      continue;
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(buf.data() + filled, kHandshakeBytes - filled), use_nothrow);
    if (ec == asio::error::operation_aborted && n == 0 && !deadline_hit_ &&
        phase_ != Phase::kClosed && (mirror_due_ || mask_spoke_)) {
      continue;  // the tick or the mirror's watcher: handled at the top
    }
    filled += n;
    if (n != 0) hello_at_ = Clock::now();
    if (filled != 0) {
      silent_ = false;
      if (filled >= proto::kInitSize || buf.data()[0] == std::byte{0x16}) on_plausible_start();
    }
    if (ec) {
      silent_ = false;
      on_handshake_end();
      out.filled = filled;
      const bool eof = ec == asio::error::eof;
      if (!deadline_hit_ && (!eof || filled == 0)) {  // reset, or nothing to show
        stop_mirror();  // else its watcher would hold this connection until the mask closes
        co_return out;
      }
      count_failure(deadline_hit_ ? Counter::kFailTimeout : Counter::kFailClosedEarly);
      out.end = HandshakeOutcome::End::kMask;
      out.client_eof = eof;
      co_return out;
    }
  }
  silent_ = false;
  on_handshake_end();
  out.filled = filled;
  if (out.id.rejection == proto::Rejection::kNone) stop_mirror();  // ours: the mask never knows
  if (out.id.rejection != proto::Rejection::kNone) {
    count_failure(failure_counter(out.id.rejection));
    out.end = HandshakeOutcome::End::kMask;
    co_return out;
  }
  out.end = HandshakeOutcome::End::kIdentified;
  co_return out;
}

awaitable<bool> Connection::wait_readable(tcp::socket& sock, BufferLease& buf) {
  buf.reset();
  auto [ec] = co_await sock.async_wait(tcp::socket::wait_read, use_nothrow);
  if (ec) co_return false;
  buf = rt_.pool.borrow();
  co_return true;
}

void spawn(std::shared_ptr<Connection> c) {
  auto ex = c->executor();
  asio::co_spawn(
      ex, [c = std::move(c)]() -> awaitable<void> { co_await c->run(); },
      LogExceptions{"connection"});
}

}  // namespace mtw::conn
