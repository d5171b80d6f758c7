// Parent <-> worker control messages over an AF_UNIX SOCK_SEQPACKET socket
// (one message per datagram). Pure encode/decode; the wire format is in
// docs/worker-control.md. Thread-safe: pure functions over values.
//
// Every datagram: 12-byte header  "MTWC" | version u8 | type u8 | flags u16 (0)
//                                  | body length u32 LE   ‖ body.
// Integers in bodies are little-endian. A handoff carries exactly one fd in
// SCM_RIGHTS; every other message carries none.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "base/error.h"
#include "proto/bytes.h"
#include "worker/counters.h"

namespace mtw::worker::control {

using base::Result;
using proto::Bytes;
using proto::ByteSpan;

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kHeaderSize = 12;
inline constexpr std::size_t kMaxHandoffData = 16 * 1024;  // bytes the gate already read
inline constexpr std::size_t kMaxMessageSize = 64 * 1024;  // whole datagram
inline constexpr std::size_t kMaxReloadSecrets = 1024;

enum class MsgType : std::uint8_t {
  kHandoff = 1,        // parent -> worker, + 1 fd
  kReport = 2,         // worker -> parent
  kSetLimits = 3,      // parent -> worker
  kReload = 4,         // parent -> worker
  kReportRequest = 5,  // parent -> worker: answer with a report now
};

struct PeerAddress {
  std::uint8_t family = 0;  // 0 unknown, 4 IPv4 (first 4 bytes used), 6 IPv6
  std::array<std::byte, 16> addr{};
  std::uint16_t port = 0;
  friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
};

struct Handoff {
  std::uint32_t listener_id = 0;
  PeerAddress peer;
  Bytes data;  // bytes already read from the socket, <= kMaxHandoffData
  friend bool operator==(const Handoff&, const Handoff&) = default;
};

struct Report {
  std::uint64_t seq = 0;  // increases by one per report sent
  Counters counters;      // extra counters from a newer worker are ignored
  friend bool operator==(const Report& a, const Report& b) {
    return a.seq == b.seq && a.counters.values == b.counters.values;
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

using Message = std::variant<Handoff, Report, SetLimits, Reload, ReportRequest>;

// Encoders. Errors: kTooLarge when a handoff's data or a reload exceeds the caps.
[[nodiscard]] Result<Bytes> encode(const Message& m);

// Decodes one datagram that arrived with `fd_count` descriptors attached.
// Errors: kBadInput (bad magic, unknown type, wrong length, wrong fd count,
// flags set), kTooLarge (over the caps). A newer version is kBadInput too:
// the version byte changes only for incompatible layouts.
[[nodiscard]] Result<Message> decode(ByteSpan datagram, std::size_t fd_count);

MsgType type_of(const Message& m) noexcept;

}  // namespace mtw::worker::control
