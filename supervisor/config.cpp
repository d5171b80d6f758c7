// Section readers of the TOML configuration. Cross-section checks (clashes,
// capacities) live in config_validate.cpp.
#include "supervisor/config.h"

#include <grp.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "base/url.h"
#include "supervisor/config_reader.h"

namespace mtw::supervisor {
namespace detail {
void validate_config(Config& cfg, const SectionPositions& pos, Diagnostics& diag);
std::optional<std::string> pem_bundle_error(const std::string& path);  // nullopt: usable
void read_webhooks(TableReader& r, std::vector<std::string>& urls);    // [api] webhooks
// config_egress.cpp: [[upstream]], [egress], the users' upstream keys.
void read_upstream(TableReader r, std::vector<UpstreamConfig>& out);
void read_egress(TableReader r, EgressConfig& e);
void read_user_egress(TableReader& r, UserConfig& u);
void validate_egress(const toml::table& root, Config& cfg, Diagnostics& diag);
}  // namespace detail

namespace {

using detail::Diagnostics;
using detail::SectionPositions;
using detail::TableReader;

constexpr std::uint32_t kMaxMs = 24 * 3'600'000;  // a day: longer is surely a typo

const toml::table* section(Diagnostics& d, const toml::table& root, std::string_view name) {
  const toml::node* n = root.get(name);
  if (!n) return nullptr;
  if (const auto* t = n->as_table()) return t;
  // Appended, not "literal" + std::string: GCC 12 -O3 warns falsely (-Wrestrict) on that.
  std::string msg = "\"";
  msg.append(name).append("\" must be a table: write [").append(name).append("]");
  d.error(n->source(), msg);
  return nullptr;
}

// [[name]] entries; reports a plain [name] table or a scalar.
std::vector<const toml::table*> array_of_tables(Diagnostics& d, const toml::table& root,
                                                std::string_view name) {
  std::vector<const toml::table*> out;
  const toml::node* n = root.get(name);
  if (!n) return out;
  const auto* arr = n->as_array();
  if (!arr) {
    d.error(n->source(), "\"" + std::string(name) + "\" must be an array of tables: write [[" +
                             std::string(name) + "]]");
    return out;
  }
  for (const toml::node& e : *arr) {
    if (const auto* t = e.as_table())
      out.push_back(t);
    else
      d.error(e.source(), "each " + std::string(name) + " entry must be a table");
  }
  return out;
}

// An absolute path, or nullopt (reported at the value) for anything else.
std::optional<std::string> absolute_path(TableReader& r, std::string_view key) {
  auto v = r.string(key);
  if (v && (v->empty() || v->front() != '/')) {
    r.error(*r.table().get(key),
            r.section() + "." + std::string(key) + " must be an absolute path");
    return std::nullopt;
  }
  return v;
}

void read_server(TableReader r, ServerConfig& s) {
  if (auto v = absolute_path(r, "state_dir")) s.state_dir = *v;
  if (auto v = absolute_path(r, "run_dir")) s.run_dir = *v;
  if (auto v = r.string("log_level")) {
    static constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                                   "error", "critical", "off"};
    if (std::find(std::begin(kLevels), std::end(kLevels), *v) == std::end(kLevels))
      r.error(*r.table().get("log_level"),
              "server.log_level must be one of trace, debug, info, warn, error, critical, off");
    else
      s.log_level = *v;
  }
  if (auto v = r.string("public_host")) s.public_host = *v;
  if (auto v = r.number<std::uint16_t>("public_port", 0, 65535)) s.public_port = *v;
  if (auto v = r.boolean("create_first_user")) s.create_first_user = *v;
  if (auto v = r.string("public_host_lookup")) {
    auto url = v->empty() ? base::Result<base::HttpUrl>{} : base::parse_http_url(*v);
    if (!url || url->tls) {
      r.error(*r.table().get("public_host_lookup"),
              "server.public_host_lookup must be \"\" or an http://HOST[:PORT]/PATH URL" +
                  (url ? std::string(" (https is not supported)") : ": " + url.error().context));
    } else {
      s.public_host_lookup = *v;
    }
  }
  if (auto v = r.string("first_user_domain")) s.first_user_domain = *v;
  if (auto v = r.string("log_target")) {
    if (*v != "auto" && *v != "journal" && *v != "stderr")
      r.error(*r.table().get("log_target"),
              "server.log_target must be one of auto, journal, stderr");
    else
      s.log_target = *v;
  }
  r.finish();
}

std::optional<proto::AllowedProtocols> read_protocols(TableReader& r) {
  const toml::node* n = r.node("protocols");
  if (!n) return proto::AllowedProtocols{};
  std::string text;
  if (const auto* s = n->as_string()) {
    text = s->get();
  } else if (const auto* arr = n->as_array()) {
    for (const toml::node& e : *arr) {
      const auto* s2 = e.as_string();
      if (!s2) {
        r.error(e, "listener.protocols entries must be strings");
        return std::nullopt;
      }
      text += (text.empty() ? "" : ",") + s2->get();
    }
  } else {
    r.error(*n, "listener.protocols must be \"all\" or a list like [\"tls\", \"secure\"]");
    return std::nullopt;
  }
  auto p = proto::parse_allowed_protocols(text);
  if (!p) {
    r.error(*n, "listener.protocols: " + p.error().context);
    return std::nullopt;
  }
  return *p;
}

// "" = unset; otherwise 32 hex digits (parse_ad_tag: the one rule).
std::optional<proto::AdTag> read_ad_tag(TableReader& r) {
  auto v = r.string("ad_tag");
  if (!v || v->empty()) return std::nullopt;
  auto tag = parse_ad_tag(*v);
  if (!tag) {
    r.error(*r.table().get("ad_tag"), r.section() + "." + tag.error().context);
    return std::nullopt;
  }
  return *tag;
}

void read_middle(TableReader r, MiddleConfig& m) {
  m.ad_tag = read_ad_tag(r);
  static constexpr std::string_view kKeys[] = {"proxy_secret", "proxy_config", "proxy_config_v6"};
  for (std::size_t i = 0; i < kMaterialKinds; ++i) {
    auto v = r.string(kKeys[i]);
    if (!v) continue;
    auto src = parse_material_source(*v);
    if (!src) {
      r.error(*r.table().get(kKeys[i]),
              "middle." + std::string(kKeys[i]) + ": " + src.error().context);
    } else if (src->type == MaterialSource::Type::kNone && i != 2) {
      r.error(*r.table().get(kKeys[i]),
              "middle." + std::string(kKeys[i]) + " must name a URL or a file");
    } else {
      m.sources[i] = *src;
    }
  }
  if (auto v = r.number<std::uint32_t>("refresh_interval_s", 60, 30 * 86'400))
    m.refresh_interval_s = *v;
  if (auto v = r.number<std::uint32_t>("fetch_timeout_ms", 100, kMaxMs)) m.fetch_timeout_ms = *v;
  if (auto v = r.number<std::uint32_t>("pool", 1, 64)) m.pool = *v;
  if (auto v = r.number<std::uint32_t>("stall_timeout_ms", 500, kMaxMs)) m.stall_timeout_ms = *v;
  if (auto v = r.string("public_ip")) {
    boost::system::error_code ec;
    boost::asio::ip::make_address(*v, ec);
    if (!v->empty() && ec)
      r.error(*r.table().get("public_ip"), "middle.public_ip must be \"\" or an IP address");
    else
      m.public_ip = *v;
  }
  if (auto v = r.boolean("fallback")) m.fallback = *v;
  r.finish();
}

void read_listener(TableReader r, std::vector<ListenerConfig>& out) {
  ListenerConfig l;
  l.pos = r.diag().pos(r.table().source());
  auto bind = r.endpoint("bind");
  auto protocols = read_protocols(r);
  if (const toml::node* n = r.table().get("mask");
      !n || !n->as_string() || !n->as_string()->get().empty())
    l.mask = r.endpoint("mask");
  else
    r.node("mask");  // "" = the [mask] target, as when absent
  l.ad_tag = read_ad_tag(r);
  r.finish();
  if (!r.table().get("bind")) {
    r.diag().error(l.pos, "listener needs bind = \"HOST:PORT\"");
    return;
  }
  if (!bind || !protocols) return;
  l.bind = *bind;
  l.protocols = *protocols;
  out.push_back(std::move(l));
}

void read_mask_domains(TableReader& r, MaskConfig& m) {
  const toml::node* n = r.node("domains");
  if (!n) return;
  const auto* t = n->as_table();
  if (!t) {
    r.error(*n,
            "mask.domains must be a table: write [mask.domains] with \"DOMAIN\" = \"HOST:PORT\"");
    return;
  }
  for (auto&& [k, v] : *t) {
    const auto* s = v.as_string();
    auto route = s ? proto::parse_domain_route(std::string(k.str()) + "=" + s->get())
                   : base::Result<std::pair<std::string, proto::Endpoint>>(
                         base::fail(base::Errc::kBadInput, "must be a \"HOST:PORT\" string"));
    if (!route) {
      r.error(v, "mask.domains \"" + std::string(k.str()) + "\": " + route.error().context);
      continue;
    }
    const bool twice = std::any_of(m.domains.begin(), m.domains.end(),
                                   [&](const auto& d) { return d.first == route->first; });
    if (twice)
      r.error(v, "mask.domains \"" + std::string(k.str()) + "\" given twice (domains ignore case)");
    else
      m.domains.push_back(*std::move(route));
  }
}

void read_mask(TableReader r, MaskConfig& m) {
  if (auto v = r.boolean("enabled")) m.enabled = *v;
  if (const toml::node* n = r.table().get("address");
      n && n->as_string() && n->as_string()->get().empty())
    r.node("address");  // "" = unset: each domain on port 443
  else
    m.address = r.endpoint("address");
  read_mask_domains(r, m);
  if (auto v = r.string("unknown_sni")) {
    if (auto a = proto::parse_unknown_sni(*v))
      m.unknown_sni = *a;
    else
      r.error(*r.table().get("unknown_sni"), "mask.unknown_sni must be \"mask\" or \"drop\"");
  }
  if (auto v = r.number<std::uint32_t>("connect_timeout_ms", 100, kMaxMs))
    m.connect_timeout_ms = *v;
  if (auto v = r.number<std::uint32_t>("discard_timeout_ms", 100, kMaxMs))
    m.discard_timeout_ms = *v;
  if (auto v = r.boolean("probe")) m.probe = *v;
  if (auto v = r.number<std::uint32_t>("probe_interval_s", 60, 30 * 86'400))
    m.probe_interval_s = *v;
  if (auto v = r.number<std::uint32_t>("probe_jitter_s", 0, 86'400)) m.probe_jitter_s = *v;
  if (auto v = r.number<std::uint32_t>("probe_handshakes", 1, 64)) m.probe_handshakes = *v;
  if (auto v = r.number<std::uint32_t>("mirror_after_ms", 0, 60'000)) m.mirror_after_ms = *v;
  if (auto v = r.number<std::uint32_t>("flight_segment_bytes", 0, 1'400)) {
    if (*v != 0 && *v < 64) {
      r.error(*r.table().get("flight_segment_bytes"),
              "mask.flight_segment_bytes must be 0 or 64..1400");
    } else {
      m.flight_segment_bytes = *v;
    }
  }
  r.finish();
}

std::optional<DcOverride> parse_dc_override(TableReader& r, const toml::node& e) {
  const auto* s = e.as_string();
  const std::string_view text = s ? std::string_view(s->get()) : std::string_view();
  const auto eq = text.find('=');
  if (!s || eq == std::string_view::npos) {
    r.error(e, "telegram.dc entries must look like \"2=149.154.167.51:443\"");
    return std::nullopt;
  }
  int dc = 0;
  const std::string num(text.substr(0, eq));
  std::size_t used = 0;
  try {
    dc = std::stoi(num, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != num.size() || dc == 0 || dc < -32767 || dc > 32767) {
    r.error(e, "telegram.dc: \"" + num + "\" is not a DC number (e.g. 2, -2, 203, 10002)");
    return std::nullopt;
  }
  auto endpoints = proto::parse_endpoint_list(text.substr(eq + 1));
  if (!endpoints) {
    r.error(e, "telegram.dc: " + endpoints.error().context);
    return std::nullopt;
  }
  return DcOverride{static_cast<std::int16_t>(dc), std::move(*endpoints)};
}

void read_telegram(TableReader r, TelegramConfig& t) {
  if (const toml::node* n = r.node("dc")) {
    if (const auto* arr = n->as_array()) {
      for (const toml::node& e : *arr)
        if (auto o = parse_dc_override(r, e)) t.dc.push_back(*o);
    } else {
      r.error(*n, "telegram.dc must be a list like [\"2=149.154.167.51:443\"]");
    }
  }
  if (auto v = r.boolean("prefer_ipv6")) t.prefer_ipv6 = *v;
  if (auto v = r.boolean("fast_mode")) t.fast_mode = *v;
  r.finish();
}

template <class T>
void read_cidr(TableReader& r, std::string_view key, bool want_v6, T& out) {
  const toml::node* n = r.node(key);
  if (!n) return;
  const auto* s = n->as_string();
  base::Result<Cidr> c = base::fail(base::Errc::kBadInput, "must be a CIDR string");
  if (s) c = parse_cidr(s->get());
  if (!c) {
    r.error(*n, "cells." + std::string(key) + ": " + c.error().context);
  } else if (c->v6 != want_v6) {
    r.error(*n, "cells." + std::string(key) + " must be an " + (want_v6 ? "IPv6" : "IPv4") +
                    " network");
  } else {
    out = *c;
  }
}

void read_cells(TableReader r, CellsConfig& c) {
  read_cidr(r, "ipv4_pool", false, c.ipv4_pool);
  if (auto v = r.number<int>("ipv4_cell_prefix", 30, 31)) c.ipv4_cell_prefix = *v;
  if (const toml::node* n = r.table().get("ipv6_prefix");
      n && n->as_string() && n->as_string()->get().empty()) {
    r.node("ipv6_prefix");
    c.ipv6_prefix.reset();  // "" switches IPv6 in cells off
  } else {
    read_cidr(r, "ipv6_prefix", true, c.ipv6_prefix);
  }
  if (auto v = absolute_path(r, "netns_dir")) c.netns_dir = *v;
  if (auto v = r.string("name_prefix")) c.name_prefix = *v;
  if (auto v = r.number<std::uint32_t>("uid_first", 1, 4'294'967'294)) c.uid_first = *v;
  if (auto v = r.number<std::uint32_t>("uid_count", 2, 16'777'216)) c.uid_count = *v;
  if (auto v = r.number<std::uint32_t>("gid_first", 1, 4'294'967'294)) c.gid_first = *v;
  if (auto v = r.number<std::uint64_t>("worker_nofile", 64, 1'048'576)) c.worker_nofile = *v;
  if (auto v = r.size("worker_memory_max", true)) c.worker_memory_max_bytes = *v;
  if (auto v = r.size("gate_memory_max", true)) c.gate_memory_max_bytes = *v;
  if (auto v = r.string("cgroup_dir")) c.cgroup_dir = *v;
  if (auto v = r.boolean("nat")) c.nat = *v;
  if (auto v = r.boolean("ipv6_forwarding")) c.ipv6_forwarding = *v;
  r.finish();
}

void read_timeouts(TableReader r, TimeoutsConfig& t) {
  struct Key {
    std::string_view name;
    std::uint32_t* out;
    std::uint32_t min;
  };
  const Key keys[] = {
      {"handshake_ms", &t.handshake_ms, 100},
      {"dc_connect_ms", &t.dc_connect_ms, 100},
      {"client_idle_ms", &t.client_idle_ms, 1'000},
      {"worker_ready_ms", &t.worker_ready_ms, 100},
      {"shutdown_grace_ms", &t.shutdown_grace_ms, 0},
      {"restart_backoff_min_ms", &t.restart_backoff_min_ms, 10},
      {"restart_backoff_max_ms", &t.restart_backoff_max_ms, 10},
      {"crash_loop_window_ms", &t.crash_loop_window_ms, 1'000},
  };
  for (const Key& k : keys)
    if (auto v = r.number<std::uint32_t>(k.name, k.min, kMaxMs)) *k.out = *v;
  if (auto v = r.number<std::uint32_t>("crash_loop_restarts", 1, 1'000)) t.crash_loop_restarts = *v;
  if (t.restart_backoff_min_ms > t.restart_backoff_max_ms)
    r.diag().error(r.diag().pos(r.table().source()),
                   "timeouts.restart_backoff_min_ms is larger than restart_backoff_max_ms");
  r.finish();
}

void read_accounting(TableReader r, AccountingConfig& a) {
  if (auto v = r.number<std::uint32_t>("sweep_interval_ms", 100, 60'000)) a.sweep_interval_ms = *v;
  // >= 400 days so that a year-over-year comparison always has both months.
  if (auto v = r.number<std::uint32_t>("history_days", 400, 36'500)) a.history_days = *v;
  r.finish();
}

void read_bandwidth(TableReader r, BandwidthConfig& b) {
  if (auto v = r.rate("up", true, kMinLimitRateBps)) b.up_bps = *v;
  if (auto v = r.rate("down", true, kMinLimitRateBps)) b.down_bps = *v;
  r.finish();
}

void read_connections(TableReader r, ConnectionsConfig& c) {
  if (auto v = r.number<std::uint32_t>("global_budget", 0, 10'000'000)) c.global_budget = *v;
  if (auto v = r.number<std::uint32_t>("hold_queue_length", 0, 100'000)) c.hold_queue_length = *v;
  if (auto v = r.number<std::uint32_t>("hold_timeout_ms", 0, 600'000)) c.hold_timeout_ms = *v;
  if (auto v = r.number<std::uint32_t>("rebalance_interval_ms", 100, 600'000))
    c.rebalance_interval_ms = *v;
  if (auto v = r.number<std::uint32_t>("unique_ip_window_s", 1, 86'400)) c.unique_ip_window_s = *v;
  if (auto v = r.number<std::uint32_t>("per_ip_rate", 0, 1'000'000)) c.per_ip_rate = *v;
  if (auto v = r.boolean("direct_lanes")) c.direct_lanes = *v;
  if (auto v = r.boolean("replay_persist")) c.replay_persist = *v;
  auto& a = c.admission;
  if (auto v = r.number<std::uint32_t>("source_handshakes", 0, 1'000'000)) a.source_handshakes = *v;
  if (auto v = r.number<std::uint32_t>("subnet_handshakes", 0, 1'000'000)) a.subnet_handshakes = *v;
  if (auto v = r.number<std::uint32_t>("ipv6_source_prefix", 1, 128)) a.ipv6_source_prefix = *v;
  if (auto v = r.number<std::uint32_t>("ipv6_subnet_prefix", 1, 128)) a.ipv6_subnet_prefix = *v;
  if (auto v = r.number<std::uint32_t>("ipv4_subnet_prefix", 1, 32)) a.ipv4_subnet_prefix = *v;
  if (auto v = r.number<std::uint32_t>("silent_timeout_ms", 100, 600'000)) a.silent_timeout_ms = *v;
  r.finish();
}

void read_api(TableReader r, ApiConfig& a) {
  if (const toml::node* n = r.table().get("socket");
      n && n->as_string() && n->as_string()->get().empty()) {
    r.node("socket");
  } else if (auto v = absolute_path(r, "socket")) {
    a.socket = *v;
  }
  if (auto v = r.string("socket_group")) {
    // Looked up at load, like webhook_ca_file, so --check (and a reload)
    // finds what the start would.
    std::vector<char> buf(16384);
    struct group gr {};
    struct group* found = nullptr;
    const int rc = v->empty() ? 0 : ::getgrnam_r(v->c_str(), &gr, buf.data(), buf.size(), &found);
    if (!v->empty() && !found)
      r.error(*r.table().get("socket_group"),
              "api.socket_group \"" + *v + "\": " +
                  (rc != 0 ? std::string("group lookup failed: ") + std::strerror(rc)
                           : std::string("no such group")));
    else
      a.socket_group = *v;
  }
  if (const toml::node* n = r.table().get("tcp");
      n && n->as_string() && n->as_string()->get().empty()) {
    r.node("tcp");
  } else if (auto v = r.endpoint("tcp")) {
    a.tcp = *v;
  }
  if (auto v = r.boolean("allow_public")) a.allow_public = *v;
  if (auto v = r.size("body_limit", false)) {
    if (*v < 1024 || *v > (16u << 20))
      r.error(*r.table().get("body_limit"), "api.body_limit must be between 1KiB and 16MiB");
    else
      a.body_limit = *v;
  }
  if (auto v = r.number<std::uint32_t>("request_timeout_ms", 100, 600'000))
    a.request_timeout_ms = *v;
  if (auto v = r.number<std::uint32_t>("secret_grace_s", 0, 365 * 86'400)) a.secret_grace_s = *v;
  if (auto v = r.number<std::uint32_t>("events_kept", 10, 1'000'000)) a.events_kept = *v;
  detail::read_webhooks(r, a.webhooks);
  if (auto v = r.string("webhook_ca_file"); v && !v->empty()) {
    const toml::node& n = *r.table().get("webhook_ca_file");
    const std::optional<std::string> why =
        v->front() != '/' ? "must be \"\" or an absolute path" : detail::pem_bundle_error(*v);
    if (why)
      r.error(n, "api.webhook_ca_file \"" + *v + "\" " + *why);
    else
      a.webhook_ca_file = *v;
  }
  if (auto v = r.number<std::uint32_t>("webhook_timeout_ms", 100, 120'000))
    a.webhook_timeout_ms = *v;
  if (auto v = r.number<std::uint32_t>("webhook_retries", 0, 20)) a.webhook_retries = *v;
  r.finish();
  if (a.tcp && !a.allow_public) {
    const std::string& h = a.tcp->host;
    // A host name is refused by check_api (config_validate.cpp).
    const bool loopback = h == "::1" || h == "localhost" || h.rfind("127.", 0) == 0;
    if (!loopback) {
      r.error(*r.table().get("tcp"),
              "api.tcp " + proto::format_endpoint(*a.tcp) +
                  " is not a loopback address; set api.allow_public = true "
                  "to expose the API (a bearer token is always required on TCP)");
    }
  }
}

void read_dbus(TableReader r, DbusConfig& d) {
  if (auto v = r.boolean("enabled")) d.enabled = *v;
  if (auto v = r.string("bus")) {
    if (*v != "system" && *v != "session")
      r.error(*r.table().get("bus"), "dbus.bus must be \"system\" or \"session\"");
    else
      d.bus = *v;
  }
  r.finish();
}

// [store]: the engine (sqlite | postgresql) and, for PostgreSQL, where and
// as whom to connect. The password file is read when the store opens (a
// reload does not reconnect); here its path is only checked for shape.
void read_store(TableReader r, StoreConfig& s) {
  if (auto v = r.string("backend")) {
    if (*v == "sqlite")
      s.backend = StoreEngine::kSqlite;
    else if (*v == "postgresql")
      s.backend = StoreEngine::kPostgresql;
    else
      r.error(*r.table().get("backend"), "store.backend must be \"sqlite\" or \"postgresql\"");
  }
  const toml::node* conn = r.node("postgresql");
  if (auto v = r.string("postgresql")) {
    if (auto ok = check_postgresql_conninfo(*v); !ok)
      r.error(*conn, "store.postgresql: " + ok.error().context);
    else
      s.postgresql = *v;
  }
  const toml::node* pw = r.node("password_file");
  if (auto v = absolute_path(r, "password_file")) s.password_file = *v;
  if (auto v = r.string("host_name")) {
    if (auto ok = check_host_name(*v); !ok)
      r.error(*r.table().get("host_name"), "store.host_name: " + ok.error().context);
    else
      s.host_name = *v;
  }
  if (s.backend == StoreEngine::kPostgresql && s.postgresql.empty() && !conn)
    r.diag().error(r.table().source(),
                   "store.backend = \"postgresql\" needs store.postgresql = \"host=... "
                   "dbname=... user=...\"");
  if (s.backend == StoreEngine::kSqlite && (conn || pw))
    r.diag().error(r.table().source(),
                   "store.postgresql and store.password_file need store.backend = \"postgresql\"");
  r.finish();
}

// Seconds since the epoch at which the user stops being served: a plain
// date means "through that day", so it expires at the next midnight UTC.
std::optional<std::int64_t> read_expiry(TableReader& r) {
  using namespace std::chrono;
  const toml::node* n = r.node("expires");
  if (!n) return std::nullopt;
  auto day_start = [](const toml::date& d) {
    const year_month_day ymd{year{d.year}, month{d.month}, day{d.day}};
    return static_cast<std::int64_t>(sys_seconds(sys_days(ymd)).time_since_epoch().count());
  };
  if (const auto* d = n->as_date()) return day_start(d->get()) + 86'400;
  if (const auto* dt = n->as_date_time()) {
    const toml::date_time& v = dt->get();
    if (!v.offset) {
      r.error(*n,
              "user.expires: a date-time needs an offset (e.g. 2025-12-31T23:59:00Z), or "
              "give a plain date");
      return std::nullopt;
    }
    return day_start(v.date) + v.time.hour * 3600 + v.time.minute * 60 + v.time.second -
           static_cast<std::int64_t>(v.offset->minutes) * 60;
  }
  r.error(*n, "user.expires must be a date (2025-12-31) or an offset date-time");
  return std::nullopt;
}

void read_secrets(TableReader& r, UserConfig& u) {
  const toml::node* one = r.node("secret");
  const toml::node* many = r.node("secrets");
  if (one && many) {
    r.error(*many, "user \"" + u.name + "\": give either secret or secrets, not both");
    return;
  }
  std::vector<const toml::node*> items;
  if (one) items.push_back(one);
  if (many) {
    if (const auto* arr = many->as_array(); arr && !arr->empty()) {
      for (const toml::node& e : *arr) items.push_back(&e);
    } else {
      r.error(*many, "user.secrets must be a non-empty list of strings");
      return;
    }
  }
  if (items.empty()) {
    r.diag().error(u.pos, "user \"" + u.name + "\" needs a secret (e.g. secret = \"ee...\")");
    return;
  }
  for (const toml::node* e : items) {
    const auto* s = e->as_string();
    auto parsed =
        s ? proto::parse_secret(s->get())
          : base::Result<proto::Secret>(base::fail(base::Errc::kBadInput, "not a string"));
    if (!parsed)
      r.error(*e, "user \"" + u.name + "\" secret: " + parsed.error().context);
    else
      u.secrets.push_back(*parsed);
  }
}

void read_user(TableReader r, std::vector<UserConfig>& out) {
  UserConfig u;
  u.pos = r.diag().pos(r.table().source());
  const toml::node* name_node = r.table().get("name");
  if (auto v = r.string("name")) {
    if (valid_user_name(*v))
      u.name = *v;
    else
      r.error(*name_node, "user.name \"" + *v + "\" must be " + std::string(kUserNameRule));
  } else if (!name_node) {
    r.diag().error(u.pos, "user needs name = \"...\"");
  }
  read_secrets(r, u);
  if (auto v = r.boolean("enabled")) u.enabled = *v;
  u.expires_at = read_expiry(r);
  if (auto v = r.string("comment")) u.comment = *v;
  u.ad_tag = read_ad_tag(r);
  u.overrides = detail::read_limit_keys(r);
  detail::read_user_egress(r, u);
  r.finish();
  if (!u.name.empty() && !u.secrets.empty()) out.push_back(std::move(u));
}

void read_root(const toml::table& root, Config& cfg, Diagnostics& diag, SectionPositions& pos) {
  static constexpr std::string_view kSections[] = {
      "server",     "listener",    "mask",     "telegram", "cells",    "timeouts",
      "accounting", "connections", "defaults", "user",     "api",      "dbus",
      "upstream",   "egress",      "middle",   "store",    "bandwidth"};
  for (auto&& [k, v] : root)
    if (std::find(std::begin(kSections), std::end(kSections), k.str()) == std::end(kSections))
      diag.error(k.source(), "unknown section or key \"" + std::string(k.str()) + "\"");
    else
      pos[std::string(k.str())] = diag.pos(v.source());

  if (const auto* t = section(diag, root, "server")) read_server({diag, *t, "server"}, cfg.server);
  for (const auto* t : array_of_tables(diag, root, "listener"))
    read_listener({diag, *t, "listener"}, cfg.listeners);
  if (const auto* t = section(diag, root, "mask")) read_mask({diag, *t, "mask"}, cfg.mask);
  if (const auto* t = section(diag, root, "telegram"))
    read_telegram({diag, *t, "telegram"}, cfg.telegram);
  if (const auto* t = section(diag, root, "cells")) read_cells({diag, *t, "cells"}, cfg.cells);
  if (const auto* t = section(diag, root, "timeouts"))
    read_timeouts({diag, *t, "timeouts"}, cfg.timeouts);
  if (const auto* t = section(diag, root, "accounting"))
    read_accounting({diag, *t, "accounting"}, cfg.accounting);
  if (const auto* t = section(diag, root, "bandwidth"))
    read_bandwidth({diag, *t, "bandwidth"}, cfg.bandwidth);
  if (const auto* t = section(diag, root, "connections"))
    read_connections({diag, *t, "connections"}, cfg.connections);
  if (const auto* t = section(diag, root, "api")) read_api({diag, *t, "api"}, cfg.api);
  if (const auto* t = section(diag, root, "dbus")) read_dbus({diag, *t, "dbus"}, cfg.dbus);
  if (const auto* t = section(diag, root, "middle")) read_middle({diag, *t, "middle"}, cfg.middle);
  if (const auto* t = section(diag, root, "store")) read_store({diag, *t, "store"}, cfg.store);
  if (const auto* t = section(diag, root, "defaults")) {
    TableReader r(diag, *t, "defaults");
    cfg.defaults = resolve_limits(Limits{}, detail::read_limit_keys(r));
    r.finish();
  }
  for (const auto* t : array_of_tables(diag, root, "user"))
    read_user({diag, *t, "user"}, cfg.users);
  for (const auto* t : array_of_tables(diag, root, "upstream"))
    detail::read_upstream({diag, *t, "upstream"}, cfg.upstreams);
  if (const auto* t = section(diag, root, "egress"))
    detail::read_egress({diag, *t, "egress"}, cfg.egress);
  detail::validate_egress(root, cfg, diag);
}

}  // namespace

proto::MaskRoutes mask_routes(const Config& c) {
  proto::MaskRoutes routes;
  if (!c.mask.enabled) return routes;
  routes.domain_default = true;
  routes.default_port = 443;
  routes.global = c.mask.address;
  routes.domains = c.mask.domains;
  for (std::size_t i = 0; i < c.listeners.size(); ++i)
    if (c.listeners[i].mask)
      routes.listeners.emplace_back(static_cast<std::uint32_t>(i), *c.listeners[i].mask);
  routes.unknown_sni = c.mask.unknown_sni;
  return routes;
}

std::vector<std::string> mask_flags(const Config& c, bool listeners) {
  const proto::MaskRoutes routes = mask_routes(c);
  std::vector<std::string> a;
  if (routes.global) a.insert(a.end(), {"--mask", proto::format_endpoint(*routes.global)});
  for (const auto& [domain, ep] : routes.domains) {
    std::string v = domain;
    v.append("=").append(proto::format_endpoint(ep));
    a.insert(a.end(), {"--mask-domain", v});
  }
  if (listeners) {
    for (const auto& [id, ep] : routes.listeners) {
      std::string v = std::to_string(id);
      v.append("=").append(proto::format_endpoint(ep));
      a.insert(a.end(), {"--mask-listener", v});
    }
  }
  a.insert(
      a.end(),
      {"--mask-domain-port", routes.domain_default ? std::to_string(routes.default_port) : "0",
       "--unknown-sni", std::string(proto::unknown_sni_name(routes.unknown_sni)),
       "--mask-connect-timeout", std::to_string(c.mask.connect_timeout_ms) + "ms",
       "--mask-mirror-after", std::to_string(c.mask.enabled ? c.mask.mirror_after_ms : 0) + "ms"});
  return a;
}

std::vector<std::string> worker_live_flags(const Config& c) {
  auto ms = [](std::uint32_t v) { return std::to_string(v) + "ms"; };
  std::vector<std::string> a = {"--handshake-timeout",
                                ms(c.timeouts.handshake_ms),
                                "--idle-timeout",
                                ms(c.timeouts.client_idle_ms),
                                "--dc-connect-timeout",
                                ms(c.timeouts.dc_connect_ms),
                                "--mask-discard-timeout",
                                ms(c.mask.discard_timeout_ms),
                                "--fast-mode",
                                c.telegram.fast_mode ? "on" : "off"};
  if (c.telegram.prefer_ipv6) a.emplace_back("--prefer-ipv6");
  for (const auto& d : c.telegram.dc) {
    a.emplace_back("--dc");
    std::string spec = std::to_string(d.dc) + "=";
    for (std::size_t i = 0; i < d.endpoints.size(); ++i)
      spec.append(i == 0 ? "" : ",").append(proto::format_endpoint(d.endpoints[i]));
    a.push_back(std::move(spec));
  }
  // With the listeners' routes: a handed-off connection the worker masks
  // goes where the gate would have sent it.
  const auto mask = mask_flags(c, true);
  a.insert(a.end(), mask.begin(), mask.end());
  a.insert(a.end(),
           {"--flight-segment", std::to_string(c.mask.enabled ? c.mask.flight_segment_bytes : 0)});
  return a;
}

bool secrets_readable_by_others(const Config& c, unsigned mode) noexcept {
  constexpr unsigned kOtherRead = 0004;
  if ((mode & kOtherRead) == 0) return false;
  for (const auto& u : c.users) {
    if (!u.secrets.empty()) return true;
  }
  return false;
}

const UserConfig* Config::find_user(std::string_view name) const {
  for (const auto& u : users)
    if (u.name == name) return &u;
  return nullptr;
}

base::Result<Config> parse_config(std::string_view text, std::string_view source_name) {
  Diagnostics diag{std::string(source_name)};
  Config cfg;
  cfg.source = std::string(source_name);
  cfg.cells.ipv4_pool = *parse_cidr("10.200.0.0/16");
  cfg.cells.ipv6_prefix = *parse_cidr("fd6d:7477:6172::/48");
  SectionPositions pos;
  try {
    const toml::table root = toml::parse(text, source_name);
    read_root(root, cfg, diag, pos);
  } catch (const toml::parse_error& e) {
    diag.error(e.source(), e.description());
  }
  if (diag.empty()) detail::validate_config(cfg, pos, diag);
  if (!diag.empty()) return base::fail(base::Errc::kBadInput, diag.text());
  return cfg;
}

base::Result<Config> load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return base::fail_errno("open config " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return base::fail_errno("read config " + path);
  return parse_config(buf.str(), path);
}

}  // namespace mtw::supervisor
