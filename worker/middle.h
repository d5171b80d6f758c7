// Middle-proxy mode (ad tags): the RPC client side of Telegram's middle-proxy
// protocol (protocol.md §8, docs/proto.md "Middle-proxy protocol").
// MiddlePool owns a small set of connections per cluster (a signed DC in
// proxy-multi.conf; unknown DCs go to the default cluster) and hands them to
// client sessions round robin. Each MiddleConn does the nonce exchange, key
// derivation and handshake, then multiplexes many clients by conn_id:
// PROXY_REQ out, PROXY_ANS / SIMPLE_ACK / CLOSE_EXT in, PING answered, its
// own PING when a client has waited half the stall timeout. A connection that
// stays silent for the whole stall timeout while a client waits, or sends
// bytes that do not parse (bad CRC, sequence, length, handshake, message),
// fails: its clients are told to close (they reconnect) and the next client
// for that slot opens a replacement. Nothing a middle proxy sends ends the
// process.
//
// Private to worker/ (includes Asio); single-threaded like the rest of the
// worker. The pool must outlive every connection's coroutines: close_all()
// before the io_context stops, so they finish.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "proto/proxy_config.h"
#include "proto/rpc.h"
#include "proto/rpc_crypto.h"
#include "proto/rpc_frame.h"
#include "worker/egress.h"
#include "worker/names.h"

namespace mtw::worker {

// One multiplexed client (a Session) as its middle connection sees it. The
// connection calls these from its reader; they must not call back into the
// connection except detach() (on_middle_closed: already detached).
class MiddleClient {
 public:
  virtual void on_middle_answer(proto::ByteSpan packet) = 0;  // PROXY_ANS data
  virtual void on_middle_quick_ack(std::uint32_t token) = 0;  // SIMPLE_ACK, as sent (LE)
  virtual void on_middle_closed() = 0;  // CLOSE_EXT, or the connection failed: close the client

 protected:
  ~MiddleClient() = default;
};

struct MiddleSettings {
  proto::Bytes proxy_secret;
  proto::ProxyConfig config;
  std::size_t pool_size = 2;
  std::string public_ip;  // empty: the connection's local address
  std::uint32_t stall_ms = 5'000;
  std::uint32_t connect_timeout_ms = 10'000;  // TCP connect + handshake
  // The worker's egress (--egress-file; Runtime::egress, which a live
  // change may replace): with upstreams, middle proxies are dialed through
  // them like DCs. Null or direct-only: a plain connect.
  const std::unique_ptr<Egress>* egress = nullptr;
};

// For the stats file.
struct MiddleStats {
  std::uint64_t connections = 0;  // open or opening (a gauge)
  std::uint64_t clients = 0;      // clients attached to a connection (a gauge)
  std::uint64_t opened = 0;       // connections that finished the handshake
  std::uint64_t errors = 0;       // connections failed: hostile bytes, stall, handshake
  std::uint64_t down = 0;         // clusters in their fail-fast window (a gauge)
};

// A middle proxy's connection may queue this much outbound before its clients
// stop reading (backpressure); a single packet may exceed it.
inline constexpr std::size_t kMiddleMaxQueuedBytes = 4 * 1024 * 1024;

class MiddlePool;

class MiddleConn : public std::enable_shared_from_this<MiddleConn> {
 public:
  MiddleConn(MiddlePool& pool, std::int16_t cluster, std::vector<proto::Endpoint> endpoints);
  MiddleConn(const MiddleConn&) = delete;

  void start();
  // Waits while the connection opens. True once the handshake finished with
  // `conn_id` still attached; false when the connection failed or `conn_id`
  // was detached meanwhile (its client closed: detach() wakes the waiters).
  awaitable<bool> wait_ready(std::uint64_t conn_id);
  bool opening() const noexcept { return state_ == State::kOpening; }
  void attach(std::uint64_t conn_id, MiddleClient* client);
  // Forgets the client; `tell_peer` sends CLOSE_CONN (the client went away).
  // While the connection opens, the client's wait_ready() returns false.
  void detach(std::uint64_t conn_id, bool tell_peer);
  // Queues one RPC_PROXY_REQ. kBadInput: the packet cannot be carried (the
  // client's fault); kNotFound: the connection is gone.
  [[nodiscard]] base::Result<void> send_proxy_req(const proto::ProxyReqHeader& h,
                                                  proto::ByteSpan packet, bool quick_ack);
  bool congested() const noexcept { return queued_ > kMiddleMaxQueuedBytes; }
  // Until the outbound queue is below the cap; false if the connection failed.
  awaitable<bool> wait_uncongested();
  bool dead() const noexcept { return state_ == State::kDead; }
  std::size_t client_count() const noexcept { return clients_.size(); }
  void on_tick(Clock::time_point now);
  // Closes the socket and every client (idempotent). `error` counts it.
  void fail(std::string_view why, bool error);

