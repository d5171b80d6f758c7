// Parent <-> worker control messages over an AF_UNIX SOCK_SEQPACKET socket
// (one message per datagram). Pure encode/decode; the wire format is in
// docs/worker-control.md. Thread-safe: pure functions over values.
//
// Every datagram: 12-byte header  "MTWC" | version u8 | type u8 | flags u16 (0)
//                                  | body length u32 LE   ‖ body.
// Integers in bodies are little-endian. Handoff, GateTable, GateHandoff,
// GateMask, Lane, GateLane, MaskProfiles and Egress carry exactly one fd in
// SCM_RIGHTS; every other message carries none.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/error.h"
#include "ipc/counters.h"
#include "proto/bytes.h"

namespace mtw::ipc::control {

using base::Result;
using proto::Bytes;
using proto::ByteSpan;

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 12;
// Bytes the gate already read: a whole ClientHello record (16 KiB + 5) plus
// what arrived with it; equals the worker's handshake buffer (kHandshakeBytes).
inline constexpr std::size_t kMaxHandoffData = 17 * 1024;
inline constexpr std::size_t kMaxMessageSize = 64 * 1024;  // whole datagram
inline constexpr std::size_t kMaxReloadSecrets = 1024;
// GateDirect entries per datagram (28 bytes each).
inline constexpr std::size_t kMaxDirectEntries = 512;
// GateLane/GateCredit: no cap on direct handoffs.
inline constexpr std::uint64_t kUnlimited = ~std::uint64_t{0};

enum class MsgType : std::uint8_t {
  kHandoff = 1,        // parent -> worker, + 1 fd
  kReport = 2,         // worker -> parent
  kSetLimits = 3,      // parent -> worker
  kReload = 4,         // parent -> worker
  kReportRequest = 5,  // parent -> worker (or gate): answer with a report now
  kGateTable = 6,      // supervisor -> gate, + 1 fd (memfd with the user table)
  kGateHandoff = 7,    // gate -> supervisor, + 1 fd (identified client socket)
  kGateMask = 8,       // supervisor -> gate, + 1 fd (client socket to mask)
  kLane = 9,           // parent -> worker, + 1 fd (a socket that carries only Handoffs)
  kGateLane = 10,      // supervisor -> gate, + 1 fd (the other end of a worker's lane)
  kGateCredit = 11,    // supervisor -> gate (direct handoffs allowed, or close the lane)
  kGateDirect = 12,    // gate -> supervisor (connections handed over a lane)
  kMaskProfiles = 13,  // supervisor -> worker, + 1 fd (memfd with the mask profiles)
  kMiddle = 14,        // parent -> worker (middle-proxy mode: ad tags and material)
  kEgress = 15,        // parent -> worker, + 1 fd (memfd with the worker's egress)
  kSettings = 16,      // parent -> worker (live settings for new connections)
};

// Whether a message of this type carries exactly one fd (else none).
bool carries_fd(MsgType t) noexcept;

struct PeerAddress {
  std::uint8_t family = 0;  // 0 unknown, 4 IPv4 (first 4 bytes used), 6 IPv6
  std::array<std::byte, 16> addr{};
  std::uint16_t port = 0;
  friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
};

struct Handoff {
  std::uint32_t listener_id = 0;
  PeerAddress peer;
  // CLOCK_MONOTONIC nanoseconds of the read that completed the handshake in
  // the gate (one clock for every process on the host); 0 = not known. A
  // fake-TLS answer is timed from it, so the hop to the worker does not add
  // to the delay the mask profile calls for.
  std::uint64_t hello_at_ns = 0;
  Bytes data;  // bytes already read from the socket, <= kMaxHandoffData
  friend bool operator==(const Handoff&, const Handoff&) = default;
};

// One egress upstream of a worker run with --egress-file (worker/egress.h).
struct UpstreamReport {
  std::string name;  // 1..64 bytes
  bool up = true;
  std::uint64_t connects = 0, failures = 0, bytes_up = 0, bytes_down = 0, marked_down = 0;
  friend bool operator==(const UpstreamReport&, const UpstreamReport&) = default;
};
inline constexpr std::size_t kMaxReportUpstreams = 64;

// A managed worker's clients (docs/worker-control.md, "report"): who has a
// connection open now, and when its latest connection ended. Addresses are
// as handed over (port 0), one entry per distinct address.
struct ClientAddress {
  PeerAddress peer;               // port always 0
  std::uint32_t connections = 0;  // open from this address, >= 1
  friend bool operator==(const ClientAddress&, const ClientAddress&) = default;
};
// 24 bytes each: 1,024 of them fit a datagram beside 64 upstreams.
inline constexpr std::size_t kMaxReportClients = 1024;
inline constexpr std::size_t kClientEntrySize = 24;
struct ClientsReport {
  // Wall clock (Unix seconds) when the worker's latest connection ended; 0
  // when none has ended since it started.
  std::int64_t last_close_unix = 0;
  // Sorted by (family, address); at most kMaxReportClients (a worker with
  // more distinct addresses sends the first ones and sets `truncated`).
  std::vector<ClientAddress> open;
  bool truncated = false;
  friend bool operator==(const ClientsReport&, const ClientsReport&) = default;
};

struct Report {
  std::uint64_t seq = 0;                  // increases by one per report sent
  Counters counters;                      // extra counters from a newer worker are ignored
  std::vector<UpstreamReport> upstreams;  // empty without --egress-file
  std::optional<ClientsReport> clients;   // sent by managed workers; none from the gate
  friend bool operator==(const Report& a, const Report& b) {
    return a.seq == b.seq && a.counters.values == b.counters.values && a.upstreams == b.upstreams &&
           a.clients == b.clients;
  }
};

inline constexpr std::uint32_t kKeep = 0xffffffffu;  // SetLimits: leave unchanged
struct SetLimits {
  std::uint32_t max_connections = kKeep;  // 0 = no cap
  std::uint32_t idle_timeout_ms = kKeep;
  std::uint32_t handshake_timeout_ms = kKeep;
  friend bool operator==(const SetLimits&, const SetLimits&) = default;
};

// Replace the worker's secrets with these (wire bytes: key, dd‖key or
// ee‖key‖domain). An empty list means "re-read --secrets-file".
struct Reload {
  std::vector<Bytes> secrets;
  friend bool operator==(const Reload&, const Reload&) = default;
};

struct ReportRequest {
  friend bool operator==(const ReportRequest&, const ReportRequest&) = default;
};

// The attached fd is a readable file (a memfd) holding the gate's user table
// (docs/gate.md), read from offset 0 to EOF. `generation` is the
// supervisor's number for it, only logged by the gate.
struct GateTable {
  std::uint64_t generation = 0;
  friend bool operator==(const GateTable&, const GateTable&) = default;
};

// An identified client: the user whose secret matched, then exactly the
// handoff body for that user's worker. The attached fd is the client socket.
struct GateHandoff {
  std::uint32_t user = 0;
  Handoff handoff;
  friend bool operator==(const GateHandoff&, const GateHandoff&) = default;
};

// "Mask this": the gate forwards handoff.data and then the attached socket
// to the mask host, as for an unrecognised client.
struct GateMask {
  Handoff handoff;
  friend bool operator==(const GateMask&, const GateMask&) = default;
};

// Direct lanes (docs/worker-control.md, "Lanes"): the gate hands an
// identified client straight to the user's worker, without the supervisor
// in the connection's path, while the supervisor's credit allows it.
//
// Lane: the attached fd is an AF_UNIX SOCK_SEQPACKET socket on which the
// worker accepts Handoff messages (and nothing else) until its peer closes.
struct Lane {
  std::uint32_t lane = 0;  // the supervisor's number for it, only logged
  friend bool operator==(const Lane&, const Lane&) = default;
};

// The attached fd is the gate's end of `user`'s worker lane number `lane`;
// it replaces any lane the gate had for that user. The gate may hand clients
// over it while the number it handed over this lane is below `allow_until`
// (kUnlimited: always).
struct GateLane {
  std::uint32_t user = 0;
  std::uint32_t lane = 0;
  std::uint64_t allow_until = 0;
  friend bool operator==(const GateLane&, const GateLane&) = default;
};

// New allowance for lane `lane` of `user` (ignored when the gate's lane for
// that user has another number); `close`: drop the lane, the user's clients
// take the supervisor's path again.
struct GateCredit {
  std::uint32_t user = 0;
  std::uint32_t lane = 0;
  bool close = false;
  std::uint64_t allow_until = 0;
  friend bool operator==(const GateCredit&, const GateCredit&) = default;
};

// Connections the gate handed over lanes since its last GateDirect, in order;
// sent before any later GateHandoff, so the supervisor counts them first.
struct GateDirectEntry {
  std::uint32_t user = 0;
  std::uint32_t lane = 0;
  PeerAddress peer;
  friend bool operator==(const GateDirectEntry&, const GateDirectEntry&) = default;
};
inline constexpr std::size_t kDirectEntrySize = 28;
struct GateDirect {
  std::vector<GateDirectEntry> entries;  // 1..kMaxDirectEntries
  friend bool operator==(const GateDirect&, const GateDirect&) = default;
};

// The attached fd is a readable file (a memfd) holding the measured mask
// profiles, proto::format_profile_bundle's text (at most
// kMaxProfileBundleBytes), read from offset 0 to EOF; they replace the
// receiver's whole set. `generation` is the supervisor's number for it, only
// logged.
inline constexpr std::size_t kMaxProfileBundleBytes = 16 * 1024 * 1024;
struct MaskProfiles {
  std::uint64_t generation = 0;
  friend bool operator==(const MaskProfiles&, const MaskProfiles&) = default;
};

// Middle-proxy mode for the worker's NEW connections (docs/worker.md,
// "Middle-proxy mode"); connections already relaying keep their path. A
// connection's tag: listener_tags[its handoff's listener id] when that
// entry exists, else default_tag; no tag = direct to the DC. The material
// (protocol.md §8) replaces the worker's when not empty: proxy_secret
// 32..256 bytes, configs as served (v6 may be empty); empty material keeps
// what the worker has.
inline constexpr std::size_t kMaxMiddleListeners = 256;
using AdTag = std::array<std::byte, 16>;
struct Middle {
  std::optional<AdTag> default_tag;
  std::vector<std::optional<AdTag>> listener_tags;  // <= kMaxMiddleListeners
  bool fallback = true;          // middle proxies unreachable: go direct instead of closing
  std::uint64_t generation = 0;  // the material's; only logged
  Bytes proxy_secret;
  std::string config_v4, config_v6;
  friend bool operator==(const Middle&, const Middle&) = default;
};

// The attached fd is a readable file (a memfd) holding the worker's whole
// egress, proto::format_egress's text (at most kMaxEgressBytes; it carries
// the upstreams' credentials, hence a file and not the body), read from
// offset 0 to EOF. It replaces the egress of the worker's NEW connections;
// connections already relaying keep their upstream. `generation` is the
// supervisor's number for it, only logged.
inline constexpr std::size_t kMaxEgressBytes = 1024 * 1024;
struct Egress {
  std::uint64_t generation = 0;
  friend bool operator==(const Egress&, const Egress&) = default;
};

// The worker's live settings (docs/worker-control.md, "settings"): the
// live flags of its command line (worker/options.h, apply_live_options),
// the whole set each time, for NEW connections; open ones keep theirs.
// Each argument is 1..1024 bytes without NUL, at most kMaxSettingsArgs.
inline constexpr std::size_t kMaxSettingsArgs = 2048;
inline constexpr std::size_t kMaxSettingsArgBytes = 1024;
struct Settings {
  std::uint64_t generation = 0;  // the supervisor's number for this set; only logged
  std::vector<std::string> args;
  friend bool operator==(const Settings&, const Settings&) = default;
};

// Append new alternatives at the end and give each its wire type in
// kWireTypes (control_protocol.cpp); a type is never reused.
using Message = std::variant<Handoff, Report, SetLimits, Reload, ReportRequest, GateTable,
                             GateHandoff, GateMask, Lane, GateLane, GateCredit, GateDirect,
                             MaskProfiles, Middle, Egress, Settings>;

// Encoders. Errors: kTooLarge when a handoff's data, a reload, a GateDirect,
// a Report's upstreams or clients,
// a Middle (listeners, or the whole datagram over 64 KiB) or a Settings
// exceeds the caps; kBadInput for a Settings argument that is empty or
// holds a NUL.
[[nodiscard]] Result<Bytes> encode(const Message& m);

// Decodes one datagram that arrived with `fd_count` descriptors attached.
// Errors: kBadInput (bad magic, unknown type, wrong length, wrong fd count,
// flags set), kTooLarge (over the caps). A newer version is kBadInput too:
// the version byte changes only for incompatible layouts.
[[nodiscard]] Result<Message> decode(ByteSpan datagram, std::size_t fd_count);

MsgType type_of(const Message& m) noexcept;

}  // namespace mtw::ipc::control
