// Command line of mtwarden-worker: a pure parser from argv to Options and
// the --help text; no I/O (the secrets file: ipc/secrets_file.h).
// Thread-safe: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/identify.h"
#include "proto/mask_route.h"
#include "proto/rpc.h"
#include "proto/secret.h"

namespace mtw::worker {

using base::Result;

struct Options {
  std::vector<proto::Endpoint> binds;
  std::vector<proto::Secret> secrets;     // --secret, in order
  std::string secrets_file;               // empty: none
  std::string egress_file;                // upstreams (proto/egress.h text); empty: direct
  std::vector<std::string> dc_overrides;  // "N=HOST:PORT", validated
  // Where failed handshakes go (--mask, --mask-domain, --mask-domain-port,
  // --unknown-sni); no target at all: read and discard.
  proto::MaskRoutes mask;
  std::uint32_t mask_connect_timeout_ms = 5'000;
  proto::AllowedProtocols allowed;
  std::int64_t tls_skew_seconds = 600;
  std::string public_host;  // empty: the bind address
  int control_fd = -1;      // -1: standalone
  // Managed mode: how long the worker outlives its controller (the control
  // socket's EOF) waiting for a new one; 0 = drain at once, as on SIGTERM
  // (docs/worker-control.md, "Surviving the supervisor").
  std::uint32_t orphan_timeout_ms = 0;
  // A listening AF_UNIX SOCK_SEQPACKET socket a new controller connects to
  // while the worker is orphaned; -1: none (it can only time out).
  int reattach_fd = -1;
  bool fast_mode = true;
  bool prefer_ipv6 = false;
  std::uint32_t handshake_timeout_ms = 10'000;
  std::uint32_t idle_timeout_ms = 300'000;
  std::uint32_t dc_connect_timeout_ms = 10'000;
  std::uint32_t drain_timeout_ms = 30'000;
  std::uint32_t mask_discard_timeout_ms = 30'000;  // plus up to 100% random jitter
  std::uint32_t mask_mirror_after_ms = 250;        // conn::Settings::mask_mirror_after_ms
  // The fake-TLS answer in segments of at most this many bytes (docs/masking.md,
  // "Small segments for the answer"); 0 = off, one write as the mask does.
  std::uint32_t flight_segment_bytes = 0;
  std::uint32_t max_connections = 0;         // 0: unlimited
  std::uint32_t replay_entries = 1u << 16;   // replay cache size (20 B each, allocated at start)
  std::uint32_t stats_interval_ms = 60'000;  // 0: off
  std::string stats_file;                    // empty: off
  std::string log_level = "info";
  // Middle-proxy mode (docs/worker.md): with an ad tag every client goes
  // through Telegram's middle proxies; the two files are read at start.
  std::optional<proto::AdTag> ad_tag;
  std::string proxy_secret_file;          // binary proxy secret (getProxySecret)
  std::string proxy_config_file;          // proxy-multi.conf (getProxyConfig)
  std::string proxy_config_v6_file;       // getProxyConfigV6; used first with prefer_ipv6
  std::uint32_t middle_pool = 2;          // connections per cluster, 1..64
  std::string public_ip;                  // empty: the connection's local address
  std::uint32_t middle_stall_ms = 5'000;  // a client waits this long without a byte: replace
  bool help = false;
  bool confinement_check = false;  // --confinement-check: probe the seccomp filter and exit
};

// Parses argv[1..] (without the program name). Errors (kBadInput) name the
// flag and the problem but never echo a secret. `help` set: print usage.
// Needs at least one --bind or --control-fd, and one secret unless
// --secrets-file is given (the file is read later, by the caller). --ad-tag
// needs --proxy-secret and --proxy-config (read later too).
[[nodiscard]] Result<Options> parse_options(const std::vector<std::string_view>& args);

// A running worker's new settings (the control `settings` message): `args`
// holds live flags only (is_live_flag) and states the whole live set, so
// every live field of `current` first goes back to its default (no --dc
// means the built-in DC table, no --prefer-ipv6 means IPv4 first). The
// rest of `current` is kept. kBadInput names the flag; `current` is then
// unchanged at the caller.
[[nodiscard]] Result<Options> apply_live_options(Options current,
                                                 const std::vector<std::string_view>& args);
// The flags a settings message may carry: the DC table, --prefer-ipv6,
// --fast-mode, the connection timeouts and the mask routes.
bool is_live_flag(std::string_view flag);

// The --help text.
std::string usage_text();

}  // namespace mtw::worker
