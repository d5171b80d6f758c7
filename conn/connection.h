// Connection: one client socket from accept (or handoff) to close, the part
// both child programs share: reading the handshake (read_handshake, one
// function: identified / mask / drop), masking (the failed handshake's bytes
// replayed to the mask host, then both directions spliced; without a mask
// host, read and discarded until a jittered timeout), and the deadlines the
// owner's tick enforces. What follows an identified handshake is the
// program's: the worker relays (worker::Session), the gate hands the socket
// off (gate::GateConn). Owned by shared_ptr held by its coroutines;
// registers itself in Runtime::connections for the tick. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "conn/buffer_pool.h"
#include "conn/names.h"
#include "conn/runtime.h"
#include "proto/bytes.h"
#include "proto/identify.h"

namespace mtw::conn {

// How read_handshake ended.
struct HandshakeOutcome {
  enum class End {
    kIdentified,  // `id` holds the user, the secret and what was parsed
    kMask,        // not ours (or too late): mask buf[0, filled)
    kDrop,        // reset, or closed before sending anything: just close
  };
  End end = End::kDrop;
  proto::Identification id;
  // The index `id` refers to (a reload during the handshake does not change it).
  std::shared_ptr<const proto::UserIndex> index;
  std::size_t filled = 0;   // bytes of the handshake in the buffer
  bool client_eof = false;  // kMask: the client has closed its side already
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs the whole connection; never throws for I/O errors.
  awaitable<void> run();
  // Called by the owner's tick (every 250 ms at most 1 s): enforces the
  // handshake, connect, idle and discard deadlines.
  void on_tick(Clock::time_point now);
  // Closes both sockets; pending operations finish with errors.
  virtual void close() noexcept;
  asio::any_io_executor executor() { return client_.get_executor(); }
  // The handshake's bytes were read by the gate at `ns` (CLOCK_MONOTONIC,
  // a handoff's hello_at_ns); ignored when 0, in the future or older than
  // the handshake timeout (not the same clock after all, or a stale value).
  void set_hello_at(std::uint64_t ns) noexcept;

 protected:
  enum class Phase { kHandshake, kConnecting, kRelay, kMask, kDiscard, kClosed };

  // `initial`: bytes already read from the socket by someone else (a
  // handoff), the start of the handshake or of what is masked.
  Connection(Runtime& rt, tcp::socket client, proto::Bytes initial);

  // What run() does once the socket is set up and buf[0, filled) holds the
  // initial bytes.
  virtual awaitable<void> serve(BufferLease& buf, std::size_t filled) = 0;

  // Reads the client's handshake into buf (up to kHandshakeBytes) until
  // proto::identify decides or the deadline (handshake_timeout_ms, earlier
  // for a silent client) passes. Counts the failure counters, never masks
  // or closes: the caller does what the outcome says. `allowed` replaces
  // the runtime's protocols (a gate listener's).
  awaitable<HandshakeOutcome> read_handshake(BufferLease& buf, std::size_t filled,
                                             const proto::AllowedProtocols& allowed);
  // Hooks for read_handshake: a plausible start arrived (a first byte 0x16,
  // or a whole obfuscated2 init's worth), and the handshake ended (every
  // outcome; idempotent). Both default to nothing.
  virtual void on_plausible_start() noexcept {}
  virtual void on_handshake_end() noexcept {}
  // The listener the client came in on, for its mask route (the gate's);
  // nullopt when unknown (a worker's handoff).
  virtual std::optional<std::uint32_t> listener_id() const noexcept { return std::nullopt; }

  // Masking: replays buf[0, filled) to the mask host and splices until
  // both sides closed; no mask host (or unreachable): discard(). A
  // connection mirrored during its handshake (Settings::mask_mirror_after_ms)
  // keeps that mask connection when the route still leads there and sends
  // only the bytes the mask has not seen yet.
  awaitable<void> mask(BufferLease& buf, std::size_t filled, bool client_eof);
  // The mask is connected (upstream_): sends buf[from, filled), then
  // splices both ways.
  awaitable<void> splice_to_mask(BufferLease& buf, std::size_t from, std::size_t filled,
                                 bool client_eof);
  // Reads and drops the client's bytes until a jittered deadline, then closes.
  awaitable<void> discard(BufferLease& buf);
  // Copies `from` to `to` until EOF (passed on as a FIN) or an error (closes both).
  awaitable<void> splice(tcp::socket& from, tcp::socket& to, Counter counter);
  // Gives `buf` back, waits until `sock` is readable, borrows a buffer again.
  // False when the wait failed (socket closed).
  awaitable<bool> wait_readable(tcp::socket& sock, BufferLease& buf);
  void count_failure(Counter c);
  // The mirror (Settings::mask_mirror_after_ms): connects to the route of
  // the bytes so far and sends them; on any failure the connection goes on
  // without one (mask() connects again if the handshake fails).
  awaitable<void> start_mirror(BufferLease& buf, std::size_t filled);
  // Waits until the mirror's mask sends or closes, then ends the handshake
  // read (the connection becomes the mask's).
  awaitable<void> watch_mirror();
  // Closes the mirror's mask connection (an identified client).
  void stop_mirror() noexcept;
  // upstream_ is this host at the port the client came in on (a loop).
  bool upstream_is_loop();
  // A write to the mask failed with a reset (or EPIPE after one): marks it,
  // makes the client's close an RST, and says whether that was the cause.
  bool mask_refused(const error_code& ec);
  // Client bytes the mask never read: a write to it in flight, unread in
  // the client's socket, or answered with a reset after the mask's FIN.
  bool client_bytes_pending();

  Runtime& rt_;
  tcp::socket client_;
  tcp::socket upstream_;  // the DC, or the mask host
  Phase phase_ = Phase::kHandshake;
  Clock::time_point deadline_;
  Clock::time_point last_activity_;
  bool deadline_hit_ = false;
  std::uint64_t id_;
  std::uint64_t bytes_up_ = 0, bytes_down_ = 0;
  // When the handshake's bytes were all here: the last read_handshake read
  // that added bytes, else the start (or the gate's read, set_hello_at). A
  // fake-TLS answer is timed from it, as the mask's think time would be.
  Clock::time_point hello_at_;

  // hello_at_ as a handoff carries it.
  std::uint64_t hello_at_ns() const noexcept;

 private:
  proto::Bytes initial_;
  bool silent_ = true;  // in the handshake, not one byte received yet
  Clock::time_point silent_deadline_;
  // The mirror: due (the tick says so), running (upstream_ is the mask at
  // mirror_target_, which has seen buf[0, mirrored_bytes_)), and whether
  // the mask has answered or closed during the handshake.
  Clock::time_point mirror_at_;
  bool mirror_due_ = false;
  bool mirror_tried_ = false;
  bool mirroring_ = false;
  bool mask_spoke_ = false;
  std::size_t mirrored_bytes_ = 0;
  proto::Endpoint mirror_target_;
  // Masking: the mask reset the connection (mask_refused), and the
  // mask-to-client direction has passed the mask's FIN on.
  bool mask_reset_ = false;
  bool mask_finished_ = false;
  int writes_to_mask_ = 0;
};

// Starts `c`'s run() on its executor (exceptions logged, never propagated).
void spawn(std::shared_ptr<Connection> c);

}  // namespace mtw::conn
