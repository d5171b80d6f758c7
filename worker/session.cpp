// Session: what follows the handshake: the fake-TLS answer and the DC
// set-up. The relay pumps are in relay.cpp, the middle-proxy relay in
// middle_relay.cpp; the handshake reader and masking in conn/.
#include "worker/session.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "base/log.h"
#include "proto/fake_tls.h"
#include "proto/obfs2.h"
#include "proto/random.h"
#include "worker/egress_dial.h"

namespace mtw::worker {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

}  // namespace

Session::Session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                 std::optional<std::uint32_t> handoff_listener,
                 const ipc::control::PeerAddress& peer)
    : Connection(rt, std::move(client), std::move(initial)),
      rt_(rt),
      handoff_listener_(handoff_listener),
      peer_(peer) {
  ++rt_.counters[Counter::kAccepted];
  rt_.clients.opened(peer_);
}

Session::~Session() {
  rt_.clients.closed(peer_, static_cast<std::int64_t>(std::time(nullptr)));
  if (rt_.egress && !upstream_name_.empty())
    if (const auto i = rt_.egress->find(upstream_name_))
      rt_.egress->add_bytes(*i, bytes_up_, bytes_down_);
  leave_middle(false);
}

void Session::close() noexcept {
  Connection::close();
  leave_middle(true);
  if (down_timer_) down_timer_->cancel();
  if (up_timer_) up_timer_->cancel();
}

awaitable<void> Session::serve(BufferLease& buf, std::size_t filled) {
  auto out = co_await read_handshake(buf, filled, rt_.settings.allowed);
  filled = out.filled;
  if (out.end == conn::HandshakeOutcome::End::kDrop) co_return;
  if (out.end == conn::HandshakeOutcome::End::kMask) {
    co_await mask(buf, filled, out.client_eof);
    co_return;
  }
  const proto::Secret& secret = out.index->secrets().at(out.id.secret_index).secret;
  if (out.id.fake_tls) {
    co_await finish_tls(buf, filled, out.id, secret);
  } else if (out.id.init) {
    co_await start_relay(buf, *out.id.init, out.id.consumed, filled, filled);
  }
}

awaitable<void> Session::finish_tls(BufferLease& buf, std::size_t filled, proto::Identification& id,
                                    const proto::Secret& secret) {
  fake_tls_ = true;
  // Shaped after the mask site this domain is masked as (the measured
  // profile, else the built-in one): same fields and flight size, the
  // mask's record size afterwards, and sent no sooner than the mask would
  // answer (its measured think time plus round trip, drawn per connection),
  // counted from when the hello was here (in the gate, for a handoff): the
  // masked path's relay adds nothing to the mask's own delay either.
  const proto::TlsProfile& profile = rt_.profile_for(secret.domain);
  record_payload_ = proto::relay_record_payload(profile);
  const auto answer_at = hello_at_ + std::chrono::microseconds(proto::draw_answer_delay_us(
                                         profile, proto::system_random()));
  auto reply = proto::build_server_hello(*id.hello, secret.key, profile, proto::system_random());
  id.hello.reset();  // this frame lives as long as the relay: keep it small
  if (Clock::now() < answer_at) {
    asio::steady_timer wait(client_.get_executor(), answer_at);
    co_await wait.async_wait(use_nothrow);
    if (phase_ == Phase::kClosed) co_return;
  }
  const error_code wec = co_await send_answer(reply);
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
      [self = shared_self()]() -> awaitable<void> { co_await self->pump_dc_to_client(); },
      LogExceptions{"relay dc->client"});
  co_await pump_client_to_dc(std::move(up), tail);
}

