#include "gate/gate_options.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "base/number.h"
#include "conn/duration.h"

namespace mtw::gate {
namespace {

using base::Errc;
using base::fail;
using base::parse_u32;
using base::Result;

Result<int> parse_fd(std::string_view v) {
  auto n = parse_u32(v);
  if (!n) return tl::unexpected(n.error());
  if (*n < 3 || *n > 1'000'000) return fail(Errc::kBadInput, "fd out of range: " + std::string(v));
  return static_cast<int>(*n);
}

// FD[:LISTENER_ID[:PROTOCOLS]]
Result<void> add_listener(GateOptions& o, std::string_view v) {
  GateListenerSpec l;
  l.id = static_cast<std::uint32_t>(o.listeners.size());
  auto colon = v.find(':');
  auto fd = parse_fd(v.substr(0, colon));
  if (!fd) return tl::unexpected(fd.error());
  l.fd = *fd;
  if (colon != std::string_view::npos) {
    v = v.substr(colon + 1);
    colon = v.find(':');
    auto id = parse_u32(v.substr(0, colon));
    if (!id) return tl::unexpected(id.error());
    l.id = *id;
    if (colon != std::string_view::npos) {
      auto allowed = proto::parse_allowed_protocols(v.substr(colon + 1));
      if (!allowed) return tl::unexpected(allowed.error());
      l.allowed = *allowed;
    }
  }
  o.listeners.push_back(l);
  return {};
}

Result<void> set_value(GateOptions& o, std::string_view flag, std::string_view v) {
  auto store_u32 = [&](std::uint32_t& field, Result<std::uint32_t> r) -> Result<void> {
    if (!r) return tl::unexpected(r.error());
    field = *r;
    return {};
  };
  if (flag == "--listen-fd") return add_listener(o, v);
  if (flag == "--control-fd") {
    auto fd = parse_fd(v);
    if (!fd) return tl::unexpected(fd.error());
    o.control_fd = *fd;
    return {};
  }
  if (flag == "--mask") {
    auto e = proto::parse_endpoint(v);
    if (!e) return tl::unexpected(e.error());
    o.mask.global = *e;
    return {};
  }
  if (flag == "--mask-domain") {
    auto r = proto::parse_domain_route(v);
    if (!r) return tl::unexpected(r.error());
    o.mask.domains.push_back(*std::move(r));
    return {};
  }
  if (flag == "--mask-listener") {
    auto r = proto::parse_listener_route(v);
    if (!r) return tl::unexpected(r.error());
    o.mask.listeners.push_back(*std::move(r));
    return {};
  }
  if (flag == "--mask-domain-port") {
    auto n = parse_u32(v);
    if (n && *n > 65535) return fail(Errc::kBadInput, "want a port 0 .. 65535");
    if (!n) return tl::unexpected(n.error());
    o.mask.domain_default = *n != 0;
    o.mask.default_port = static_cast<std::uint16_t>(*n);
    return {};
  }
  if (flag == "--unknown-sni") {
    auto a = proto::parse_unknown_sni(v);
    if (!a) return tl::unexpected(a.error());
    o.mask.unknown_sni = *a;
    return {};
  }
  if (flag == "--mask-connect-timeout") {
    auto r = conn::parse_duration_ms(v);
    if (r && *r == 0) return fail(Errc::kBadInput, "must be more than 0");
    return store_u32(o.mask_connect_timeout_ms, r);
  }
  if (flag == "--mask-mirror-after") {
    return store_u32(o.mask_mirror_after_ms, conn::parse_duration_ms(v));
  }
  if (flag == "--replay-fd") {
    auto n = parse_u32(v);
    if (n && (*n < 3 || *n > 65535)) return fail(Errc::kBadInput, "want an fd 3 .. 65535");
    if (!n) return tl::unexpected(n.error());
    o.replay_fd = static_cast<int>(*n);
    return {};
  }
  if (flag == "--mask-discard-timeout") {
    return store_u32(o.mask_discard_timeout_ms, conn::parse_duration_ms(v));
  }
  if (flag == "--handshake-timeout") {
    auto r = conn::parse_duration_ms(v);
    if (r && *r == 0) return fail(Errc::kBadInput, "must be more than 0");
    return store_u32(o.handshake_timeout_ms, r);
  }
  if (flag == "--tls-skew") {
    auto n = parse_u32(v);
    if (!n) return tl::unexpected(n.error());
    o.tls_skew_seconds = *n;
    return {};
  }
  if (flag == "--replay-entries") {
    auto n = parse_u32(v);
    if (n && (*n == 0 || *n > (1u << 30))) return fail(Errc::kBadInput, "want 1 .. 1073741824");
    return store_u32(o.replay_entries, n);
  }
  if (flag == "--max-handshakes") {
    auto n = parse_u32(v);
    if (n && *n == 0) return fail(Errc::kBadInput, "must be at least 1");
    return store_u32(o.max_handshakes, n);
  }
  if (flag == "--per-ip-rate") {
    auto n = parse_u32(v);
    if (n && *n > 1'000'000) return fail(Errc::kBadInput, "want 0 .. 1000000");
    return store_u32(o.per_ip_rate, n);
  }
  if (flag == "--silent-timeout") {
    auto r = conn::parse_duration_ms(v);
    if (r && *r == 0) return fail(Errc::kBadInput, "must be more than 0");
    return store_u32(o.silent_timeout_ms, r);
  }
  if (flag == "--source-handshakes") return store_u32(o.admission.per_source, parse_u32(v));
  if (flag == "--subnet-handshakes") return store_u32(o.admission.per_subnet, parse_u32(v));
  if (flag == "--ipv6-source-prefix" || flag == "--ipv6-subnet-prefix" ||
      flag == "--ipv4-subnet-prefix") {
    const std::uint32_t most = flag == "--ipv4-subnet-prefix" ? 32 : 128;
    auto n = parse_u32(v);
    if (!n) return tl::unexpected(n.error());
    if (*n == 0 || *n > most) return fail(Errc::kBadInput, "want 1 .. " + std::to_string(most));
    auto& field = flag == "--ipv6-source-prefix"   ? o.admission.ipv6_source_prefix
                  : flag == "--ipv6-subnet-prefix" ? o.admission.ipv6_subnet_prefix
                                                   : o.admission.ipv4_subnet_prefix;
    field = static_cast<std::uint8_t>(*n);
    return {};
  }
  if (flag == "--log-level") {
    static const std::set<std::string_view> levels = {"trace", "debug",    "info", "warn",
                                                      "error", "critical", "off"};
    if (v == "warning") v = "warn";
    if (!levels.contains(v)) return fail(Errc::kBadInput, "unknown level " + std::string(v));
    o.log_level = std::string(v);
    return {};
  }
  return fail(Errc::kBadInput, "unknown flag " + std::string(flag));
}

Result<void> check_complete(const GateOptions& o) {
  if (o.control_fd < 0) return fail(Errc::kBadInput, "need --control-fd N");
  if (o.listeners.empty()) return fail(Errc::kBadInput, "need at least one --listen-fd FD");
  std::set<int> fds = {o.control_fd};
  for (const auto& l : o.listeners) {
    if (!fds.insert(l.fd).second) {
      return fail(Errc::kBadInput, "fd " + std::to_string(l.fd) + " given twice");
    }
  }
  return {};
}

}  // namespace

base::Result<GateOptions> parse_gate_options(const std::vector<std::string_view>& args) {
  static const std::set<std::string_view> known = {"--listen-fd",
                                                   "--control-fd",
                                                   "--mask",
                                                   "--mask-domain",
                                                   "--mask-listener",
                                                   "--mask-domain-port",
                                                   "--unknown-sni",
                                                   "--mask-connect-timeout",
                                                   "--mask-discard-timeout",
                                                   "--tls-skew",
                                                   "--handshake-timeout",
                                                   "--replay-entries",
                                                   "--max-handshakes",
                                                   "--per-ip-rate",
                                                   "--log-level",
                                                   "--silent-timeout",
                                                   "--source-handshakes",
                                                   "--subnet-handshakes",
                                                   "--ipv6-source-prefix",
                                                   "--ipv6-subnet-prefix",
                                                   "--ipv4-subnet-prefix",
                                                   "--mask-mirror-after",
                                                   "--replay-fd"};
  GateOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    if (a == "--help" || a == "-h") {
      o.help = true;
      return o;
    }
    if (!known.contains(a)) return fail(Errc::kBadInput, "unknown flag " + std::string(a));
    if (!inline_value) {
      if (i + 1 >= args.size()) return fail(Errc::kBadInput, std::string(a) + ": needs a value");
      value = args[++i];
    }
    if (auto r = set_value(o, a, value); !r) {
      return fail(Errc::kBadInput, std::string(a) + ": " + r.error().context);
    }
  }
  if (auto r = check_complete(o); !r) return tl::unexpected(r.error());
  return o;
}

