// A worker's egress: the upstreams its DC connections go through (direct,
// SOCKS4, SOCKS5) with the credentials already resolved for its user, and
// the health policy. One definition of the text form that the supervisor
// writes (a memfd passed as --egress-file) and the worker reads, so the
// credentials never appear on a command line.
//
// Text form, one record per line, fields separated by single spaces, each
// value percent-encoded (every byte outside [A-Za-z0-9._:~[]-] as %XX):
//   policy health_interval_ms=N health_dc=N failures=N retry_min_ms=N retry_max_ms=N
//          fallback_direct=0|1
//   upstream name=X type=direct|socks4|socks5 [address=HOST:PORT] weight=N
//            [username=X] [password=X]
// Unknown keys and record kinds are errors (kBadInput naming the line), so
// a supervisor and worker of different versions fail loudly, not quietly.
// Thread-safe: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/bytes.h"
#include "proto/dc_table.h"

namespace mtw::proto {

enum class UpstreamType { kDirect, kSocks4, kSocks5 };
std::string_view upstream_type_name(UpstreamType t) noexcept;

struct UpstreamSpec {
  std::string name;  // 1..64 of [A-Za-z0-9_.-], as in the configuration
  UpstreamType type = UpstreamType::kDirect;
  Endpoint address;          // SOCKS only: an IP literal (no name to resolve in the cell)
  std::string username;      // SOCKS5: RFC 1929 username (empty: no auth); SOCKS4: the user id
  std::string password;      // SOCKS5 only
  std::uint32_t weight = 1;  // 1..1000: share of new connections among healthy upstreams
  friend bool operator==(const UpstreamSpec&, const UpstreamSpec&) = default;
};

struct EgressPolicy {
  std::uint32_t health_interval_ms = 30'000;  // active checks; 0 = passive counting only
  std::int16_t health_dc = 2;                 // checks connect through each upstream to this DC
  std::uint32_t failures = 3;                 // consecutive failures that mark an upstream down
  std::uint32_t retry_min_ms = 5'000;         // a down upstream is retried after this, doubling
  std::uint32_t retry_max_ms = 300'000;       // up to this
  bool fallback_direct = false;               // every upstream down: dial direct (else fail)
  friend bool operator==(const EgressPolicy&, const EgressPolicy&) = default;
};

struct EgressSpec {
  EgressPolicy policy;
  std::vector<UpstreamSpec> upstreams;  // empty: every connection goes direct
  friend bool operator==(const EgressSpec&, const EgressSpec&) = default;
};

std::string format_egress(const EgressSpec& spec);
// kBadInput with "line N: reason" (never a credential) on anything malformed:
// unknown keys, missing name/type, a SOCKS upstream without a literal
// address, weight out of 1..1000, a duplicate name.
[[nodiscard]] Result<EgressSpec> parse_egress(std::string_view text);

}  // namespace mtw::proto
