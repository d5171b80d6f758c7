// Command line of mtwarden-gate: a pure parser from argv to GateOptions and
// the --help text; and the user table the supervisor sends (GateTable): a
// pure text parser plus the reader for the attached memfd.
// Thread-safe: plain values and pure functions (read_gate_table only reads its fd).
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
#include "worker/gate_admission.h"

namespace mtw::worker {

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

// The GateTable content: "USER_ID SECRET_HEX" per line (any form
// proto::parse_secret accepts), '#' comment lines and blank lines ignored; a
// user may have several lines. Empty is valid. Errors carry the line number,
// never the secret.
[[nodiscard]] base::Result<std::vector<proto::UserSecret>> parse_gate_table(std::string_view text);

inline constexpr std::size_t kMaxGateTableBytes = 64 * 1024 * 1024;

// Reads `fd` from offset 0 to EOF with pread (the file position is ignored
// and left alone) and parses it. Errors: kSyscall, kTooLarge (over
// kMaxGateTableBytes), or parse_gate_table's.
[[nodiscard]] base::Result<std::vector<proto::UserSecret>> read_gate_table(int fd);

}  // namespace mtw::worker
