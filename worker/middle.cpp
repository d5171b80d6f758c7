// Middle-proxy connections and their pool (see middle.h).
#include "worker/middle.h"

#include <ctime>
#include <variant>

#include "base/log.h"
#include "conn/tcp_progress.h"
#include "proto/random.h"
#include "worker/egress_dial.h"

namespace mtw::worker {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("worker");
  return l;
}

constexpr std::size_t kReadChunk = 64 * 1024;

// `5730a2df | ping_id`: our liveness probe (the middle proxy answers PONG).
proto::Bytes build_ping(std::uint64_t id) {
  proto::Bytes out(12);
  proto::store_le32(out.data(), proto::kRpcPing);
  for (int i = 0; i < 8; ++i)
    out[4 + static_cast<std::size_t>(i)] = std::byte((id >> (8 * i)) & 0xff);
  return out;
}

std::uint64_t random_u64() {
  std::array<std::byte, 8> b{};
  proto::system_random().fill(b);
  std::uint64_t v = 0;
  for (auto x : b) v = (v << 8) | std::to_integer<std::uint64_t>(x);
  return v;
}

template <std::size_t N>
std::array<std::byte, N> addr_bytes(const std::array<unsigned char, N>& a) {
  std::array<std::byte, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = std::byte(a[i]);
  return out;
}

void set_forever(asio::steady_timer& t) { t.expires_at(Clock::time_point::max()); }

// The upstream's end of a SOCKS tunnel as an address; nullopt when the
// proxy reported none (a name, port 0 or the unspecified address).
std::optional<asio::ip::address> bound_address(const proto::socks::Target& t) {
  using Kind = proto::socks::Target::Kind;
  if (t.kind == Kind::kName || t.port == 0) return std::nullopt;
  asio::ip::address a;
  if (t.kind == Kind::kIpv6) {
    asio::ip::address_v6::bytes_type b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::to_integer<unsigned char>(t.ip[i]);
    a = asio::ip::address_v6(b);
  } else {
    asio::ip::address_v4::bytes_type b{};
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::to_integer<unsigned char>(t.ip[i]);
    a = asio::ip::address_v4(b);
  }
  if (a.is_unspecified()) return std::nullopt;
  return a;
}

}  // namespace

// --- MiddleConn ------------------------------------------------------------

MiddleConn::MiddleConn(MiddlePool& pool, std::int16_t cluster,
                       std::vector<proto::Endpoint> endpoints)
    : pool_(pool),
      cluster_(cluster),
      endpoints_(std::move(endpoints)),
      sock_(pool.executor()),
      ready_timer_(pool.executor()),
      write_timer_(pool.executor()),
      drain_timer_(pool.executor()),
      open_deadline_(Clock::now() + std::chrono::milliseconds(pool.settings().connect_timeout_ms)) {
  set_forever(ready_timer_);
  set_forever(write_timer_);
  set_forever(drain_timer_);
  ++pool_.stats().connections;
}

void MiddleConn::start() {
  asio::co_spawn(
      sock_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->run(); },
      LogExceptions{"middle connection"});
}

awaitable<bool> MiddleConn::wait_ready(std::uint64_t conn_id) {
  auto self = shared_from_this();
  while (state_ == State::kOpening && clients_.contains(conn_id))
    co_await ready_timer_.async_wait(use_nothrow);
  co_return state_ == State::kReady&& clients_.contains(conn_id);
}

awaitable<bool> MiddleConn::wait_uncongested() {
  auto self = shared_from_this();
  while (congested() && state_ != State::kDead) co_await drain_timer_.async_wait(use_nothrow);
  co_return state_ != State::kDead;
}

void MiddleConn::attach(std::uint64_t conn_id, MiddleClient* client) {
  if (state_ == State::kDead) {
    client->on_middle_closed();
    return;
  }
  if (clients_.emplace(conn_id, client).second) ++pool_.stats().clients;
}

void MiddleConn::detach(std::uint64_t conn_id, bool tell_peer) {
  if (state_ == State::kDead || clients_.erase(conn_id) == 0) return;
  --pool_.stats().clients;
  // A client closed while it waits for the handshake: its wait_ready()
  // returns now (the others see their conn_id still attached and wait on).
  if (state_ == State::kOpening) ready_timer_.cancel();
  if (tell_peer) queue_payload(proto::build_close_conn(conn_id));
}

