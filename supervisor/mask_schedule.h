// The mask profiles the supervisor keeps (docs/masking.md, "Profiles at
// run time"): one per distinct fake-TLS domain, measured by probing that
// domain's mask target (supervisor/mask_probe.h) at start and then every
// interval with jitter, kept on disk so a restart starts from the last good
// one, and a failed probe keeps the last good one. The daemon asks poll()
// on its sweep and pushes the profiles when it says they changed.
//
// Thread-safety: a MaskSchedule is used from one thread (the daemon's). A
// probe blocks for seconds, so it runs on a short-lived thread of its own,
// at most one at a time; its result is picked up by the next poll(). The
// destructor waits up to 2 s for a running probe and then leaves it behind
// (it owns nothing the schedule frees).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/mask_route.h"
#include "proto/random.h"
#include "proto/tls_profile.h"
#include "supervisor/mask_probe.h"

namespace mtw::supervisor {

struct MaskTarget {
  std::string domain;  // lower-case fake-TLS domain (the SNI the probe sends)
  proto::Endpoint endpoint;
  friend bool operator==(const MaskTarget&, const MaskTarget&) = default;
};

// The distinct fake-TLS `domains` (any case) with the target each is masked
// to by `routes` (a hello naming it, no listener); domains without a target
// (masking off) are left out. Sorted by domain.
std::vector<MaskTarget> mask_probe_targets(const proto::MaskRoutes& routes,
                                           const std::vector<std::string>& domains);

// When to probe again after a probe at `now`: interval_s later plus up to
// jitter_s more, drawn from `rnd` (so that many proxies masking as one site
// do not probe it in step).
std::int64_t next_probe_at(std::int64_t now, std::uint32_t interval_s, std::uint32_t jitter_s,
                           proto::RandomSource& rnd);

// "<dir>/<domain>.profile". Domains are host names (secret.h: printable
// host-name characters), so they are file names as they are; anything with
// a '/' or starting with '.' is refused (kBadInput).
[[nodiscard]] base::Result<std::string> profile_path(const std::string& dir,
                                                     std::string_view domain);

class MaskSchedule {
 public:
  // Blocking prober; tests replace it. Default: probe_mask.
  using Prober =
      std::function<base::Result<proto::TlsProfile>(const MaskProbeOptions&, std::int64_t now)>;
  struct Options {
    std::string dir;                    // profiles on disk; created (0700) when missing
    std::uint32_t interval_s = 86'400;  // after a good probe
    std::uint32_t retry_s = 600;        // after a failed one (the last good profile stays)
    std::uint32_t jitter_s = 600;
    MaskProbeOptions probe;  // host, port and sni are set per target
    Prober prober;           // empty: probe_mask
  };

  struct Entry {
    MaskTarget target;
    std::optional<proto::TlsProfile> profile;  // last good one, measured (or loaded from disk)
    bool stored = false;       // `profile` was read from disk and not measured again by this run
    std::int64_t next_at = 0;  // unix seconds; 0 = at the next poll
    std::int64_t last_attempt = 0;
    std::string last_error;  // "" after a good probe
  };

  explicit MaskSchedule(Options o);
  ~MaskSchedule();
  MaskSchedule(const MaskSchedule&) = delete;
  MaskSchedule& operator=(const MaskSchedule&) = delete;

  // Profiles found in the directory for these targets are adopted (their
  // next probe is still due at once); a target that is gone is forgotten
  // (its file stays). Returns the files that could not be read or parsed,
  // one "path: reason" each, for the caller to log.
  std::vector<std::string> set_targets(std::vector<MaskTarget> targets);

  // What poll() did, for the caller to log.
  struct PollResult {
    bool changed = false;    // a profile changed since the last poll: push them
    std::string started;     // domain whose probe started, or ""
    std::string finished;    // domain whose probe finished, or ""
    std::string error;       // that probe's error (the last good profile stays), or ""
    std::string save_error;  // writing the good profile failed (it is used anyway), or ""
  };
  // Collects a finished probe (saving a good profile to disk) and starts the
  // next due one.
  PollResult poll(std::int64_t now);

  // The profile to answer as `domain` with: its last good measurement, else
  // proto::builtin_profile().
  const proto::TlsProfile& profile_for(std::string_view domain) const;
  const std::vector<Entry>& entries() const noexcept { return entries_; }
  bool probing() const noexcept { return running_ != nullptr; }

 private:
  struct Running;
  Options opts_;
  std::vector<Entry> entries_;
  std::shared_ptr<Running> running_;
  std::size_t running_entry_ = 0;  // index into entries_ of the running probe's target
  bool changed_ = false;
};

}  // namespace mtw::supervisor
