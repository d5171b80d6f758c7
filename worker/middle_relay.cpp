// Session: the relay in middle-proxy mode. The client's stream is decrypted
// and cut into packets (proto::decode_frames), each sent as a PROXY_REQ on a
// pooled middle connection; answers and quick acks come back through the
// MiddleClient calls, are framed for the client's transport, encrypted and
// queued for pump_middle_to_client. Backpressure: the client is not read
// while its middle connection's outbound queue is over its cap, nor while
// its own answers queued here pass kAnswersPauseBytes (a client that asks
// faster than it reads, e.g. an echo, is slowed down at its requests, as a
// direct relay's TCP would); a client that does not read its answers at
// all is closed once its queue passes kMaxClientQueueBytes (the shared
// connection must never wait for it).
#include <cstring>
#include <utility>

#include "base/log.h"
#include "proto/fake_tls.h"
#include "proto/framing.h"
#include "proto/random.h"
#include "worker/session.h"

namespace mtw::worker {
namespace {

// One maximal packet plus slack: a client may lag by about one big answer.
constexpr std::size_t kMaxClientQueueBytes = proto::kMaxFramePayload + 1024 * 1024;
// The client's reads pause over this many bytes of unread answers and resume
// once they are written out below it. What the client asked before the pause
// still comes back, so this stays far under kMaxClientQueueBytes: a 1 MiB
// watermark leaves room for ~15 MiB of answers already in flight.
constexpr std::size_t kAnswersPauseBytes = 1024 * 1024;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

proto::RpcAddr rpc_addr(const tcp::endpoint& ep) {
  const auto a = ep.address();
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    std::array<std::byte, 4> ip{};
    for (std::size_t i = 0; i < 4; ++i) ip[i] = std::byte(b[i]);
    return proto::rpc_addr_v4(ip, ep.port());
  }
  const auto b = a.to_v6().to_bytes();
  std::array<std::byte, 16> ip{};
  for (std::size_t i = 0; i < 16; ++i) ip[i] = std::byte(b[i]);
  return proto::rpc_addr_v6(ip, ep.port());
}

std::uint64_t random_conn_id() {
  std::uint64_t v = 0;
  while (v == 0) {
    std::array<std::byte, 8> b{};
    proto::system_random().fill(b);
    for (auto x : b) v = (v << 8) | std::to_integer<std::uint64_t>(x);
  }
  return v;
}

}  // namespace

void Session::leave_middle(bool tell_peer) noexcept {
  if (!middle_ || conn_id_ == 0) return;
  middle_->detach(std::exchange(conn_id_, 0), tell_peer);
}

awaitable<bool> Session::relay_middle(BufferLease& buf, const proto::ClientInit& init,
                                      std::size_t data_begin, std::size_t data_end,
                                      std::size_t tail_end, const proto::AdTag& tag) {
  transport_ = proto::transport_for(init.tag);
  fast_ = false;  // answers are re-framed: the stream is always re-encrypted
  phase_ = Phase::kConnecting;
  deadline_hit_ = false;
  deadline_ = Clock::now() + std::chrono::milliseconds(rt_.opts.dc_connect_timeout_ms);
  const bool may_fall_back = rt_.middle_routing.fallback;
  // Fail fast: while the cluster's proxies are known to fail, do not wait.
  if (may_fall_back && rt_.middle->down(init.dc, Clock::now())) co_return false;
  middle_ = rt_.middle->pick(init.dc);
  if (!middle_) {
    log()->warn("no middle proxy for dc={} (no such cluster and no default)", init.dc);
    if (may_fall_back) co_return false;
    ++rt_.counters[Counter::kDcConnectFailures];
    co_return true;
  }
  conn_id_ = random_conn_id();
  fallback_armed_ = may_fall_back;
  middle_->attach(conn_id_, this);  // a failed connection closes us (or disarms) right away
  // close() detaches us, which ends the wait at once: a closed client is
  // not parked until the connection opens or fails.
  const bool ready =
      phase_ != Phase::kClosed && conn_id_ != 0 && co_await middle_->wait_ready(conn_id_);
  fallback_armed_ = false;
  if (phase_ == Phase::kClosed) co_return true;
  if (!ready) {
    leave_middle(false);
    middle_.reset();
    if (may_fall_back) co_return false;
    ++rt_.counters[Counter::kDcConnectFailures];
    close();
    co_return true;
  }
  ++rt_.counters[Counter::kMiddleRelays];
  error_code rec, lec;
  const auto peer = client_.remote_endpoint(rec);
  const auto local = client_.local_endpoint(lec);
  if (rec || lec) {
    close();
    co_return true;
  }
  req_.conn_id = conn_id_;
  req_.client_addr = rpc_addr(peer);
  req_.proxy_addr = rpc_addr(local);
  req_.transport = transport_;
  req_.ad_tag = tag;
  down_timer_.emplace(client_.get_executor());
  down_timer_->expires_at(Clock::time_point::max());
  up_timer_.emplace(client_.get_executor());
  up_timer_->expires_at(Clock::time_point::max());
  phase_ = Phase::kRelay;
  last_activity_ = Clock::now();
  log()->debug("middle relay started id={} dc={} conn_id={:016x} fake_tls={}", id_, init.dc,
               conn_id_, fake_tls_);

  // Client bytes that arrived with the handshake.
  std::span<std::byte> data(buf.data() + data_begin, data_end - data_begin);
  client_dec_.apply(data);
  bytes_up_ += data.size();
  rt_.counters[Counter::kBytesClientToDc] += data.size();
  if (!data.empty() && !forward_up(data)) {
    close();
    co_return true;
  }
  std::size_t tail = tail_end - data_end;
  std::memmove(buf.data(), buf.data() + data_end, tail);
  BufferLease up;
  if (tail != 0) up = std::move(buf);
  buf.reset();
  asio::co_spawn(
      client_.get_executor(),
      [self = shared_self()]() -> awaitable<void> { co_await self->pump_middle_to_client(); },
      LogExceptions{"relay middle->client"});
  co_await pump_client_to_middle(std::move(up), tail);
  co_return true;
}