std::string gate_usage_text() {
  return R"(Usage: mtwarden-gate --control-fd N --listen-fd FD[:ID[:PROTOCOLS]] [options]

The unprivileged front of mtwarden: accepts on inherited listening sockets,
identifies each client's user from its first bytes, hands identified sockets
to the supervisor over the control socket and forwards everything else to
the mask host. Started by the supervisor; see docs/gate.md.

  --control-fd N             inherited AF_UNIX SOCK_SEQPACKET socket to the supervisor
  --listen-fd FD[:ID[:P]]    inherited bound+listening TCP socket; ID (default: its
                             position, 0, 1, ...) is reported with each handoff; P is
                             "all" (default) or a comma list of
                             abridged,intermediate,secure,tls. Repeatable.
  --mask HOST:PORT           where unrecognised connections go (default: none,
                             they are read and discarded until a timeout)
  --mask-domain D=HOST:PORT  the mask of fake-TLS domain D, for hellos naming D
                             (repeatable)
  --mask-listener ID=HOST:PORT
                             the mask of listener ID (repeatable; beats --mask)
  --mask-domain-port N       with no other target: the fake-TLS domain itself on
                             port N, the hello's SNI when a secret names it, else
                             the first fake-TLS secret's domain (0 = off, default)
  --unknown-sni mask|drop    a hello naming a domain no secret has: masked (as a
                             connection without SNI) or closed (mask)
  --mask-connect-timeout D   mask connect deadline (5)
  --mask-discard-timeout D   without a target: discard time, plus up to 100% jitter (30)
  --mask-mirror-after D      a handshake still undecided after D is mirrored to its
                             mask, whose answer or close then ends it (250ms; 0 = off)
  --replay-fd N              inherited read-write file that keeps the replay cache
                             across restarts (default: memory only)
  --tls-skew SECONDS         accepted fake-TLS clock difference (600)
  --handshake-timeout D      time to send a complete handshake before masking (10)
  --replay-entries N         replay cache size, 20 bytes each (1048576)
  --max-handshakes N         concurrent handshakes; when full, the oldest one that has
                             not sent a plausible start is closed for a new one, else
                             the new one is closed at accept (4096)
  --per-ip-rate N            new connections per second from one client IP, burst 2N;
                             more are closed at accept (30; 0 = no limit)
  --silent-timeout D         a connection that sends no byte by then is masked (3)
  --source-handshakes N      unfinished handshakes per source (an IPv4 address or an
                             IPv6 /64); more are closed at accept (128; 0 = no cap)
  --subnet-handshakes N      unfinished handshakes per subnet (IPv4 /24, IPv6 /48)
                             (512; 0 = no cap)
  --ipv6-source-prefix N     IPv6 prefix length of one source (64)
  --ipv6-subnet-prefix N     IPv6 prefix length of one subnet (48)
  --ipv4-subnet-prefix N     IPv4 prefix length of one subnet (24)
  --log-level L              trace, debug, info, warn, error, critical, off (info)
  --help                     this text

Durations: seconds ("10", "1.5") or milliseconds ("250ms").
Exits 0 on SIGTERM/SIGINT or when the control socket closes; 2 on bad flags
or sockets, 1 on other start-up failures.
)";
}

}  // namespace mtw::gate
