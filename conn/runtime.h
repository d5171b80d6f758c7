// conn::Runtime: the state every client connection of a child program
// (mtwarden-worker or mtwarden-gate) shares: the connection settings in
// force, the user index and replay cache the handshake reads, the counters,
// the buffer pool, and the live connections for the owner's tick. Each
// program extends it (worker::Runtime, gate::Runtime). Owned by the
// program's server; every Connection borrows it for its whole life.
// Not thread-safe (one io_context thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "conn/buffer_pool.h"
#include "conn/names.h"
#include "ipc/name_cache.h"
#include "proto/dc_table.h"
#include "proto/identify.h"
#include "proto/mask_route.h"
#include "proto/replay.h"

namespace mtw::conn {

class Connection;

// What a connection's handshake, masking and idle deadline follow.
struct Settings {
  proto::AllowedProtocols allowed;  // a gate listener may narrow it
  std::int64_t tls_skew_seconds = 600;
  std::uint32_t handshake_timeout_ms = 10'000;
  // A handshake that has not sent one byte by then meets its deadline early
  // (0 = only handshake_timeout_ms applies).
  std::uint32_t silent_timeout_ms = 0;
  std::uint32_t idle_timeout_ms = 300'000;    // relaying or masking, no byte either way (0: none)
  std::uint32_t connect_timeout_ms = 10'000;  // the worker's DCs
  // Where failed handshakes go (proto::route_mask); no target: read and discard.
  proto::MaskRoutes mask;
  std::uint32_t mask_connect_timeout_ms = 5'000;
  std::uint32_t mask_discard_timeout_ms = 30'000;  // plus up to 100% random jitter
  // A connection still in its handshake this long after it arrived is
  // mirrored to its mask target (docs/masking.md, "Idle and stalled
  // connections"): the bytes so far and every later one go to the mask
  // too, and once the mask answers or closes, the connection is the mask's.
  // 0 = off (the mask is contacted only when the handshake fails).
  std::uint32_t mask_mirror_after_ms = 0;
};

struct Runtime {
  explicit Runtime(Settings s) : settings(std::move(s)) {}
  Runtime(const Runtime&) = delete;

  // Replaces the secret set (user 0); connections in their handshake keep
  // the index they started with.
  void set_secrets(std::vector<proto::Secret> secrets);
  // Same with user ids (the gate's table); may be empty.
  void set_users(std::vector<proto::UserSecret> users);
  // The handshake's options now (the clock is read on each call).
  proto::IdentifyOptions identify_options() const;

  Settings settings;
  std::shared_ptr<const proto::UserIndex> index;
  proto::ReplayCache replay{proto::ReplayCacheOptions{1 << 16, 2 * 24 * 3600}};
  Counters counters;
  BufferPool pool;
  ipc::NameCache mask_names;                    // the mask targets' addresses (ipc/name_cache.h)
  std::unordered_set<Connection*> connections;  // live ones, for the owner's tick
  // Called when the first connection arrives, so an idle program's tick
  // (asleep for up to a minute) starts keeping deadlines.
  std::function<void()> on_first_connection;
  std::uint64_t next_connection_id = 1;
};

}  // namespace mtw::conn