bool Session::forward_up(std::span<std::byte> data) {
  if (phase_ != Phase::kRelay) return false;
  up_pending_.insert(up_pending_.end(), data.begin(), data.end());
  bool ok = true;
  auto used = proto::decode_frames(
      transport_, proto::Direction::kToServer, up_pending_, [&](const proto::Frame& f) {
        if (!ok || f.kind != proto::Frame::Kind::kPacket) return;
        auto r = middle_->send_proxy_req(req_, f.payload, f.quick_ack_requested);
        if (!r) {
          log()->debug("proxy request failed id={} error={}", id_, r.error().to_string());
          ok = false;
        }
      });
  if (!used) {
    log_relay_error("bad client framing");
    return false;
  }
  up_pending_.erase(up_pending_.begin(), up_pending_.begin() + static_cast<std::ptrdiff_t>(*used));
  return ok;
}

awaitable<void> Session::pump_client_to_middle(BufferLease buf, std::size_t tail) {
  for (;;) {
    error_code ec = asio::error::would_block;
    std::size_t n = 0;
    if (buf) n = client_.read_some(asio::buffer(buf.data() + tail, kBufferSize - tail), ec);
    if (ec == asio::error::would_block) {
      if (tail == 0) {
        if (!co_await wait_readable(client_, buf)) break;
        continue;
      }
      auto [wec] = co_await client_.async_wait(tcp::socket::wait_read, use_nothrow);
      if (wec) break;
      continue;
    }
    if (ec || phase_ != Phase::kRelay) break;
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
    bytes_up_ += payload;
    rt_.counters[Counter::kBytesClientToDc] += payload;
    last_activity_ = Clock::now();
    if (payload != 0 && !forward_up(data)) break;
    tail = end - tail_begin;
    std::memmove(buf.data(), buf.data() + tail_begin, tail);
    if (middle_->congested() && !co_await middle_->wait_uncongested()) break;
    while (down_bytes_ > kAnswersPauseBytes && phase_ == Phase::kRelay) {
      co_await up_timer_->async_wait(use_nothrow);
    }
    if (phase_ != Phase::kRelay) break;
  }
  close();
}

awaitable<void> Session::pump_middle_to_client() {
  for (;;) {
    while (down_queue_.empty() && phase_ == Phase::kRelay) {
      co_await down_timer_->async_wait(use_nothrow);
    }
    if (phase_ != Phase::kRelay) break;
    proto::Bytes b = std::move(down_queue_.front());
    down_queue_.pop_front();
    auto [ec, n] = co_await asio::async_write(client_, asio::buffer(b), use_nothrow);
    down_bytes_ -= b.size();
    if (down_bytes_ <= kAnswersPauseBytes) up_timer_->cancel();
    if (ec) break;
  }
  close();
}

void Session::queue_down(proto::Bytes bytes) {
  if (phase_ != Phase::kRelay) return;
  if (!down_queue_.empty() && down_bytes_ + bytes.size() > kMaxClientQueueBytes) {
    log()->debug("client too slow for its answers id={} queued={}", id_, down_bytes_);
    close();
    return;
  }
  client_enc_.apply(bytes);
  if (fake_tls_) {
    proto::Bytes records;
    records.reserve(bytes.size() + bytes.size() / proto::kMaxTlsWritePayload * 5 + 5);
    proto::write_tls_records(bytes, records);
    bytes.swap(records);
  }
  down_bytes_ += bytes.size();
  down_queue_.push_back(std::move(bytes));
  down_timer_->cancel();
  last_activity_ = Clock::now();
}

void Session::on_middle_answer(proto::ByteSpan packet) {
  if (phase_ != Phase::kRelay) return;
  proto::Bytes out;
  out.reserve(packet.size() + 8);
  if (auto r = proto::encode_packet(transport_, packet, false, out, nullptr,
                                    proto::Direction::kToClient);
      !r) {
    log_relay_error("middle proxy answer cannot be framed for the client");
    close();
    return;
  }
  bytes_down_ += packet.size();
  rt_.counters[Counter::kBytesDcToClient] += packet.size();
  queue_down(std::move(out));
}

void Session::on_middle_quick_ack(std::uint32_t token) {
  if (phase_ != Phase::kRelay) return;
  proto::Bytes out;
  proto::encode_quick_ack(transport_, token, out);
  queue_down(std::move(out));
}

void Session::on_middle_closed() {
  conn_id_ = 0;                 // already detached
  if (fallback_armed_) return;  // still connecting: relay_middle falls back to direct
  close();
}

}  // namespace mtw::worker
