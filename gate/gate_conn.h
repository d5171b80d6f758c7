// GateConn: one client connection of the gate. The shared handshake reader
// (conn::Connection::read_handshake) identifies the user against the table
// the supervisor sent; an identified socket is handed off with the bytes
// already read (gate::Runtime::on_identified), anything else is masked,
// exactly as the worker masks. Sockets the supervisor sends back (GateMask)
// are masked without a handshake. Owned by shared_ptr held by its
// coroutines. Private to gate/ (includes Asio). Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>

#include "base/unique_fd.h"
#include "conn/connection.h"
#include "conn/runtime.h"
#include "gate/gate_admission.h"
#include "gate/names.h"
#include "proto/bytes.h"
#include "proto/identify.h"

namespace mtw::gate {

class GateConn;

// A listener: its id (reported with each handoff) and the handshakes it allows.
struct ListenerInfo {
  std::uint32_t id = 0;
  proto::AllowedProtocols allowed;
};

// What a GateConn hands over once its handshake identified the user.
// `consumed` is every byte read from `fd` so far; it lives only during the call.
struct Identified {
  proto::UserId user = 0;
  std::uint32_t listener_id = 0;
  base::UniqueFd fd;  // the client socket, non-blocking, no longer owned by Asio
  proto::ByteSpan consumed;
  std::uint64_t hello_at_ns = 0;  // control::Handoff::hello_at_ns
};

// What the gate's connections share: conn::Runtime plus the handshake table
// the gate bounds (--max-handshakes) and where identified sockets go.
struct Runtime : conn::Runtime {
  using conn::Runtime::Runtime;

  std::size_t handshaking = 0;  // connections still reading their handshake (a gauge)
  // Handshakes that have not yet sent a plausible start (a first byte 0x16,
  // or 64 bytes, an obfuscated2 init), oldest first: the gate evicts from
  // the front when its handshake table is full.
  std::list<GateConn*> unproven;
  std::function<void(Identified)> on_identified;
};

class GateConn final : public conn::Connection {
 public:
  // A client accepted on `listener` (which must outlive it). `ticket`: its
  // source's admission slot, given back when the handshake ends.
  GateConn(Runtime& rt, tcp::socket client, const ListenerInfo& listener, AdmissionTicket ticket);
  // A socket the supervisor sent back (GateMask): `initial` and the rest of
  // the socket are masked, no handshake.
  GateConn(Runtime& rt, tcp::socket client, proto::Bytes initial);
  ~GateConn() override;

  // Handshake table full: closes this unproven handshake (not masked) and
  // frees its slot at once.
  void evict() noexcept;

 private:
  awaitable<void> serve(conn::BufferLease& buf, std::size_t filled) override;
  void on_plausible_start() noexcept override;
  void on_handshake_end() noexcept override;
  std::optional<std::uint32_t> listener_id() const noexcept override {
    return listener_ != nullptr ? std::optional(listener_->id) : std::nullopt;
  }
  // Gives the socket and buf[0, filled) to rt_.on_identified.
  void hand_off(proto::UserId user, conn::BufferLease& buf, std::size_t filled);

  // The gate's view of the runtime conn::Connection holds as well.
  Runtime& rt_;
  const ListenerInfo* listener_;  // null: mask only
  AdmissionTicket ticket_;
  bool in_handshake_;
  bool in_unproven_ = false;
  std::list<GateConn*>::iterator unproven_it_;
};

}  // namespace mtw::gate
