#include "worker/options.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <functional>
#include <map>

#include "base/number.h"
#include "conn/duration.h"

namespace mtw::worker {
namespace {

using conn::parse_duration_ms;

using base::Errc;
using base::fail;
using base::parse_u32;

Result<std::uint32_t> parse_replay_entries(std::string_view v) {
  auto n = parse_u32(v);
  if (n && (*n < 16 || *n > (1u << 30))) return fail(Errc::kBadInput, "want 16 .. 1073741824");
  return n;
}

// Below 64 the answer's ServerHello alone takes two segments more than it
// needs to defeat a first-packet match; above 1400 no path MTU is smaller.
Result<std::uint32_t> parse_flight_segment(std::string_view v) {
  auto n = parse_u32(v);
  if (n && *n != 0 && (*n < 64 || *n > 1400)) return fail(Errc::kBadInput, "want 0 or 64 .. 1400");
  return n;
}

Result<bool> parse_on_off(std::string_view v) {
  if (v == "on" || v == "true" || v == "1") return true;
  if (v == "off" || v == "false" || v == "0") return false;
  return fail(Errc::kBadInput, "expected on or off");
}

Result<void> with_flag(std::string_view flag, Result<void> r) {
  if (!r) r.error().context = std::string(flag) + ": " + r.error().context;
  return r;
}

using Setter = std::function<Result<void>(Options&, std::string_view)>;

Result<void> add_secret(Options& o, std::string_view v) {
  auto s = proto::parse_secret(v);
  if (!s) return tl::unexpected(s.error());
  o.secrets.push_back(std::move(*s));
  return {};
}

Result<void> add_bind(Options& o, std::string_view v) {
  // proto::parse_endpoint wants a real port; a listener may ask for any (":0").
  bool any_port = v.ends_with(":0");
  auto e = any_port ? proto::parse_endpoint(std::string(v.substr(0, v.size() - 1)) + "1")
                    : proto::parse_endpoint(v);
  if (!e) return tl::unexpected(e.error());
  if (any_port) e->port = 0;
  o.binds.push_back(std::move(*e));
  return {};
}

Result<void> add_dc(Options& o, std::string_view v) {
  proto::DcTable probe;
  if (auto r = probe.set_from_text(v); !r) return r;
  o.dc_overrides.emplace_back(v);
  return {};
}

// Flag -> setter. Setters return errors without the flag name; the parser adds it.
template <class T>
Setter store(T Options::*field, Result<T> (*parse)(std::string_view)) {
  return [field, parse](Options& o, std::string_view v) -> Result<void> {
    auto r = parse(v);
    if (!r) return tl::unexpected(r.error());
    o.*field = std::move(*r);
    return {};
  };
}

Result<std::string> as_text(std::string_view v) { return std::string(v); }
Result<std::optional<proto::AdTag>> as_ad_tag(std::string_view v) {
  proto::AdTag tag{};
  if (v.size() != 2 * tag.size()) return fail(Errc::kBadInput, "want 32 hex digits");
  for (std::size_t i = 0; i < tag.size(); ++i) {
    unsigned x = 0;
    auto [p, ec] = std::from_chars(v.data() + 2 * i, v.data() + 2 * i + 2, x, 16);
    if (ec != std::errc() || p != v.data() + 2 * i + 2) {
      return fail(Errc::kBadInput, "want 32 hex digits");
    }
    tag[i] = std::byte(x);
  }
  return std::optional<proto::AdTag>(tag);
}
Result<std::string> as_ip_literal(std::string_view v) {
  std::string text(v);
  std::array<unsigned char, 16> buf{};
  if (::inet_pton(AF_INET, text.c_str(), buf.data()) != 1 &&
      ::inet_pton(AF_INET6, text.c_str(), buf.data()) != 1) {
    return fail(Errc::kBadInput, "want an IPv4 or IPv6 address literal");
  }
  return text;
}
Result<std::uint32_t> as_pool_size(std::string_view v) {
  auto n = parse_u32(v);
  if (n && (*n < 1 || *n > 64)) return fail(Errc::kBadInput, "want 1 .. 64");
  return n;
}
Result<void> set_mask(Options& o, std::string_view v) {
  auto e = proto::parse_endpoint(v);
  if (!e) return tl::unexpected(e.error());
  o.mask.global = *e;
  return {};
}
Result<void> add_mask_domain(Options& o, std::string_view v) {
  auto r = proto::parse_domain_route(v);
  if (!r) return tl::unexpected(r.error());
  o.mask.domains.push_back(*std::move(r));
  return {};
}
Result<void> add_mask_listener(Options& o, std::string_view v) {
  auto r = proto::parse_listener_route(v);
  if (!r) return tl::unexpected(r.error());
  o.mask.listeners.push_back(*std::move(r));
  return {};
}
// 0 switches the domain default off.
Result<void> set_mask_domain_port(Options& o, std::string_view v) {
  auto n = parse_u32(v);
  if (!n) return tl::unexpected(n.error());
  if (*n > 65535) return fail(Errc::kBadInput, "want a port 0 .. 65535");
  o.mask.domain_default = *n != 0;
  o.mask.default_port = static_cast<std::uint16_t>(*n);
  return {};
}
Result<void> set_unknown_sni(Options& o, std::string_view v) {
  auto a = proto::parse_unknown_sni(v);
  if (!a) return tl::unexpected(a.error());
  o.mask.unknown_sni = *a;
  return {};
}
Result<std::int64_t> as_seconds(std::string_view v) {
  auto n = parse_u32(v);
  if (!n) return tl::unexpected(n.error());
  return std::int64_t{*n};
}
Result<int> as_fd(std::string_view v) {
  auto n = parse_u32(v);
  if (!n) return tl::unexpected(n.error());
  if (*n < 3 || *n > 1'000'000) return fail(Errc::kBadInput, "fd out of range");
  return static_cast<int>(*n);
}
Result<std::string> as_level(std::string_view v) {
  static const std::vector<std::string_view> levels = {"trace",   "debug", "info",     "warn",
                                                       "warning", "error", "critical", "off"};
  if (std::find(levels.begin(), levels.end(), v) == levels.end()) {
    return fail(Errc::kBadInput, "unknown level " + std::string(v));
  }
  return std::string(v == "warning" ? "warn" : v);
}

const std::map<std::string_view, Setter>& value_flags() {
  static const std::map<std::string_view, Setter> flags = {
      {"--bind", add_bind},
      {"--secret", add_secret},
      {"--dc", add_dc},
      {"--secrets-file", store(&Options::secrets_file, as_text)},
      {"--egress-file", store(&Options::egress_file, as_text)},
      {"--mask", set_mask},
      {"--mask-domain", add_mask_domain},
      {"--mask-listener", add_mask_listener},
      {"--mask-domain-port", set_mask_domain_port},
      {"--unknown-sni", set_unknown_sni},
      {"--mask-connect-timeout", store(&Options::mask_connect_timeout_ms, parse_duration_ms)},
      {"--allow", store(&Options::allowed, proto::parse_allowed_protocols)},
      {"--tls-skew", store(&Options::tls_skew_seconds, as_seconds)},
      {"--public-host", store(&Options::public_host, as_text)},
      {"--control-fd", store(&Options::control_fd, as_fd)},
      {"--orphan-timeout", store(&Options::orphan_timeout_ms, parse_duration_ms)},
      {"--reattach-fd", store(&Options::reattach_fd, as_fd)},
      {"--fast-mode", store(&Options::fast_mode, parse_on_off)},
      {"--handshake-timeout", store(&Options::handshake_timeout_ms, parse_duration_ms)},
      {"--idle-timeout", store(&Options::idle_timeout_ms, parse_duration_ms)},
      {"--dc-connect-timeout", store(&Options::dc_connect_timeout_ms, parse_duration_ms)},
      {"--drain-timeout", store(&Options::drain_timeout_ms, parse_duration_ms)},
      {"--mask-discard-timeout", store(&Options::mask_discard_timeout_ms, parse_duration_ms)},
      {"--mask-mirror-after", store(&Options::mask_mirror_after_ms, parse_duration_ms)},
      {"--flight-segment", store(&Options::flight_segment_bytes, parse_flight_segment)},
      {"--stats-interval", store(&Options::stats_interval_ms, parse_duration_ms)},
      {"--max-connections", store(&Options::max_connections, parse_u32)},
      {"--replay-entries", store(&Options::replay_entries, parse_replay_entries)},
      {"--stats-file", store(&Options::stats_file, as_text)},
      {"--log-level", store(&Options::log_level, as_level)},
      {"--ad-tag", store(&Options::ad_tag, as_ad_tag)},
      {"--proxy-secret", store(&Options::proxy_secret_file, as_text)},
      {"--proxy-config", store(&Options::proxy_config_file, as_text)},
      {"--proxy-config-v6", store(&Options::proxy_config_v6_file, as_text)},
      {"--middle-pool", store(&Options::middle_pool, as_pool_size)},
      {"--public-ip", store(&Options::public_ip, as_ip_literal)},
      {"--middle-stall-timeout", store(&Options::middle_stall_ms, parse_duration_ms)},
  };
  return flags;
}

Result<void> check_complete(const Options& o) {
  if (o.binds.empty() && o.control_fd < 0) {
    return fail(Errc::kBadInput, "need at least one --bind HOST:PORT or --control-fd N");
  }
  if (o.secrets.empty() && o.secrets_file.empty()) {
    return fail(Errc::kBadInput, "need at least one --secret or a --secrets-file");
  }
  if (o.secrets.size() > 1024) return fail(Errc::kBadInput, "too many secrets (max 1024)");
  if (o.ad_tag && (o.proxy_secret_file.empty() || o.proxy_config_file.empty())) {
    return fail(Errc::kBadInput, "--ad-tag needs --proxy-secret FILE and --proxy-config FILE");
  }
  if (o.orphan_timeout_ms != 0 && o.control_fd < 0)
    return fail(Errc::kBadInput, "--orphan-timeout needs --control-fd");
  // A listener nobody is ever accepted on would only hold connects.
  if (o.reattach_fd >= 0 && o.orphan_timeout_ms == 0)
    return fail(Errc::kBadInput, "--reattach-fd needs a non-zero --orphan-timeout");
  if (o.reattach_fd >= 0 && o.reattach_fd == o.control_fd)
    return fail(Errc::kBadInput, "--reattach-fd and --control-fd must differ");
  if (o.middle_stall_ms < 500)
    return fail(Errc::kBadInput, "--middle-stall-timeout: want >= 500ms");
  return {};
}

// Applies argv-style `args` to `o`. `allow` filters the flags (null: all);
// --help and --confinement-check stop the walk.
Result<void> apply_flags(Options& o, const std::vector<std::string_view>& args,
                         bool (*allow)(std::string_view)) {
  const auto& flags = value_flags();
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    std::string_view value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.starts_with("--") && eq != std::string_view::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    if (allow && !allow(a)) return fail(Errc::kBadInput, "not a live setting: " + std::string(a));
    if (a == "--help" || a == "-h") {
      o.help = true;
      return {};
    }
    if (a == "--confinement-check" && !inline_value) {
      o.confinement_check = true;
      return {};
    }
    if (a == "--prefer-ipv6" && !inline_value) {
      o.prefer_ipv6 = true;
      continue;
    }
    auto it = flags.find(a);
    if (it == flags.end()) return fail(Errc::kBadInput, "unknown flag " + std::string(a));
    if (!inline_value) {
      if (i + 1 >= args.size()) return fail(Errc::kBadInput, std::string(a) + ": needs a value");
      value = args[++i];
    }
    if (auto r = with_flag(a, it->second(o, value)); !r) return r;
  }
  return {};
}

}  // namespace

