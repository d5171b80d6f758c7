// Session: one client connection from accept (or handoff) to close: the
// handshake (proto::identify), the DC connection and the relay in both
// directions, or masking when the handshake fails. Owned by shared_ptr held
// by its coroutines; registers itself in Runtime::sessions so the 1 s sweep
// can enforce deadlines. Private to worker/ (includes Asio).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>

#include "proto/aes_ctr.h"
#include "proto/identify.h"
#include "worker/asio.h"
#include "worker/buffer_pool.h"
#include "worker/gate_admission.h"
#include "worker/middle.h"
#include "worker/runtime.h"

namespace mtw::worker {

class Session : public std::enable_shared_from_this<Session>, public MiddleClient {
 public:
  // `initial` holds bytes already read from the socket (managed mode handoff).
  // `listener` (gate only; must outlive the session): its id goes to
  // on_identified and its protocols replace rt.opts.allowed. `mask_only`:
  // skip the handshake and mask `initial` + the rest of the socket.
  // `ticket` (gate): the source's admission slot, given back when the
  // handshake ends. `handoff_listener` (managed worker): the handoff's
  // listener id, which picks the connection's ad tag (Runtime::MiddleRouting).
  Session(Runtime& rt, tcp::socket client, proto::Bytes initial,
          const ListenerInfo* listener = nullptr, bool mask_only = false,
          AdmissionTicket ticket = {}, std::optional<std::uint32_t> handoff_listener = {});
  ~Session();
  Session(const Session&) = delete;

  // Runs the whole connection; never throws for I/O errors.
  awaitable<void> run();
  // Called once a second: enforces the handshake, connect, idle and discard deadlines.
  void on_tick(Clock::time_point now);
  // Closes both sockets; pending operations finish with errors.
  void close() noexcept;
  // Gate, handshake table full: closes this unproven handshake (not masked)
  // and frees its slot at once.
  void evict() noexcept;
  bool relaying() const noexcept { return phase_ == Phase::kRelay; }
  asio::any_io_executor client_executor() { return client_.get_executor(); }

  // MiddleClient (middle-proxy mode, middle_relay.cpp).
  void on_middle_answer(proto::ByteSpan packet) override;
  void on_middle_quick_ack(std::uint32_t token) override;
  void on_middle_closed() override;

 private:
  enum class Phase { kHandshake, kConnecting, kRelay, kMask, kDiscard, kClosed };
  struct Accepted;

  awaitable<void> handshake(BufferLease& buf, std::size_t filled);
  // Gate: gives the socket and buf[0, filled) to rt_.on_identified.
  void hand_off(proto::UserId user, BufferLease& buf, std::size_t filled);
  // Ends this session's share of rt_.handshaking and its admission slot (idempotent).
  void leave_handshake() noexcept;
  void leave_unproven() noexcept;
  awaitable<void> finish_tls(BufferLease& buf, std::size_t filled, proto::Identification& id,
                             const proto::Secret& secret);
  awaitable<void> start_relay(BufferLease& buf, const proto::ClientInit& init,
                              std::size_t data_begin, std::size_t data_end, std::size_t tail_end);
  awaitable<bool> connect_dc(std::int16_t dc);
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
  // Gives `buf` back, waits until `sock` is readable, borrows a buffer again.
  // False when the wait failed (socket closed).
  awaitable<bool> wait_readable(tcp::socket& sock, BufferLease& buf);
  // DC->client: re-encrypts n bytes read into `buf` (fast mode off) and, for
  // fake TLS, fills in the record headers in front of each slot. Returns the
  // bytes to write from buf[0].
  std::size_t prepare_down(std::byte* buf, std::size_t n);
  // Masking (mask.cpp): replays buf[0, filled) to the mask host and splices.
  awaitable<void> mask(BufferLease& buf, std::size_t filled, bool client_eof);
  awaitable<void> discard(BufferLease& buf);
  awaitable<void> splice(tcp::socket& from, tcp::socket& to, Counter counter);
  void count_failure(Counter c);
  void log_relay_error(const char* what);
  std::size_t unwrap_tls(std::byte* buf, std::size_t from, std::size_t end, std::size_t& tail_begin,
                         bool& bad);

  Runtime& rt_;
  tcp::socket client_;
  tcp::socket upstream_;  // the DC, or the mask host
  proto::Bytes initial_;
  const ListenerInfo* listener_;
  std::optional<std::uint32_t> handoff_listener_;
  bool mask_only_;
  bool in_handshake_;
  bool in_unproven_ = false;
  bool silent_ = false;  // in the handshake, not one byte received yet
  std::list<Session*>::iterator unproven_it_;
  AdmissionTicket ticket_;
  Clock::time_point silent_deadline_;
  Phase phase_ = Phase::kHandshake;
  Clock::time_point deadline_;
  Clock::time_point last_activity_;
  bool deadline_hit_ = false;
  bool fake_tls_ = false;
  bool fast_ = false;
  proto::AesCtr client_dec_, client_enc_, dc_enc_, dc_dec_;
  std::uint64_t id_;
  std::uint64_t bytes_up_ = 0, bytes_down_ = 0;
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
};

// Starts a session coroutine on `ex` (exceptions logged, never propagated).
void spawn_session(Runtime& rt, tcp::socket client, proto::Bytes initial,
                   const ListenerInfo* listener = nullptr, bool mask_only = false,
                   AdmissionTicket ticket = {}, std::optional<std::uint32_t> handoff_listener = {});

}  // namespace mtw::worker