MiddleClient* MiddleConn::find(std::uint64_t conn_id) {
  auto it = clients_.find(conn_id);
  return it == clients_.end() ? nullptr : it->second;
}

base::Result<void> MiddleConn::send_proxy_req(const proto::ProxyReqHeader& h,
                                              proto::ByteSpan packet, bool quick_ack) {
  if (state_ != State::kReady) return base::fail(base::Errc::kNotFound, "middle connection gone");
  proto::Bytes payload;
  payload.reserve(packet.size() + 128);
  if (auto r = proto::build_proxy_req(h, packet, quick_ack, payload); !r) return r;
  if (!queue_payload(payload)) return base::fail(base::Errc::kNotFound, "middle connection gone");
  if (!waiting_since_) waiting_since_ = Clock::now();
  return {};
}

bool MiddleConn::queue_payload(proto::ByteSpan payload) {
  if (state_ == State::kDead || !enc_.valid()) return false;
  proto::Bytes frame;
  frame.reserve(payload.size() + 32);
  if (auto r = encoder_.encode(payload, frame); !r) {
    fail("outbound frame: " + r.error().context, true);
    return false;
  }
  if (auto r = enc_.apply(frame); !r) {
    fail("outbound encryption: " + r.error().context, true);
    return false;
  }
  queued_ += frame.size();
  out_.push_back(std::move(frame));
  write_timer_.cancel();
  return true;
}

void MiddleConn::fail(std::string_view why, bool error) {
  if (state_ == State::kDead) return;
  const bool was_ready = state_ == State::kReady;
  state_ = State::kDead;
  if (!was_ready && error) pool_.on_open_failed(cluster_);
  --pool_.stats().connections;
  if (error) ++pool_.stats().errors;
  error_code ec;
  sock_.close(ec);
  ready_timer_.cancel();
  write_timer_.cancel();
  drain_timer_.cancel();
  out_.clear();
  if (Egress* eg = egress();
      eg != nullptr && eg == dial_egress_ && upstream_index_ < eg->spec().upstreams.size())
    eg->add_bytes(upstream_index_, bytes_out_, bytes_in_);
  auto clients = std::move(clients_);
  clients_.clear();
  pool_.stats().clients -= clients.size();
  if (error) {
    log()->warn("middle connection failed cluster={} ready={} clients={} why={}", cluster_,
                was_ready, clients.size(), why);
  } else {
    log()->info("middle connection closed cluster={} ready={} clients={} why={}", cluster_,
                was_ready, clients.size(), why);
  }
  for (auto& [id, c] : clients) c->on_middle_closed();
}

void MiddleConn::on_tick(Clock::time_point now) {
  if (state_ == State::kOpening) {
    if (now < open_deadline_) return;
    if (dialing_) {  // this upstream's attempt is over: dial_via_egress tries the next
      dial_timed_out_ = true;
      open_deadline_ = Clock::time_point::max();
      error_code ec;
      sock_.close(ec);
      return;
    }
    fail("connect or handshake timeout", true);
    return;
  }
  if (state_ != State::kReady || !waiting_since_) return;
  // Our bytes still moving count as life ("no bytes in either direction"):
  // a request queued behind a slow upload cannot be answered before it is
  // through (a user shaped to 1 Mbit/s sends a 64 KiB packet in half a
  // second, and a 1 s stall timeout closed its clients under load). The
  // middle proxy's kernel acknowledging them shows the path and its receive
  // window open. Not after our PING: its own acknowledgement would restart
  // the clock each time; only an answer (read_loop) counts then. A proxy
  // that stops reading closes its window, the acknowledgements stop, and it
  // is caught one tick later than before at most.
  if (!ping_sent_) {
    if (auto acked = conn::tcp_bytes_acked(sock_.native_handle()); acked && *acked != acked_) {
      acked_ = *acked;
      waiting_since_ = now;
      return;
    }
  }
  const auto stall = std::chrono::milliseconds(pool_.settings().stall_ms);
  const auto waited = now - *waiting_since_;
  if (waited >= stall) {
    fail("stalled: no bytes while a client waits", true);
  } else if (waited >= stall / 2 && !ping_sent_) {
    ping_sent_ = true;
    queue_payload(build_ping(random_u64()));
  }
}