 private:
  enum class State { kOpening, kReady, kDead };

  awaitable<void> run();
  // Through the user's upstreams, in their plan's order, each attempt with
  // its own connect deadline. A SOCKS upstream must report the address of
  // its end of the tunnel (the key derivation needs the address and port
  // the middle proxy sees); one that reports none is skipped.
  awaitable<bool> dial_via_egress(Egress& eg, std::size_t first);
  Egress* egress() const noexcept;
  awaitable<bool> exchange_nonces();
  awaitable<void> read_loop();
  awaitable<void> write_loop();
  // Frames, encrypts and queues one payload; false if it could not.
  bool queue_payload(proto::ByteSpan payload);
  void on_frame(std::int32_t seq, proto::ByteSpan payload);
  base::Result<void> dispatch(proto::ByteSpan payload);
  MiddleClient* find(std::uint64_t conn_id);

  MiddlePool& pool_;
  std::int16_t cluster_;
  std::vector<proto::Endpoint> endpoints_;
  tcp::socket sock_;
  asio::steady_timer ready_timer_, write_timer_, drain_timer_;  // condition variables
  State state_ = State::kOpening;
  Clock::time_point open_deadline_;
  std::unordered_map<std::uint64_t, MiddleClient*> clients_;
  proto::RpcFrameEncoder encoder_;
  proto::RpcFrameDecoder decoder_;
  proto::AesCbc enc_, dec_;
  bool handshaken_ = false;
  std::optional<base::Error> frame_error_;          // set by on_frame, acted on by the reader
  proto::Bytes raw_, plain_;                        // received: not yet a whole block / frame
  std::vector<proto::Bytes> out_;                   // encrypted frames waiting for the writer
  std::size_t queued_ = 0;                          // bytes in out_ plus the write in flight
  std::optional<Clock::time_point> waiting_since_;  // a request went out, nothing came back
  bool ping_sent_ = false;
  std::uint64_t acked_ = 0;  // our bytes the middle proxy's kernel took (tcp_progress.h)
  // Dialing through upstreams: on_tick closes the socket at the attempt's
  // deadline (the next upstream is tried) instead of failing the connection.
  bool dialing_ = false;
  bool dial_timed_out_ = false;
  // Through SOCKS: the addresses the middle proxy sees (the upstream's end
  // of the tunnel, the middle proxy) for the key derivation.
  std::optional<tcp::endpoint> kdf_local_, kdf_remote_;
  const Egress* dial_egress_ = nullptr;  // the egress upstream_index_ belongs to
  std::size_t upstream_index_ = Egress::kDirect;
  std::uint64_t bytes_out_ = 0, bytes_in_ = 0;  // for the upstream's byte counters
};

class MiddlePool {
 public:
  MiddlePool(asio::any_io_executor ex, MiddleSettings settings);
  ~MiddlePool();
  MiddlePool(const MiddlePool&) = delete;

  // The next connection of `dc`'s cluster, opening one if its slot is empty
  // or failed; nullptr if the config has no cluster for `dc` and no default.
  std::shared_ptr<MiddleConn> pick(std::int16_t dc);
  // Fail fast: a connection of `dc`'s cluster failed to open (connect or
  // handshake) less than the down window ago. While it holds, callers send
  // clients direct (when allowed) instead of waiting for another attempt;
  // after it, the next client tries again, and a connection that opens ends
  // the window (the proxies are back).
  bool down(std::int16_t dc, Clock::time_point now) const;
  void on_open_failed(std::int16_t cluster);
  void on_opened(std::int16_t cluster);
  // New material (a refresh): connections opened from now on use it;
  // the open ones keep serving their clients and close once they have none.
  void update(proto::Bytes proxy_secret, proto::ProxyConfig config);
  void on_tick(Clock::time_point now);
  // Fails every connection (their clients close) and forgets them.
  void close_all();

  const MiddleSettings& settings() const noexcept { return settings_; }
  MiddleStats& stats() noexcept { return stats_; }
  asio::any_io_executor executor() const { return ex_; }

 private:
  struct Cluster {
    std::vector<std::shared_ptr<MiddleConn>> slots;
    std::size_t next = 0;
  };
  std::int16_t cluster_key(std::int16_t dc) const;  // 0: none
  asio::any_io_executor ex_;
  MiddleSettings settings_;
  MiddleStats stats_;
  std::map<std::int16_t, Cluster> clusters_;
  std::map<std::int16_t, Clock::time_point> down_until_;  // clusters in their fail-fast window
  // Connections of replaced material: ticked until their last client left.
  std::vector<std::shared_ptr<MiddleConn>> retired_;
};

}  // namespace mtw::worker
