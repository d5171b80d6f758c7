// Session: handshake and DC set-up. The relay pumps are in relay.cpp,
// masking in mask.cpp.
#include "worker/session.h"

#include <cstring>

#include "base/log.h"
#include "proto/fake_tls.h"
#include "proto/obfs2.h"
#include "proto/random.h"

namespace mtw::worker {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

}  // namespace

Session::Session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                 const ListenerInfo* listener, bool mask_only, AdmissionTicket ticket,
                 std::optional<std::uint32_t> handoff_listener)
    : rt_(rt),
      client_(std::move(client)),
      upstream_(client_.get_executor()),
      initial_(std::move(initial)),
      listener_(listener),
      handoff_listener_(handoff_listener),
      mask_only_(mask_only),
      in_handshake_(!mask_only),
      ticket_(std::move(ticket)),
      id_(rt.next_session_id++) {
  rt_.sessions.insert(this);
  if (rt_.sessions.size() == 1 && rt_.on_first_session) rt_.on_first_session();
  ++rt_.counters[mask_only ? Counter::kMaskRequests : Counter::kAccepted];
  ++rt_.counters[Counter::kActive];
  if (in_handshake_) ++rt_.handshaking;
  last_activity_ = Clock::now();
  deadline_ = last_activity_ + std::chrono::milliseconds(rt_.opts.handshake_timeout_ms);
  if (in_handshake_ && initial_.empty()) {
    unproven_it_ = rt_.unproven.insert(rt_.unproven.end(), this);
    in_unproven_ = true;
    silent_ = true;
    silent_deadline_ = rt_.opts.silent_timeout_ms != 0
                           ? last_activity_ + std::chrono::milliseconds(rt_.opts.silent_timeout_ms)
                           : deadline_;
  }
}

Session::~Session() {
  leave_middle(false);
  leave_handshake();
  rt_.sessions.erase(this);
  --rt_.counters[Counter::kActive];
  ++rt_.counters[Counter::kClosed];
  log()->debug("connection closed id={} bytes_client_to_dc={} bytes_dc_to_client={}", id_,
               bytes_up_, bytes_down_);
}

void Session::close() noexcept {
  phase_ = Phase::kClosed;
  error_code ec;
  client_.close(ec);
  upstream_.close(ec);
  leave_middle(true);
  if (down_timer_) down_timer_->cancel();
}

void Session::leave_handshake() noexcept {
  if (in_handshake_) --rt_.handshaking;
  in_handshake_ = false;
  silent_ = false;
  leave_unproven();
  ticket_.release();
}

void Session::leave_unproven() noexcept {
  if (!in_unproven_) return;
  rt_.unproven.erase(unproven_it_);
  in_unproven_ = false;
}

void Session::evict() noexcept {
  leave_handshake();
  close();
}

void Session::count_failure(Counter c) {
  ++rt_.counters[c];
  log()->debug("handshake failed id={} reason={}", id_, counter_name(c));
}