awaitable<void> MiddleConn::run() {
  auto self = shared_from_this();
  // Start at a random middle proxy of the cluster so the pool spreads out.
  const std::size_t first = endpoints_.empty() ? 0 : random_u64() % endpoints_.size();
  if (Egress* eg = egress(); eg != nullptr && !eg->direct_only() && !endpoints_.empty()) {
    if (!co_await dial_via_egress(*eg, first)) co_return;
  } else {
    error_code ec = asio::error::host_not_found;
    for (std::size_t i = 0; i < endpoints_.size() && state_ != State::kDead; ++i) {
      ec = co_await connect_endpoint(sock_, endpoints_[(first + i) % endpoints_.size()]);
      if (!ec) break;
    }
    if (state_ == State::kDead) co_return;
    if (ec) {
      fail("connect: " + ec.message(), true);
      co_return;
    }
  }
  tune_socket(sock_);
  if (!co_await exchange_nonces()) co_return;
  co_await read_loop();
}

Egress* MiddleConn::egress() const noexcept {
  const auto* e = pool_.settings().egress;
  return e != nullptr ? e->get() : nullptr;
}

awaitable<bool> MiddleConn::dial_via_egress(Egress& eg, std::size_t first) {
  const auto plan = eg.plan(Clock::now());
  const auto timeout = std::chrono::milliseconds(pool_.settings().connect_timeout_ms);
  std::string last = "every upstream down";
  for (std::size_t attempt = 0; attempt < plan.size(); ++attempt) {
    const std::size_t i = plan[attempt];
    // Each attempt to the next middle proxy of the cluster, so one that is
    // down does not fail every upstream.
    const proto::Endpoint& target = endpoints_[(first + attempt) % endpoints_.size()];
    const proto::UpstreamSpec direct;  // the policy's fallback: a plain connect
    const proto::UpstreamSpec& up = i == Egress::kDirect ? direct : eg.spec().upstreams[i];
    const std::string name = i == Egress::kDirect ? std::string("direct-fallback") : up.name;
    proto::socks::Target bound;
    dialing_ = true;
    dial_timed_out_ = false;
    open_deadline_ = Clock::now() + timeout;
    std::vector<proto::Endpoint> one;  // (no braced list in a co_await: GCC 12 rejects it)
    one.push_back(target);
    auto r = co_await dial_upstream(sock_, up, one, &bound);
    dialing_ = false;
    if (state_ == State::kDead) co_return false;
    if (egress() != &eg) {  // replaced by a live change while we waited: its indexes are gone
      fail("upstreams changed while connecting", false);
      co_return false;
    }
    if (r && i != Egress::kDirect) {
      error_code aec, tec;
      const auto bound_ip = bound_address(bound);
      const auto target_ip = asio::ip::make_address(target.host, tec);
      if (!bound_ip || tec || bound_ip->is_v4() != target_ip.is_v4()) {
        // Usable for DCs, not for middle proxies: not marked down.
        last = "upstream " + name +
               " reports no usable bound address (the middle proxy's key derivation needs it)";
        log()->warn(
            "middle proxy not reachable through upstream upstream={} middle_proxy={} "
            "error=\"reports no usable bound address\"",
            name, proto::format_endpoint(target));
        sock_.close(aec);
        continue;
      }
      kdf_local_ = tcp::endpoint(*bound_ip, bound.port);
      kdf_remote_ = tcp::endpoint(target_ip, target.port);
      eg.on_success(i);
    }
    if (r) {
      upstream_index_ = i;
      dial_egress_ = &eg;
      open_deadline_ = Clock::now() + timeout;  // the nonce exchange and handshake
      log()->debug("middle proxy connected cluster={} middle_proxy={} upstream={}", cluster_,
                   proto::format_endpoint(target), name);
      co_return true;
    }
    last = dial_timed_out_ ? std::string("timeout") : r.error().context;
    if (i == Egress::kDirect) {
      log()->warn(
          "middle proxy connect failed upstream=direct-fallback middle_proxy={} error=\"{}\"",
          proto::format_endpoint(target), last);
      continue;
    }
    const bool down = eg.on_failure(i, Clock::now());
    log()->warn("upstream failed upstream={} middle_proxy={} error=\"{}\"", name,
                proto::format_endpoint(target), last);
    if (down) log()->warn("upstream marked down upstream={}", name);
  }
  fail("connect through upstreams: " + last, true);
  co_return false;
}

