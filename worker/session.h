// Session: one client connection of the worker: after the shared
// handshake reader (conn::Connection::read_handshake) identified it, the
// fake-TLS answer, the DC connection and the relay in both directions (or
// the middle-proxy relay); masking when the handshake fails. Owned by
// shared_ptr held by its coroutines. Private to worker/ (includes Asio).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "conn/connection.h"
#include "proto/aes_ctr.h"
#include "proto/identify.h"
#include "worker/middle.h"
#include "worker/names.h"
#include "worker/runtime.h"

namespace mtw::worker {

using conn::BufferLease;
using conn::kBufferSize;
using conn::kHandshakeBytes;

class Session : public conn::Connection, public MiddleClient {
 public:
  // `initial` holds bytes already read from the socket (a handoff).
  // `handoff_listener`: the handoff's listener id, which picks the
  // connection's ad tag (Runtime::MiddleRouting). `peer`: the handoff's
  // client address, tallied in Runtime::clients while the session lives.
  Session(Runtime& rt, tcp::socket client, proto::Bytes initial,
          std::optional<std::uint32_t> handoff_listener = {},
          const ipc::control::PeerAddress& peer = {});
  ~Session() override;

  void close() noexcept override;

  // MiddleClient (middle-proxy mode, middle_relay.cpp).
  void on_middle_answer(proto::ByteSpan packet) override;
  void on_middle_quick_ack(std::uint32_t token) override;
  void on_middle_closed() override;

 private:
  // The handshake, then the relay or the mask.
  awaitable<void> serve(BufferLease& buf, std::size_t filled) override;
  // A handed-off connection is masked by its listener's route as the
  // gate would (the listener's `mask`).
  std::optional<std::uint32_t> listener_id() const noexcept override { return handoff_listener_; }
  std::shared_ptr<Session> shared_self() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }
  awaitable<void> finish_tls(BufferLease& buf, std::size_t filled, proto::Identification& id,
                             const proto::Secret& secret);
  // The fake-TLS answer to the client (Options::flight_segment_bytes).
  awaitable<error_code> send_answer(proto::ByteSpan reply);
  awaitable<void> start_relay(BufferLease& buf, const proto::ClientInit& init,
                              std::size_t data_begin, std::size_t data_end, std::size_t tail_end);
  awaitable<bool> connect_dc(std::int16_t dc);
  // Through rt_.egress: the upstreams in its plan's order, failing over on
  // a connect or handshake failure; each attempt gets its own deadline.
  awaitable<bool> connect_dc_via_egress(std::int16_t dc, const std::vector<proto::Endpoint>& eps);
  // Middle-proxy mode (middle_relay.cpp): the relay over a pooled middle
  // connection instead of a DC connection of our own.
  // False: the middle proxies failed before anything was sent and fallback
  // is on; the caller relays direct. True: the connection was handled.
  awaitable<bool> relay_middle(BufferLease& buf, const proto::ClientInit& init,
                               std::size_t data_begin, std::size_t data_end, std::size_t tail_end,
                               const proto::AdTag& tag);
  awaitable<void> pump_client_to_middle(BufferLease buf, std::size_t tail);
  awaitable<void> pump_middle_to_client();
  // Decrypted client bytes: cut into packets, each sent as a PROXY_REQ.
  // False when the client's framing is bad or the connection is gone.
  bool forward_up(std::span<std::byte> data);
  // Encrypts (and for fake TLS wraps) bytes for the client and queues them.
  void queue_down(proto::Bytes bytes);
  void leave_middle(bool tell_peer) noexcept;
  awaitable<void> pump_client_to_dc(BufferLease buf, std::size_t tail);
  awaitable<void> pump_dc_to_client();
  // DC->client: re-encrypts n bytes read into `buf` (fast mode off) and, for
  // fake TLS, fills in the record headers in front of each slot. Returns the
  // bytes to write from buf[0].
  std::size_t prepare_down(std::byte* buf, std::size_t n);
  void log_relay_error(const char* what);
  std::size_t unwrap_tls(std::byte* buf, std::size_t from, std::size_t end, std::size_t& tail_begin,
                         bool& bad);

  // The worker's view of the runtime conn::Connection holds as well.
  Runtime& rt_;
  // The handoff's listener id (managed worker): picks the connection's ad
  // tag (Runtime::MiddleRouting).
  std::optional<std::uint32_t> handoff_listener_;
  ipc::control::PeerAddress peer_;
  bool fake_tls_ = false;
  // Toward a fake-TLS client: the largest record payload (the mask's,
  // proto::relay_record_payload).
  std::size_t record_payload_ = proto::kMaxTlsWritePayload;
  bool fast_ = false;
  proto::AesCtr client_dec_, client_enc_, dc_enc_, dc_dec_;
  // The egress upstream carrying the DC connection (empty: direct). A name,
  // not an index: the egress may be replaced while the connection lives.
  std::string upstream_name_;
  // Middle-proxy mode only.
  std::shared_ptr<MiddleConn> middle_;
  bool fallback_armed_ = false;  // waiting for the connection: its failure is no close
  std::uint64_t conn_id_ = 0;
  proto::Transport transport_ = proto::Transport::kIntermediate;
  proto::ProxyReqHeader req_;
  proto::Bytes up_pending_;              // decrypted client bytes: a partial packet
  std::deque<proto::Bytes> down_queue_;  // wire bytes for the client
  std::size_t down_bytes_ = 0;
  std::optional<asio::steady_timer> down_timer_;  // wakes pump_middle_to_client
  std::optional<asio::steady_timer> up_timer_;    // wakes pump_client_to_middle (answers read)
};

// Starts a session's coroutine (exceptions logged, never propagated).
// `handoff_listener`, `peer`: the handoff's listener id and client address
// (managed worker); `hello_at_ns`: when the gate had the handshake
// (control::Handoff).
void spawn_session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                   std::optional<std::uint32_t> handoff_listener = {},
                   const ipc::control::PeerAddress& peer = {}, std::uint64_t hello_at_ns = 0);

}  // namespace mtw::worker