awaitable<bool> Session::connect_dc(std::int16_t dc) {
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.settings.connect_timeout_ms);
  const auto eps = rt_.dcs.lookup(dc, rt_.opts.prefer_ipv6);
  if (rt_.egress && !rt_.egress->direct_only()) co_return co_await connect_dc_via_egress(dc, eps);
  for (const auto& ep : eps) {
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

awaitable<bool> Session::connect_dc_via_egress(std::int16_t dc,
                                               const std::vector<proto::Endpoint>& eps) {
  Egress& eg = *rt_.egress;
  // By name: a live egress change may replace the spec during a dial; the
  // rest of the plan then follows the upstreams that are still named.
  std::vector<std::optional<std::string>> plan;  // nullopt: the direct fallback
  for (std::size_t i : eg.plan(Clock::now()))
    plan.push_back(i == Egress::kDirect ? std::nullopt
                                        : std::optional(eg.spec().upstreams[i].name));
  if (plan.empty()) log()->warn("dc connect failed dc={} reason=every_upstream_down", dc);
  for (const auto& name : plan) {
    deadline_hit_ = false;
    deadline_ = Clock::now() + std::chrono::milliseconds(rt_.settings.connect_timeout_ms);
    const auto at = name ? eg.find(*name) : std::nullopt;
    if (name && !at) continue;  // removed by a live change meanwhile
    // A copy: the spec may be replaced while this dial waits.
    const proto::UpstreamSpec up = at ? eg.spec().upstreams[*at] : proto::UpstreamSpec{};
    const std::size_t i = at ? *at : Egress::kDirect;
    auto r = co_await dial_upstream(upstream_, up, eps);
    if (phase_ == Phase::kClosed) co_return false;
    const auto now_i = i == Egress::kDirect ? std::nullopt : eg.find(up.name);
    if (r) {
      const bool was_down = now_i && !eg.is_up(*now_i);
      if (now_i) eg.on_success(*now_i);
      if (was_down && rt_.upstream_changed) rt_.upstream_changed();
      if (i != Egress::kDirect) upstream_name_ = up.name;
      tune_socket(upstream_);
      log()->debug("dc connected id={} dc={} upstream={}", id_, dc,
                   i == Egress::kDirect ? "direct-fallback" : up.name);
      co_return true;
    }
    const std::string why = deadline_hit_ ? std::string("timeout") : r.error().context;
    if (i == Egress::kDirect) {
      log()->warn("dc connect failed dc={} upstream=direct-fallback error=\"{}\"", dc, why);
      continue;
    }
    const bool down = now_i && eg.on_failure(*now_i, Clock::now());
    log()->warn("upstream failed upstream={} dc={} error=\"{}\"", up.name, dc, why);
    if (down) {
      log()->warn("upstream marked down upstream={}", up.name);
      if (rt_.upstream_changed) rt_.upstream_changed();
    }
  }
  ++rt_.counters[Counter::kDcConnectFailures];
  co_return false;
}

// One write, as the mask's OpenSSL sends its buffered flight. With
// --flight-segment N: writes of N bytes (TCP_NODELAY is on, from the
// listener or tune_socket), each waited out of the send queue before the
// next, since a write queued behind unsent bytes (a closed congestion
// window) would join them in one full-size segment. The relay's later
// writes are not touched: TCP_MAXSEG cannot shrink only the first flight
// (on a connected socket Linux ignores it), so this is what keeps the rest
// of the connection at full size.
awaitable<error_code> Session::send_answer(proto::ByteSpan reply) {
  const std::size_t seg = rt_.opts.flight_segment_bytes;
  if (seg == 0 || reply.size() <= seg) {
    auto [ec, n] =
        co_await asio::async_write(client_, asio::buffer(reply.data(), reply.size()), use_nothrow);
    co_return ec;
  }
  asio::steady_timer wait(client_.get_executor());
  for (std::size_t off = 0; off < reply.size(); off += seg) {
    const std::size_t n = std::min(seg, reply.size() - off);
    auto [ec, w] =
        co_await asio::async_write(client_, asio::buffer(reply.data() + off, n), use_nothrow);
    if (ec) co_return ec;
    // Unsent bytes (SIOCOUTQNSD); an AF_UNIX stream from the WEB front
    // has none to speak of (the ioctl fails): no wait.
    for (int unsent = 0; off + n < reply.size();) {
      if (::ioctl(client_.native_handle(), SIOCOUTQNSD, &unsent) != 0 || unsent == 0) break;
      if (phase_ == Phase::kClosed) co_return asio::error::operation_aborted;  // the deadline
      wait.expires_after(std::chrono::microseconds(200));
      co_await wait.async_wait(use_nothrow);
    }
  }
  co_return error_code{};
}

void spawn_session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                   std::optional<std::uint32_t> handoff_listener,
                   const ipc::control::PeerAddress& peer, std::uint64_t hello_at_ns) {
  auto s =
      std::make_shared<Session>(rt, std::move(client), std::move(initial), handoff_listener, peer);
  s->set_hello_at(hello_at_ns);
  conn::spawn(std::move(s));
}

}  // namespace mtw::worker