awaitable<bool> MiddleConn::exchange_nonces() {
  const auto& st = pool_.settings();
  proto::RpcNonceBytes nonce{};
  proto::system_random().fill(nonce);
  const auto ts = static_cast<std::uint32_t>(std::time(nullptr));
  auto msg = proto::build_rpc_nonce(st.proxy_secret, ts, nonce);
  if (!msg) {
    fail("nonce: " + msg.error().context, true);
    co_return false;
  }
  proto::Bytes out;
  if (auto r = encoder_.encode(*msg, out); !r) {
    fail("nonce frame: " + r.error().context, true);
    co_return false;
  }
  if (auto [wec, wn] = co_await asio::async_write(sock_, asio::buffer(out), use_nothrow); wec) {
    fail("write: " + wec.message(), false);
    co_return false;
  }
  // The answer comes in clear; nothing else arrives before our handshake.
  std::optional<proto::RpcNonce> theirs;
  proto::Bytes chunk(kReadChunk);
  while (!theirs) {
    auto [rec, n] = co_await sock_.async_read_some(asio::buffer(chunk), use_nothrow);
    if (state_ == State::kDead) co_return false;
    if (rec) {
      fail("read during handshake: " + rec.message(), true);
      co_return false;
    }
    plain_.insert(plain_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    std::optional<base::Error> bad;
    auto used = decoder_.decode(plain_, [&](std::int32_t, proto::ByteSpan p) {
      if (theirs || bad) {
        bad = base::Error{base::Errc::kBadInput, 0, "frame after the nonce"};
        return;
      }
      auto r = proto::parse_rpc_nonce(p, st.proxy_secret);
      if (r) {
        theirs = *r;
      } else {
        bad = r.error();
      }
    });
    if (!used) {
      fail("nonce frame: " + used.error().context, true);
      co_return false;
    }
    if (bad) {
      fail("nonce: " + bad->context, true);
      co_return false;
    }
    plain_.erase(plain_.begin(), plain_.begin() + static_cast<std::ptrdiff_t>(*used));
    if (plain_.size() > 4096) {
      fail("nonce: oversized", true);
      co_return false;
    }
  }
  if (!plain_.empty()) {  // bytes after the nonce belong to the encrypted stream
    raw_ = std::move(plain_);
    plain_.clear();
  }

  // Key derivation over the addresses as each side sees them (ours public if set).
  error_code lec, rec;
  const auto local = kdf_local_ ? *kdf_local_ : sock_.local_endpoint(lec);
  const auto remote = kdf_remote_ ? *kdf_remote_ : sock_.remote_endpoint(rec);
  if (lec || rec || local.address().is_v4() != remote.address().is_v4()) {
    fail("socket addresses unknown", false);
    co_return false;
  }
  proto::RpcKdfInput in;
  in.server_nonce = theirs->nonce;
  in.client_nonce = nonce;
  in.client_ts = ts;
  in.proxy_secret = st.proxy_secret;
  in.server_port = remote.port();
  in.client_port = local.port();
  auto our_ip = local.address();
  if (!st.public_ip.empty()) {
    error_code pec;
    auto pub = asio::ip::make_address(st.public_ip, pec);
    if (!pec && pub.is_v4() == our_ip.is_v4()) our_ip = pub;
  }
  if (remote.address().is_v4()) {
    in.server_ip4 = addr_bytes(remote.address().to_v4().to_bytes());
    in.client_ip4 = addr_bytes(our_ip.to_v4().to_bytes());
  } else {
    in.ipv6 = true;
    in.server_ip6 = addr_bytes(remote.address().to_v6().to_bytes());
    in.client_ip6 = addr_bytes(our_ip.to_v6().to_bytes());
  }
  const auto keys = proto::derive_rpc_session_keys(in);
  auto enc = proto::AesCbc::create(keys.encrypt, proto::AesCbc::Mode::kEncrypt);
  auto dec = proto::AesCbc::create(keys.decrypt, proto::AesCbc::Mode::kDecrypt);
  if (!enc || !dec) {
    fail("cipher set-up failed", true);
    co_return false;
  }
  enc_ = std::move(*enc);
  dec_ = std::move(*dec);
  const auto pid = proto::default_rpc_pid();
  if (!queue_payload(proto::build_rpc_handshake(pid, pid))) co_return false;
  asio::co_spawn(
      sock_.get_executor(),
      [self = shared_from_this()]() -> awaitable<void> { co_await self->write_loop(); },
      LogExceptions{"middle writer"});
  co_return true;
}

void MiddleConn::on_frame(std::int32_t, proto::ByteSpan payload) {
  if (frame_error_ || state_ == State::kDead) return;
  if (!handshaken_) {
    auto r = proto::parse_rpc_handshake(payload, proto::default_rpc_pid());
    if (!r) {
      frame_error_ = r.error();
      return;
    }
    handshaken_ = true;
    state_ = State::kReady;
    ++pool_.stats().opened;
    pool_.on_opened(cluster_);
    ready_timer_.cancel();
    log()->debug("middle connection ready cluster={}", cluster_);
    return;
  }
  if (auto r = dispatch(payload); !r) frame_error_ = r.error();
}

base::Result<void> MiddleConn::dispatch(proto::ByteSpan payload) {
  // PONG answers our own PING; liveness was already noted by the reader.
  if (payload.size() == 12 && proto::load_le32(payload.data()) == proto::kRpcPong) return {};
  auto msg = proto::parse_rpc_inbound(payload);
  if (!msg) return tl::unexpected(msg.error());
  if (auto* ans = std::get_if<proto::RpcProxyAns>(&*msg)) {
    if (auto* c = find(ans->conn_id)) {
      c->on_middle_answer(ans->data);
    } else {
      queue_payload(proto::build_close_conn(ans->conn_id));  // a client we no longer know
    }
  } else if (auto* ack = std::get_if<proto::RpcSimpleAck>(&*msg)) {
    if (auto* c = find(ack->conn_id)) c->on_middle_quick_ack(proto::load_le32(ack->confirm.data()));
  } else if (auto* close = std::get_if<proto::RpcCloseExt>(&*msg)) {
    if (auto it = clients_.find(close->conn_id); it != clients_.end()) {
      MiddleClient* c = it->second;
      clients_.erase(it);
      --pool_.stats().clients;
      c->on_middle_closed();
    }
  } else if (auto* ping = std::get_if<proto::RpcPing>(&*msg)) {
    queue_payload(proto::build_pong(ping->ping_id));
  }
  return {};
}

awaitable<void> MiddleConn::read_loop() {
  proto::Bytes chunk(kReadChunk);
  const auto sink = [this](std::int32_t seq, proto::ByteSpan p) { on_frame(seq, p); };
  for (bool first = true;; first = false) {
    std::size_t n = 0;
    if (!first || raw_.empty()) {
      auto [ec, got] = co_await sock_.async_read_some(asio::buffer(chunk), use_nothrow);
      if (state_ == State::kDead) co_return;
      if (ec) {
        fail(ec == asio::error::eof ? "closed by the middle proxy" : "read: " + ec.message(),
             !handshaken_);
        co_return;
      }
      n = got;
      bytes_in_ += got;
      waiting_since_.reset();
      ping_sent_ = false;
    }
    raw_.insert(raw_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    const std::size_t whole = raw_.size() & ~std::size_t{15};
    if (whole != 0) {
      if (auto r = dec_.apply({raw_.data(), whole}); !r) {
        fail("decrypt: " + r.error().context, true);
        co_return;
      }
      plain_.insert(plain_.end(), raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(whole));
      raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(whole));
    }
    auto used = decoder_.decode(plain_, sink);
    if (state_ == State::kDead) co_return;
    if (!used) {
      fail("bad frame: " + std::string(proto::rpc_frame_fault_name(decoder_.fault())), true);
      co_return;
    }
    plain_.erase(plain_.begin(), plain_.begin() + static_cast<std::ptrdiff_t>(*used));
    if (frame_error_) {
      fail(frame_error_->context, true);
      co_return;
    }
  }
}

awaitable<void> MiddleConn::write_loop() {
  auto self = shared_from_this();
  std::vector<proto::Bytes> batch;
  std::vector<asio::const_buffer> bufs;
  for (;;) {
    while (out_.empty() && state_ != State::kDead) co_await write_timer_.async_wait(use_nothrow);
    if (state_ == State::kDead) co_return;
    batch.clear();
    batch.swap(out_);
    bufs.clear();
    std::size_t total = 0;
    for (const auto& b : batch) {
      bufs.emplace_back(asio::buffer(b));
      total += b.size();
    }
    auto [ec, n] = co_await asio::async_write(sock_, bufs, use_nothrow);
    if (state_ == State::kDead) co_return;
    if (ec) {
      fail("write: " + ec.message(), false);
      co_return;
    }
    queued_ -= total;
    bytes_out_ += total;
    if (!congested()) drain_timer_.cancel();
  }
}

// --- MiddlePool ------------------------------------------------------------

MiddlePool::MiddlePool(asio::any_io_executor ex, MiddleSettings settings)
    : ex_(std::move(ex)), settings_(std::move(settings)) {}

MiddlePool::~MiddlePool() = default;

std::int16_t MiddlePool::cluster_key(std::int16_t dc) const {
  const auto* endpoints = settings_.config.lookup(dc);
  if (endpoints == nullptr || endpoints->empty()) return 0;
  return settings_.config.clusters.contains(dc) ? dc : *settings_.config.default_dc;
}

bool MiddlePool::down(std::int16_t dc, Clock::time_point now) const {
  auto it = down_until_.find(cluster_key(dc));
  return it != down_until_.end() && now < it->second;
}

void MiddlePool::on_open_failed(std::int16_t cluster) {
  // The window: long enough that a burst of clients does not each wait for
  // a dead proxy, short enough that the return is noticed within seconds.
  const auto window = std::chrono::milliseconds(std::max<std::uint32_t>(settings_.stall_ms, 2'000));
  auto [it, fresh] = down_until_.try_emplace(cluster);
  if (fresh) {
    ++stats_.down;
    log()->warn("middle proxies unreachable cluster={} fallback_window_ms={}", cluster,
                window.count());
  }
  it->second = Clock::now() + window;
}

void MiddlePool::on_opened(std::int16_t cluster) {
  if (down_until_.erase(cluster) != 0) {
    --stats_.down;
    log()->info("middle proxies answer again cluster={}", cluster);
  }
}

void MiddlePool::update(proto::Bytes proxy_secret, proto::ProxyConfig config) {
  settings_.proxy_secret = std::move(proxy_secret);
  settings_.config = std::move(config);
  for (auto& [key, cl] : clusters_) {
    for (auto& c : cl.slots) {
      if (c && !c->dead()) retired_.push_back(std::move(c));
    }
  }
  clusters_.clear();
  stats_.down -= down_until_.size();
  down_until_.clear();
}

std::shared_ptr<MiddleConn> MiddlePool::pick(std::int16_t dc) {
  const std::int16_t key = cluster_key(dc);
  if (key == 0) return nullptr;
  const auto* endpoints = settings_.config.lookup(dc);
  auto& cl = clusters_[key];
  if (cl.slots.size() != settings_.pool_size) cl.slots.resize(settings_.pool_size);
  auto& slot = cl.slots[cl.next++ % cl.slots.size()];
  if (!slot || slot->dead()) {
    slot = std::make_shared<MiddleConn>(*this, key, *endpoints);
    slot->start();
  }
  return slot;
}

void MiddlePool::on_tick(Clock::time_point now) {
  for (auto& [key, cl] : clusters_) {
    for (auto& c : cl.slots) {
      if (c) c->on_tick(now);
    }
  }
  for (auto& c : retired_) {
    c->on_tick(now);
    if (!c->dead() && c->client_count() == 0) c->fail("replaced by new material", false);
  }
  std::erase_if(retired_, [](const auto& c) { return c->dead(); });
}

void MiddlePool::close_all() {
  auto all = std::move(clusters_);
  clusters_.clear();
  for (auto& c : std::exchange(retired_, {})) c->fail("shutting down", false);
  for (auto& [key, cl] : all) {
    for (auto& c : cl.slots) {
      if (c) c->fail("shutting down", false);
    }
  }
}

}  // namespace mtw::worker
