// Runtime: the worker's mutable process state shared by all sessions: what
// every connection shares (conn::Runtime: settings, secret index, replay
// cache, counters, buffer pool), plus the options in force (limits change
// on set-limits), the DC table and the middle-proxy pool. Owned by Server;
// every Session borrows it for its whole life. Not thread-safe (one
// io_context thread).
#pragma once

#include "base/error.h"
#include "conn/runtime.h"
#include "proto/dc_table.h"
#include "worker/options.h"

namespace mtw::worker {

class MiddlePool;

// The connection settings `o` asks for.
conn::Settings conn_settings(const Options& o);

struct Runtime : conn::Runtime {
  explicit Runtime(Options o) : conn::Runtime(conn_settings(o)), opts(std::move(o)) {}

  // Builds the DC table from opts.dc_overrides.
  [[nodiscard]] base::Result<void> init_dc_table();

  // The command line, then set-limits: max_connections, idle and handshake
  // timeouts (changed here and in `settings` together).
  Options opts;
  proto::DcTable dcs;
  // Middle-proxy mode (--ad-tag): the pool every session relays through.
  // Owned by the server; null in direct mode.
  MiddlePool* middle = nullptr;
  bool draining = false;
};

}  // namespace mtw::worker