void Session::on_tick(Clock::time_point now) {
  error_code ec;
  switch (phase_) {
    case Phase::kHandshake:
      // A silent socket's deadline comes early; either way it is masked.
      if (now >= deadline_ || (silent_ && now >= silent_deadline_)) {
        deadline_hit_ = true;
        client_.cancel(ec);  // the handshake read ends; the connection goes to the mask
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
      if (rt_.opts.idle_timeout_ms != 0 &&
          now - last_activity_ >= std::chrono::milliseconds(rt_.opts.idle_timeout_ms)) {
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

awaitable<void> Session::run() {
  auto self = shared_from_this();
  if (phase_ == Phase::kClosed) co_return;  // evicted before it ran
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
  if (mask_only_) {
    co_await mask(buf, filled, false);
  } else {
    co_await handshake(buf, filled);
  }
}

awaitable<void> Session::handshake(BufferLease& buf, std::size_t filled) {
  auto index = rt_.index;  // a reload during the handshake does not affect us
  proto::Identification id;
  for (;;) {
    if (filled > 0) {
      auto opts = rt_.identify_options();
      if (listener_ != nullptr) opts.allowed = listener_->allowed;
      id = proto::identify({buf.data(), filled}, *index, rt_.replay, opts);
      if (id.rejection != proto::Rejection::kNeedMore) break;
      if (filled == kHandshakeBytes) {
        id.rejection = proto::Rejection::kNotMtproxy;
        break;
      }
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(buf.data() + filled, kHandshakeBytes - filled), use_nothrow);
    filled += n;
    if (filled != 0) {
      silent_ = false;
      if (filled >= proto::kInitSize || buf.data()[0] == std::byte{0x16}) leave_unproven();
    }
    if (ec) {
      leave_handshake();
      bool eof = ec == asio::error::eof;
      if (!deadline_hit_ && (!eof || filled == 0)) co_return;  // reset, or nothing to show
      count_failure(deadline_hit_ ? Counter::kFailTimeout : Counter::kFailClosedEarly);
      co_await mask(buf, filled, eof);
      co_return;
    }
  }
  leave_handshake();
  if (id.rejection != proto::Rejection::kNone) {
    count_failure(failure_counter(id.rejection));
    co_await mask(buf, filled, false);
    co_return;
  }
  if (rt_.on_identified) {
    hand_off(id.user, buf, filled);
    co_return;
  }
  const proto::Secret& secret = index->secrets().at(id.secret_index).secret;
  if (id.fake_tls) {
    co_await finish_tls(buf, filled, id, secret);
  } else if (id.init) {
    co_await start_relay(buf, *id.init, id.consumed, filled, filled);
  }
}

void Session::hand_off(proto::UserId user, BufferLease& buf, std::size_t filled) {
  ++rt_.counters[Counter::kHandshakeOk];
  phase_ = Phase::kClosed;
  error_code ec;
  const int fd = client_.release(ec);  // no operation is pending: nothing to abort
  if (ec) {
    log()->warn("hand-off failed id={} error={}", id_, ec.message());
    close();
    return;
  }
  rt_.on_identified(Identified{
      user, listener_ != nullptr ? listener_->id : 0, base::UniqueFd(fd), {buf.data(), filled}});
}

awaitable<void> Session::finish_tls(BufferLease& buf, std::size_t filled, proto::Identification& id,
                                    const proto::Secret& secret) {
  fake_tls_ = true;
  auto reply = proto::build_server_hello(*id.hello, secret.key, {}, proto::system_random());
  id.hello.reset();  // this frame lives as long as the relay: keep it small
  auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(reply), use_nothrow);
  proto::Bytes().swap(reply);
  if (wec) co_return;
  // Layout while collecting the 64-byte init: [payload][partial record][free].
  std::memmove(buf.data(), buf.data() + id.consumed, filled - id.consumed);
  filled -= id.consumed;
  std::size_t payload = 0;
  for (;;) {
    bool bad = false;
    std::size_t tail_begin = payload;
    payload = unwrap_tls(buf.data(), payload, filled, tail_begin, bad);
    if (bad) {
      count_failure(Counter::kFailBadTlsInit);
      co_await discard(buf);
      co_return;
    }
    std::memmove(buf.data() + payload, buf.data() + tail_begin, filled - tail_begin);
    filled = payload + (filled - tail_begin);
    // The init first: a client that sends its data right after the
    // ServerHello can fill the whole buffer in one read, init included.
    if (payload >= proto::kInitSize) break;
    if (filled == kHandshakeBytes) {  // full without an init: no record can end in it
      count_failure(Counter::kFailBadTlsInit);
      co_await discard(buf);
      co_return;
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(buf.data() + filled, kHandshakeBytes - filled), use_nothrow);
    if (ec) {
      count_failure(deadline_hit_ ? Counter::kFailTimeout : Counter::kFailClosedEarly);
      co_return;
    }
    filled += n;
  }
  auto init = proto::parse_client_init(
      std::span<const std::byte, proto::kInitSize>(buf.data(), proto::kInitSize), secret.key);
  if (!init) {
    count_failure(Counter::kFailBadTlsInit);
    co_await discard(buf);
    co_return;
  }
  co_await start_relay(buf, *init, proto::kInitSize, payload, filled);
}

awaitable<void> Session::start_relay(BufferLease& buf, const proto::ClientInit& init,
                                     std::size_t data_begin, std::size_t data_end,
                                     std::size_t tail_end) {
  auto streams = proto::make_client_streams(init);
  if (!streams) {
    log()->error("client streams failed id={} error={}", id_, streams.error().to_string());
    co_return;
  }
  client_dec_ = std::move(streams->decrypt);
  client_enc_ = std::move(streams->encrypt);
  fast_ = rt_.opts.fast_mode;
  ++rt_.counters[Counter::kHandshakeOk];
  if (const auto tag = rt_.middle ? rt_.middle_routing.tag_for(handoff_listener_) : std::nullopt) {
    if (co_await relay_middle(buf, init, data_begin, data_end, tail_end, *tag)) co_return;
    // The middle proxies failed before a byte went out: a direct relay like
    // any other (the client's stream is untouched so far).
    ++rt_.counters[Counter::kMiddleFallbacks];
    fast_ = rt_.opts.fast_mode;
    log()->debug("middle proxies unavailable, relaying direct id={} dc={}", id_, init.dc);
  }
  if (!co_await connect_dc(init.dc)) co_return;
  auto dc_init = proto::build_dc_init(init.tag, init.dc, proto::system_random(),
                                      fast_ ? &init.encrypt : nullptr);
  auto dc_streams = proto::make_dc_streams(dc_init);
  if (!dc_streams) {
    log()->error("dc streams failed id={} error={}", id_, dc_streams.error().to_string());
    co_return;
  }
  dc_enc_ = std::move(dc_streams->encrypt);
  dc_dec_ = std::move(dc_streams->decrypt);
  if (fast_) {  // DC->client passes unchanged: free the two unused cipher contexts
    client_enc_ = proto::AesCtr();
    dc_dec_ = proto::AesCtr();
  }
  // Client bytes that arrived with the handshake go right after the DC init.
  std::span<std::byte> data(buf.data() + data_begin, data_end - data_begin);
  client_dec_.apply(data);
  dc_enc_.apply(data);
  bytes_up_ += data.size();
  rt_.counters[Counter::kBytesClientToDc] += data.size();
  std::array<asio::const_buffer, 2> out = {asio::buffer(dc_init.wire),
                                           asio::buffer(data.data(), data.size())};
  if (auto [ec, n] = co_await asio::async_write(upstream_, out, use_nothrow); ec) co_return;
  std::size_t tail = tail_end - data_end;
  std::memmove(buf.data(), buf.data() + data_end, tail);
  BufferLease up;
  if (tail != 0) up = std::move(buf);
  buf.reset();
  phase_ = Phase::kRelay;
  last_activity_ = Clock::now();
  log()->debug("relay started id={} dc={} fake_tls={} fast={}", id_, init.dc, fake_tls_, fast_);
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->pump_dc_to_client(); },
      LogExceptions{"relay dc->client"});
  co_await pump_client_to_dc(std::move(up), tail);
}

awaitable<bool> Session::connect_dc(std::int16_t dc) {
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.opts.dc_connect_timeout_ms);
  for (const auto& ep : rt_.dcs.lookup(dc, rt_.opts.prefer_ipv6)) {
    auto ec = co_await connect_endpoint(upstream_, ep);
    if (!ec) {
      tune_socket(upstream_);
      co_return true;
    }
    log()->debug("dc connect attempt failed id={} dc={} error={}", id_, dc, ec.message());
    if (deadline_hit_ || phase_ == Phase::kClosed) break;
  }
  ++rt_.counters[Counter::kDcConnectFailures];
  log()->warn("dc connect failed dc={} timeout={}", dc, deadline_hit_);
  co_return false;
}

void spawn_session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                   const ListenerInfo* listener, bool mask_only, AdmissionTicket ticket,
                   std::optional<std::uint32_t> handoff_listener) {
  auto s = std::make_shared<Session>(rt, std::move(client), std::move(initial), listener, mask_only,
                                     std::move(ticket), handoff_listener);
  auto ex = s->client_executor();
  asio::co_spawn(
      ex, [s]() -> awaitable<void> { co_await s->run(); }, LogExceptions{"session"});
}

}  // namespace mtw::worker
