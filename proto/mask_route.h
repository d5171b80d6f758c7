// Where a connection that is not ours goes (docs/masking.md, "Where masked
// connections go"): a pure decision over the bytes already read, the
// listener it came in on and the current secret index. The gate and the
// workers make it when a handshake fails; the supervisor uses the same rule
// (mask_target_for_domain) to know which targets to probe.
//
// The default target is the fake-TLS domain itself on port 443, as the
// client's SNI names it: what a censor who connects to that name sees. Only
// domains some secret names are used as targets: a stranger's SNI is never
// connected to (the proxy would otherwise be an open relay to any host).
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/bytes.h"
#include "proto/dc_table.h"
#include "proto/identify.h"

namespace mtw::proto {

// A TLS hello whose SNI no secret names: masked (to the connection's default
// target) or dropped (closed at once).
enum class UnknownSniAction { kMask, kDrop };

struct MaskRoutes {
  bool domain_default = false;                            // no other target: DOMAIN:default_port
  std::uint16_t default_port = 443;                       // port of the domain default
  std::optional<Endpoint> global;                         // [mask] address
  std::vector<std::pair<std::string, Endpoint>> domains;  // lower-case domain -> target
  std::vector<std::pair<std::uint32_t, Endpoint>> listeners;  // listener id -> target
  UnknownSniAction unknown_sni = UnknownSniAction::kMask;
  friend bool operator==(const MaskRoutes&, const MaskRoutes&) = default;
};

enum class MaskAction {
  kMask,     // connect to `target`, replay the bytes read, splice
  kDrop,     // close the connection (unknown SNI with UnknownSniAction::kDrop)
  kDiscard,  // no target: read and discard until the discard timeout
};

struct MaskRoute {
  MaskAction action = MaskAction::kDiscard;
  Endpoint target;
  // The fake-TLS domain this connection is masked as (its profile's key):
  // the SNI when a secret names it, else the default domain; "" when none.
  std::string domain;
  friend bool operator==(const MaskRoute&, const MaskRoute&) = default;
};

// The SNI of `first_bytes` when they hold a complete ClientHello that parses
// (lower-cased); nullopt otherwise (not TLS, truncated, no SNI extension).
std::optional<std::string> hello_sni(ByteSpan first_bytes);

// The domain of the first fake-TLS secret in `index` (lower-cased), the
// domain a connection without a known SNI is masked as; "" when none.
std::string default_domain(const UserIndex& index);

// The target for a connection masked as fake-TLS domain `domain` ("" = none)
// on `listener` (nullopt when unknown). Precedence: the domain's own route,
// the listener's, the global one, then DOMAIN:default_port when
// domain_default is on. `sni_known` says whether `domain` came from the
// client's SNI: then the domain's route beats the listener's; otherwise the
// listener's comes first (it was set for exactly this port).
std::optional<Endpoint> mask_target(const MaskRoutes& routes, std::string_view domain,
                                    bool sni_known, std::optional<std::uint32_t> listener);

// The whole decision for a connection whose handshake failed after
// `first_bytes` were read.
MaskRoute route_mask(const MaskRoutes& routes, std::optional<std::uint32_t> listener,
                     ByteSpan first_bytes, const UserIndex& index);

// Flag and config values: "DOMAIN=HOST:PORT" (domain lower-cased, 1..253
// bytes, no spaces), "ID=HOST:PORT" (ID a decimal u32), "mask" | "drop".
// kBadInput with a reason otherwise.
[[nodiscard]] Result<std::pair<std::string, Endpoint>> parse_domain_route(std::string_view text);
[[nodiscard]] Result<std::pair<std::uint32_t, Endpoint>> parse_listener_route(
    std::string_view text);
[[nodiscard]] Result<UnknownSniAction> parse_unknown_sni(std::string_view text);
std::string_view unknown_sni_name(UnknownSniAction a) noexcept;
// One log line's worth: "global=HOST:PORT|- domains=N listeners=N
// domain_port=N|off unknown_sni=mask|drop".
std::string describe_routes(const MaskRoutes& routes);

}  // namespace mtw::proto