Result<Options> parse_options(const std::vector<std::string_view>& args) {
  Options o;
  if (auto r = apply_flags(o, args, nullptr); !r) return tl::unexpected(r.error());
  if (o.help || o.confinement_check) return o;
  if (auto r = check_complete(o); !r) return tl::unexpected(r.error());
  return o;
}

bool is_live_flag(std::string_view flag) {
  static constexpr std::array<std::string_view, 15> kLive = {"--dc",
                                                             "--prefer-ipv6",
                                                             "--fast-mode",
                                                             "--handshake-timeout",
                                                             "--idle-timeout",
                                                             "--dc-connect-timeout",
                                                             "--mask-discard-timeout",
                                                             "--mask",
                                                             "--mask-domain",
                                                             "--mask-domain-port",
                                                             "--unknown-sni",
                                                             "--mask-connect-timeout",
                                                             "--mask-listener",
                                                             "--mask-mirror-after",
                                                             "--flight-segment"};
  return std::find(kLive.begin(), kLive.end(), flag) != kLive.end();
}

Result<Options> apply_live_options(Options current, const std::vector<std::string_view>& args) {
  const Options defaults;
  current.dc_overrides = defaults.dc_overrides;
  current.prefer_ipv6 = defaults.prefer_ipv6;
  current.fast_mode = defaults.fast_mode;
  current.handshake_timeout_ms = defaults.handshake_timeout_ms;
  current.idle_timeout_ms = defaults.idle_timeout_ms;
  current.dc_connect_timeout_ms = defaults.dc_connect_timeout_ms;
  current.mask_discard_timeout_ms = defaults.mask_discard_timeout_ms;
  current.mask = defaults.mask;
  current.mask_connect_timeout_ms = defaults.mask_connect_timeout_ms;
  current.mask_mirror_after_ms = defaults.mask_mirror_after_ms;
  current.flight_segment_bytes = defaults.flight_segment_bytes;
  if (auto r = apply_flags(current, args, is_live_flag); !r) return tl::unexpected(r.error());
  return current;
}

}  // namespace mtw::worker
