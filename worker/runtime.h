// Runtime: the worker's mutable process state shared by all sessions: the
// options in force (limits change on set-limits/SIGHUP), the secret index,
// replay cache, DC table, counters and buffer pool. Owned by Server; every
// Session borrows it for its whole life. Not thread-safe (one io_context thread).
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "proto/dc_table.h"
#include "proto/identify.h"
#include "proto/replay.h"
#include "worker/buffer_pool.h"
#include "worker/counters.h"
#include "worker/options.h"

namespace mtw::worker {

class Session;
class MiddlePool;

// A gate listener: its id (for accounting) and the handshakes it allows.
struct ListenerInfo {
  std::uint32_t id = 0;
  proto::AllowedProtocols allowed;
};

// What a gate session hands over once identify() accepted it. `consumed` is
// every byte read from `fd` so far; it lives only during the call.
struct Identified {
  proto::UserId user = 0;
  std::uint32_t listener_id = 0;
  base::UniqueFd fd;  // the client socket, non-blocking, no longer owned by Asio
  proto::ByteSpan consumed;
};

struct Runtime {
  explicit Runtime(Options o) : opts(std::move(o)) {}

  // Replaces the secret set (never empty); sessions in their handshake keep
  // the index they started with.
  void set_secrets(std::vector<proto::Secret> secrets);
  // Same with user ids (the gate's table); may be empty.
  void set_users(std::vector<proto::UserSecret> users);
  // Builds the DC table from opts.dc_overrides.
  [[nodiscard]] base::Result<void> init_dc_table();
  proto::IdentifyOptions identify_options() const;

  Options opts;
  std::shared_ptr<const proto::UserIndex> index;
  proto::ReplayCache replay{proto::ReplayCacheOptions{1 << 16, 2 * 24 * 3600}};
  proto::DcTable dcs;
  Counters counters;
  BufferPool pool;
  std::unordered_set<Session*> sessions;  // live sessions, for the 1 s sweep
  // Set by the server: called when the first session arrives, so an idle
  // worker's tick (asleep for up to a minute) starts keeping deadlines.
  std::function<void()> on_first_session;
  // The gate sets this: an accepted handshake goes here instead of being
  // answered (no ServerHello, no DC). Unset in the worker.
  std::function<void(Identified)> on_identified;
  // Middle-proxy mode: the pool tagged sessions relay through. Owned by the
  // server; null until a tag and the material arrived (--ad-tag, or the
  // parent's Middle message).
  MiddlePool* middle = nullptr;
  // Which new connections go through it: a handoff's listener id picks its
  // entry of listener_tags when there is one, else default_tag; no tag =
  // direct. fallback: a cluster whose middle proxies fail sends its clients
  // direct instead of closing them.
  struct MiddleRouting {
    std::optional<proto::AdTag> default_tag;
    std::vector<std::optional<proto::AdTag>> listener_tags;
    bool fallback = false;
    std::optional<proto::AdTag> tag_for(std::optional<std::uint32_t> listener) const {
      if (listener && *listener < listener_tags.size()) return listener_tags[*listener];
      return default_tag;
    }
  };
  MiddleRouting middle_routing;
  std::size_t handshaking = 0;  // sessions still reading their handshake (a gauge)
  // Sessions in their handshake that have not yet sent a plausible start
  // (a first byte 0x16, a TLS record, or 64 bytes, an obfuscated2 init),
  // oldest first: the gate evicts from the front when its handshake table is full.
  std::list<Session*> unproven;
  bool draining = false;
  std::uint64_t next_session_id = 1;
};

}  // namespace mtw::worker
