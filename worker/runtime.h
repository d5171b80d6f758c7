// Runtime: the worker's mutable process state shared by all sessions: what
// every connection shares (conn::Runtime: settings, secret index, replay
// cache, counters, buffer pool), plus the options in force (limits change
// on set-limits), the DC table and the middle-proxy pool. Owned by Server;
// every Session borrows it for its whole life. Not thread-safe (one
// io_context thread).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "conn/runtime.h"
#include "proto/dc_table.h"
#include "proto/tls_profile.h"
#include "worker/egress.h"
#include "worker/open_clients.h"
#include "worker/options.h"

namespace mtw::worker {

class MiddlePool;

// The connection settings `o` asks for.
conn::Settings conn_settings(const Options& o);

struct Runtime : conn::Runtime {
  explicit Runtime(Options o) : conn::Runtime(conn_settings(o)), opts(std::move(o)) {}

  // Builds the DC table from opts.dc_overrides.
  [[nodiscard]] base::Result<void> init_dc_table();
  // Replaces the mask profiles with the bundle in `fd` (MaskProfiles);
  // returns how many. On error (unreadable, kTooLarge, a bad bundle) the
  // old set stays.
  [[nodiscard]] base::Result<std::size_t> load_profiles(int fd);
  // The profile a fake-TLS answer for `domain` is shaped after: the mask's
  // measured one, else proto::builtin_profile().
  const proto::TlsProfile& profile_for(std::string_view domain) const;

  // The command line, then set-limits: max_connections, idle and handshake
  // timeouts (changed here and in `settings` together).
  Options opts;
  proto::DcTable dcs;
  // Measured mask profiles, keyed by lower-case domain (MaskProfiles).
  std::shared_ptr<const std::map<std::string, proto::TlsProfile, std::less<>>> profiles;
  // Middle-proxy mode (--ad-tag): the pool every session relays through.
  // Owned by the server; null in direct mode.
  MiddlePool* middle = nullptr;
  // --egress-file: the upstreams DC connections go through and their
  // health. Null: every connection dials the DC directly.
  std::unique_ptr<Egress> egress;
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
  // Called when an egress upstream goes down or comes back up (a managed
  // worker sends an unasked report, so the parent sees a failover at once
  // even for a worker it polls rarely). May be empty.
  std::function<void()> upstream_changed;
  // Open connections by client address, for the report (managed worker).
  OpenClients clients;
  bool draining = false;
};

}  // namespace mtw::worker
