// Runtime: the worker's mutable process state shared by all sessions: the
// options in force (limits change on set-limits/SIGHUP), the secret index,
// replay cache, DC table, counters and buffer pool. Owned by Server; every
// Session borrows it for its whole life. Not thread-safe (one io_context thread).
#pragma once

#include <memory>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/identify.h"
#include "proto/replay.h"
#include "worker/buffer_pool.h"
#include "worker/counters.h"
#include "worker/options.h"

namespace mtw::worker {

class Session;

struct Runtime {
  explicit Runtime(Options o) : opts(std::move(o)) {}

  // Replaces the secret set (never empty); sessions in their handshake keep
  // the index they started with.
  void set_secrets(std::vector<proto::Secret> secrets);
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
  bool draining = false;
  std::uint64_t next_session_id = 1;
};

}  // namespace mtw::worker
