// The verdict rules of `mtwarden doctor` (docs/operations.md, "mtwarden
// doctor"): each takes what a probe saw (plain values, gathered by
// doctor/net.h and doctor/tls_visit.h) and returns the Check with its
// verdict, reason and fix. The thresholds live here and nowhere else.
// Pure: no I/O, no clock (callers pass `now`). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "doctor/verdict.h"
#include "proto/dc_table.h"
#include "proto/tls_profile.h"

namespace mtw::doctor {

// A mask handshake slower than this (median) makes masked connections
// visibly slower than a server in this place would be.
inline constexpr std::uint32_t kLatencyWarnMs = 100;
// A clock this close to the reference passes (HTTP Date has a resolution of
// one second; add the measurement's own uncertainty on top).
inline constexpr double kClockPassS = 10.0;
// A certificate this close to its end is worth a warning.
inline constexpr std::int64_t kCertWarnDays = 14;

// mask.tls: one browser-like TLS 1.3 handshake to the mask target.
Check judge_mask_tls(const std::string& domain, const std::string& target,
                     const base::Result<proto::FlightSample>& seen);

// What a verifying TLS connection to the mask learned about its certificate.
struct CertFacts {
  bool connected = false;  // a TLS 1.3 handshake completed
  std::string error;       // why not
  bool name_matches = false;
  bool chain_trusted = false;
  std::string verify_error;                    // OpenSSL's text when the chain is not trusted
  std::int64_t not_before = 0, not_after = 0;  // unix seconds
  std::vector<std::string> names;              // subjectAltName DNS names (or the CN)
};
// mask.cert: the certificate is valid for the SNI (name, dates, chain).
Check judge_certificate(const std::string& domain, const CertFacts& c, std::int64_t now);

// The profile the daemon keeps for the domain (state_dir/mask-profiles).
struct StoredProfile {
  bool present = false;
  std::string error;  // a file that does not parse or names another domain
  proto::TlsProfile profile;
};
// mask.profile: the mask's first flight as measured now (single or
// multi-record, its size), against what the daemon answers with.
Check judge_profile(const std::string& domain, const base::Result<proto::TlsProfile>& measured,
                    const StoredProfile& stored, bool probing_enabled, std::int64_t now);

// mask.latency: the handshake latency from this host.
Check judge_latency(const std::string& domain, const proto::LatencySummary& latency);

// dns: the SNI's A/AAAA records against this host's public address(es).
Check judge_dns(const std::string& domain, const base::Result<std::vector<std::string>>& resolved,
                const std::vector<std::string>& public_addresses);

// A reading of the offset of this host's clock against a reference.
struct ClockReading {
  bool have = false;
  std::string source;               // "ntp pool.ntp.org:123", "HTTP Date of www.example.com"
  double offset_s = 0;              // reference - ours; positive: our clock is behind
  double uncertainty_s = 0;         // the reading's own error bound
  std::vector<std::string> errors;  // sources tried that gave nothing
};
// clock: against the window of accepted fake-TLS timestamps (+-window_s).
Check judge_clock(const ClockReading& r, std::int64_t window_s);

struct ListenerFacts {
  proto::Endpoint bind;
  bool tls = false;        // accepts fake TLS
  bool other = false;      // accepts classic or dd too (waits for 64 bytes)
  bool accepting = false;  // a connect to it succeeded now
  std::string probed;      // the address connected to
  std::string error;       // the connect's error
};
// listener: a fake-TLS listener on port 443 that accepts connections now.
Check judge_listener(const std::vector<ListenerFacts>& listeners);

// mask.loop: the mask target is not this proxy. `local` holds this host's
// addresses (every interface, loopback included); `listeners` the binds.
Check judge_loop(const std::string& domain, const proto::Endpoint& target,
                 const base::Result<std::vector<std::string>>& target_addresses,
                 const std::set<std::string>& local, const std::vector<proto::Endpoint>& listeners);

struct ConnectResult {
  std::string what;  // "149.154.167.51:443", or "dc 2 149.154.167.51:443"
  bool ok = false;
  std::string error;
  std::uint32_t ms = 0;
};
// dc: one DC reachable directly from this host (any of its addresses).
// `direct_used`: some user dials directly (no upstream, or all_down = direct).
Check judge_dc(int dc, const std::vector<ConnectResult>& tries, bool direct_used);
// upstream: every DC reached through one upstream (a SOCKS CONNECT each).
// `skip_reason` non-empty: not tried (why).
Check judge_upstream(const std::string& name, const std::string& type,
                     const std::vector<ConnectResult>& per_dc, const std::string& skip_reason);

}  // namespace mtw::doctor
