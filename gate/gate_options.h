// Command line of mtwarden-gate: a pure parser from argv to GateOptions and
// the --help text (the user table the supervisor sends: ipc/gate_table.h).
// Thread-safe: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "gate/gate_admission.h"
#include "proto/dc_table.h"
#include "proto/identify.h"
#include "proto/mask_route.h"

namespace mtw::gate {

struct GateListenerSpec {
  int fd = -1;                      // inherited, bound and listening
  std::uint32_t id = 0;             // default: position among the --listen-fd flags
  proto::AllowedProtocols allowed;  // default: all
  friend bool operator==(const GateListenerSpec&, const GateListenerSpec&) = default;
};

struct GateOptions {
  int control_fd = -1;
  std::vector<GateListenerSpec> listeners;
  // Where failed handshakes go (--mask, --mask-domain, --mask-listener,
  // --mask-domain-port, --unknown-sni); no target at all: read and discard.
  proto::MaskRoutes mask;
  std::uint32_t mask_connect_timeout_ms = 5'000;
  std::uint32_t mask_discard_timeout_ms = 30'000;  // plus up to 100% random jitter
  std::int64_t tls_skew_seconds = 600;
  std::uint32_t handshake_timeout_ms = 10'000;
  std::uint32_t replay_entries = 1 << 20;  // 20 bytes each
  std::uint32_t max_handshakes = 4096;
  // New connections per second from one client IP (burst: twice that);
  // beyond it they are closed at accept, so one client's reconnect storm
  // cannot crowd out everybody else's handshakes. 0 = no limit.
  std::uint32_t per_ip_rate = 30;
  // A handshake that has sent no byte by then meets its deadline (masked).
  std::uint32_t silent_timeout_ms = 3'000;
  // A handshake not decided by then is mirrored to its mask (0 = off).
  std::uint32_t mask_mirror_after_ms = 250;
  // Inherited fd of the replay cache's file (docs/gate.md, "Replay cache");
  // -1 = kept in memory only.
  int replay_fd = -1;
  // Unfinished handshakes per source and per subnet, and how sources are keyed.
  AdmissionLimits admission;
  std::string log_level = "info";
  bool help = false;
};

// Parses argv[1..]. Errors (kBadInput) name the flag and the problem.
// Needs --control-fd and at least one --listen-fd; fds must be distinct.
[[nodiscard]] base::Result<GateOptions> parse_gate_options(
    const std::vector<std::string_view>& args);

std::string gate_usage_text();

}  // namespace mtw::gate
