#include "api/metrics.h"

#include <array>
#include <map>
#include <string_view>

#include <fmt/format.h>

#include "supervisor/middle_material.h"

namespace mtw::api {
namespace {

constexpr std::array<std::string_view, 6> kUserStates = {"disabled", "idle",    "starting",
                                                         "running",  "backoff", "failed"};
constexpr std::string_view kFailPrefix = "fail_";

// Label values: backslash, double quote and newline escaped (format 0.0.4).
std::string escape(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

class Writer {
 public:
  // # HELP and # TYPE once per family, before its samples.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  template <class V>
  void sample(std::string_view name, std::string_view labels, V value) {
    if (labels.empty())
      fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    else
      fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string user_label(const UserStatus& u) { return "user=\"" + escape(u.name) + "\""; }

template <class F>
void per_user(Writer& w, const std::vector<UserStatus>& users, std::string_view name,
              std::string_view type, std::string_view help, F&& value) {
  w.family(name, type, help);
  for (const auto& u : users) w.sample(name, user_label(u), value(u));
}

// Per user and egress upstream, from the worker's last report.
void upstream_metrics(Writer& w, const std::vector<UserStatus>& users) {
  auto labels = [](const UserStatus& u, const UserStatus::Upstream& up) {
    return user_label(u) + ",upstream=\"" + escape(up.name) + "\"";
  };
  struct Family {
    std::string_view name, type, help;
    std::uint64_t UserStatus::Upstream::*field;
  };
  static constexpr Family kFamilies[] = {
      {"mtwarden_user_upstream_connects_total", "counter",
       "DC connections the user's worker made through this upstream.",
       &UserStatus::Upstream::connects},
      {"mtwarden_user_upstream_failures_total", "counter",
       "Connect or SOCKS handshake failures through this upstream (health checks included).",
       &UserStatus::Upstream::failures},
      {"mtwarden_user_upstream_marked_down_total", "counter",
       "Times this upstream was marked down for the user (failover events).",
       &UserStatus::Upstream::marked_down},
  };
  for (const auto& f : kFamilies) {
    w.family(f.name, f.type, f.help);
    for (const auto& u : users)
      for (const auto& up : u.upstreams) w.sample(f.name, labels(u, up), up.*f.field);
  }
  w.family("mtwarden_user_upstream_bytes_total", "counter",
           "Payload bytes of the user's finished connections through this upstream.");
  for (const auto& u : users)
    for (const auto& up : u.upstreams) {
      w.sample("mtwarden_user_upstream_bytes_total", labels(u, up) + ",direction=\"up\"",
               up.bytes_up);
      w.sample("mtwarden_user_upstream_bytes_total", labels(u, up) + ",direction=\"down\"",
               up.bytes_down);
    }
  w.family("mtwarden_user_upstream_up", "gauge",
           "1 while the user's worker counts this upstream as up.");
  for (const auto& u : users)
    for (const auto& up : u.upstreams)
      w.sample("mtwarden_user_upstream_up", labels(u, up), up.up ? 1 : 0);
}

// A counter of the worker's last report (0 before the first).
std::uint64_t worker_counter(const UserStatus& u, std::string_view name) {
  for (const auto& [k, v] : u.worker_counters)
    if (k == name) return v;
  return 0;
}

void middle_user_metrics(Writer& w, const std::vector<UserStatus>& users) {
  struct Family {
    std::string_view metric, type, help, counter;
  };
  static constexpr Family kFamilies[] = {
      {"mtwarden_user_middle_connections", "gauge",
       "Connections of the user's worker to middle proxies (open or opening).",
       "middle_connections"},
      {"mtwarden_user_middle_clients", "gauge", "Clients multiplexed over them.", "middle_clients"},
      {"mtwarden_user_middle_relays_total", "counter",
       "Client connections relayed through a middle proxy (ad tag).", "middle_relays"},
      {"mtwarden_user_middle_fallbacks_total", "counter",
       "Tagged client connections sent direct because the middle proxies failed.",
       "middle_fallbacks"},
      {"mtwarden_user_middle_errors_total", "counter",
       "Middle-proxy connections failed (connect, handshake, stall, bad bytes).", "middle_errors"},
      {"mtwarden_user_middle_fallback", "gauge",
       "Clusters whose middle proxies are failing (new tagged clients go direct).", "middle_down"},
  };
  for (const auto& f : kFamilies)
    per_user(w, users, f.metric, f.type, f.help,
             [&](const UserStatus& u) { return worker_counter(u, f.counter); });
  // One sample per mode, 1 for the one in force (an enum as labels).
  w.family("mtwarden_user_mode", "gauge",
           "1 for the user's mode: direct, middle (ad tag, via the middle proxies) or fallback "
           "(tagged, but new connections go direct).");
  for (const auto& u : users)
    for (const auto m : supervisor::kMiddleModes) {
      const auto name = supervisor::middle_mode_name(m);
      w.sample("mtwarden_user_mode", user_label(u) + ",mode=\"" + std::string(name) + "\"",
               u.mode == name ? 1 : 0);
    }
}

void user_metrics(Writer& w, const std::vector<UserStatus>& users) {
  middle_user_metrics(w, users);
  w.family("mtwarden_user_bytes_total", "counter",
           "Bytes moved by the user's cell (veth counters) since the supervisor started.");
  for (const auto& u : users) {
    w.sample("mtwarden_user_bytes_total", user_label(u) + ",direction=\"up\"", u.bytes_up_total);
    w.sample("mtwarden_user_bytes_total", user_label(u) + ",direction=\"down\"",
             u.bytes_down_total);
  }
  per_user(w, users, "mtwarden_user_connections", "gauge", "Open connections of the user.",
           [](const UserStatus& u) { return u.connections; });
  per_user(w, users, "mtwarden_user_connections_total", "counter",
           "Connections handed to the user's worker since the supervisor started.",
           [](const UserStatus& u) { return u.connections_total; });
  per_user(w, users, "mtwarden_user_held_connections", "gauge",
           "Handshakes waiting in the user's hold queue.",
           [](const UserStatus& u) { return u.held; });
  per_user(w, users, "mtwarden_user_refused_connections_total", "counter",
           "Connections refused (hold queue full or hold expired) and sent to the mask host.",
           [](const UserStatus& u) { return u.refused; });
  w.family("mtwarden_user_throttled", "gauge",
           "1 while the user runs at the throttle rate for this reason.");
  for (const auto& u : users) {
    w.sample("mtwarden_user_throttled", user_label(u) + ",reason=\"quota\"",
             u.throttled_quota ? 1 : 0);
    w.sample("mtwarden_user_throttled", user_label(u) + ",reason=\"unique_ips\"",
             u.throttled_unique_ips ? 1 : 0);
  }
  w.family("mtwarden_user_bandwidth_share_bps", "gauge",
           "The user's share of the host bandwidth budget, TCP payload bits/s (0 = no budget).");
  for (const auto& u : users) {
    w.sample("mtwarden_user_bandwidth_share_bps", user_label(u) + ",direction=\"up\"",
             u.share_up_bps);
    w.sample("mtwarden_user_bandwidth_share_bps", user_label(u) + ",direction=\"down\"",
             u.share_down_bps);
  }
  w.family("mtwarden_user_quota_used_ratio", "gauge",
           "Share of the period's quota used (users with a quota only).");
  for (const auto& u : users)
    if (u.quota.quota_bytes > 0)
      w.sample("mtwarden_user_quota_used_ratio", user_label(u),
               static_cast<double>(u.quota.used_bytes) / static_cast<double>(u.quota.quota_bytes));
  per_user(w, users, "mtwarden_user_unique_ips", "gauge",
           "Distinct client addresses within the unique-IP window.",
           [](const UserStatus& u) { return u.unique_ips; });
  per_user(w, users, "mtwarden_user_worker_restarts_total", "counter",
           "Restarts of the user's worker.", [](const UserStatus& u) { return u.restarts; });
  per_user(w, users, "mtwarden_user_egress_dropped_packets_total", "counter",
           "Packets of the user's cell dropped by its egress filter.",
           [](const UserStatus& u) { return u.egress_dropped; });
  upstream_metrics(w, users);
  w.family("mtwarden_user_up", "gauge", "1 for the user's current state, 0 for the others.");
  for (const auto& u : users)
    for (auto s : kUserStates)
      w.sample("mtwarden_user_up", user_label(u) + ",state=\"" + std::string(s) + "\"",
               u.state == s ? 1 : 0);
}

// One series per fake-TLS domain; the built-in profile (no measurement yet)
// shows as source="builtin" with no measured timestamp or age.
void mask_profile_metrics(Writer& w, const supervisor::MaskProfilesView& v) {
  w.family("mtwarden_mask_probing", "gauge",
           "1 when the mask profiles are probed ([mask] enabled and probe).");
  w.sample("mtwarden_mask_probing", "", v.probing ? 1 : 0);
  auto dom = [](const supervisor::MaskProfileView& p) {
    return "domain=\"" + escape(p.domain) + "\"";
  };
  w.family("mtwarden_mask_profile_info", "gauge",
           "1 per fake-TLS domain, labelled with its mask target and where the profile in use "
           "comes from: measured (this run), stored (read from disk at start), builtin (none "
           "measured yet).");
  for (const auto& p : v.profiles)
    w.sample("mtwarden_mask_profile_info",
             dom(p) + ",target=\"" + escape(p.target) + "\",source=\"" +
                 std::string(supervisor::profile_origin_name(p.origin)) + "\"",
             1);
  w.family("mtwarden_mask_profile_measured_timestamp_seconds", "gauge",
           "When the profile in use was measured (absent for the built-in profile).");
  for (const auto& p : v.profiles)
    if (p.origin != supervisor::ProfileOrigin::kBuiltin)
      w.sample("mtwarden_mask_profile_measured_timestamp_seconds", dom(p), p.measured_at);
  w.family("mtwarden_mask_profile_age_seconds", "gauge",
           "Age of the profile in use (absent for the built-in profile).");
  for (const auto& p : v.profiles)
    if (p.origin != supervisor::ProfileOrigin::kBuiltin)
      w.sample("mtwarden_mask_profile_age_seconds", dom(p), p.age_s);
  w.family("mtwarden_mask_profile_next_probe_timestamp_seconds", "gauge",
           "When the domain's mask is probed next.");
  for (const auto& p : v.profiles)
    w.sample("mtwarden_mask_profile_next_probe_timestamp_seconds", dom(p), p.next_probe_at);
  w.family("mtwarden_mask_profile_probe_failing", "gauge",
           "1 when the last probe of the domain's mask failed (the last good or built-in "
           "profile stays in use).");
  for (const auto& p : v.profiles)
    w.sample("mtwarden_mask_profile_probe_failing", dom(p), p.last_error.empty() ? 0 : 1);
  w.family("mtwarden_mask_profile_flight_records", "gauge",
           "Encrypted records in the mask's first flight.");
  for (const auto& p : v.profiles)
    w.sample("mtwarden_mask_profile_flight_records", dom(p), p.flight.size());
  w.family("mtwarden_mask_profile_flight_bytes", "gauge",
           "Wire bytes of the mask's encrypted first flight, the range the fake-TLS answer's "
           "record is drawn from.");
  for (const auto& p : v.profiles) {
    w.sample("mtwarden_mask_profile_flight_bytes", dom(p) + ",bound=\"min\"", p.flight_wire.min);
    w.sample("mtwarden_mask_profile_flight_bytes", dom(p) + ",bound=\"max\"", p.flight_wire.max);
  }
  w.family("mtwarden_mask_profile_handshake_seconds", "gauge",
           "The mask's measured TLS handshake latency (connect to handshake done).");
  for (const auto& p : v.profiles) {
    w.sample("mtwarden_mask_profile_handshake_seconds", dom(p) + ",stat=\"min\"",
             p.latency.min_ms / 1000.0);
    w.sample("mtwarden_mask_profile_handshake_seconds", dom(p) + ",stat=\"median\"",
             p.latency.median_ms / 1000.0);
    w.sample("mtwarden_mask_profile_handshake_seconds", dom(p) + ",stat=\"max\"",
             p.latency.max_ms / 1000.0);
  }
}

void server_metrics(Writer& w, const ServerStatus& s, const std::vector<UserStatus>& users) {
  w.family("mtwarden_gate_up", "gauge", "1 while the gate is running and ready.");
  w.sample("mtwarden_gate_up", "", s.gate_ready ? 1 : 0);
  w.family("mtwarden_gate_restarts_total", "counter", "Restarts of the gate.");
  w.sample("mtwarden_gate_restarts_total", "", s.gate_restarts);
  w.family("mtwarden_handshake_failures_total", "counter",
           "Client handshakes the gate did not recognise, by reason.");
  for (const auto& [name, value] : s.gate_counters)
    if (name.starts_with(kFailPrefix))
      w.sample("mtwarden_handshake_failures_total",
               "reason=\"" + escape(name.substr(kFailPrefix.size())) + "\"", value);
  w.family("mtwarden_masked_connections_total", "counter",
           "Connections handed back to the gate for masking.");
  w.sample("mtwarden_masked_connections_total", "", s.masked_total);
  // The gate's own mask outcomes (0 until its first report).
  auto gate_counter = [&](std::string_view name) {
    for (const auto& [n, v] : s.gate_counters)
      if (n == name) return v;
    return std::uint64_t{0};
  };
  w.family("mtwarden_mask_unreachable_total", "counter",
           "Connections the gate could not hand to their mask host (refused, timed out, or a "
           "loop to this listener); they were read and dropped instead.");
  w.sample("mtwarden_mask_unreachable_total", "", gate_counter("mask_unreachable"));
  w.family("mtwarden_mask_dropped_total", "counter",
           "Hellos naming a domain no secret has, closed by [mask] unknown_sni = \"drop\".");
  w.sample("mtwarden_mask_dropped_total", "", gate_counter("mask_dropped"));
  w.family("mtwarden_handoffs_total", "counter", "Connections handed to workers.");
  w.sample("mtwarden_handoffs_total", "", s.handoffs_total);
  w.family("mtwarden_direct_handoffs_total", "counter",
           "Connections the gate handed to workers over lanes, without the supervisor (part of "
           "handoffs).");
  w.sample("mtwarden_direct_handoffs_total", "", s.direct_handoffs_total);
  w.family("mtwarden_connections", "gauge", "Open client connections of all users.");
  w.sample("mtwarden_connections", "", s.connections);
  w.family("mtwarden_cells", "gauge", "Cells (network namespaces) up.");
  w.sample("mtwarden_cells", "", s.cells);
  std::map<std::string_view, std::uint64_t> by_state;
  for (auto st : kUserStates) by_state[st] = 0;
  for (const auto& u : users) ++by_state[u.state];
  w.family("mtwarden_users", "gauge", "Users by state.");
  for (const auto& [st, n] : by_state)
    w.sample("mtwarden_users", "state=\"" + escape(st) + "\"", n);
  w.family("mtwarden_sweep_cpu_seconds_total", "counter", "CPU time spent in accounting sweeps.");
  w.sample("mtwarden_sweep_cpu_seconds_total", "", static_cast<double>(s.sweep_cpu_ns_total) / 1e9);
  w.family("mtwarden_webhook_deliveries_total", "counter",
           "Events posted to webhook receivers (one per event and receiver), by outcome: "
           "delivered, failed (gave up after the retries), dropped (queue full).");
  w.sample("mtwarden_webhook_deliveries_total", "result=\"delivered\"", s.webhooks_delivered);
  w.sample("mtwarden_webhook_deliveries_total", "result=\"failed\"", s.webhooks_failed);
  w.sample("mtwarden_webhook_deliveries_total", "result=\"dropped\"", s.webhooks_dropped);
  w.family("mtwarden_webhook_failed_attempts_total", "counter",
           "Webhook POST attempts that failed (no 2xx answer in time), retried or not.");
  w.sample("mtwarden_webhook_failed_attempts_total", "", s.webhook_failed_attempts);
  w.family("mtwarden_middle_material_ready", "gauge",
           "1 when a proxy secret and a middle-proxy config are at hand.");
  w.sample("mtwarden_middle_material_ready", "", s.middle.ready ? 1 : 0);
  w.family("mtwarden_middle_material_changed_timestamp_seconds", "gauge",
           "When the middle-proxy material last changed (0: not since start).");
  w.sample("mtwarden_middle_material_changed_timestamp_seconds", "", s.middle.changed_at);
  w.family("mtwarden_middle_material_success_timestamp_seconds", "gauge",
           "When every middle-proxy material source last answered well (0: never).");
  w.sample("mtwarden_middle_material_success_timestamp_seconds", "", s.middle.last_success_at);
  w.family("mtwarden_middle_material_refresh_failures_total", "counter",
           "Material downloads that failed or did not validate (the last good copy was kept).");
  w.sample("mtwarden_middle_material_refresh_failures_total", "", s.middle.refresh_failures);
  mask_profile_metrics(w, s.mask_profiles);
  w.family("mtwarden_fleet_host_last_sweep_timestamp_seconds", "gauge",
           "Each host sharing the store: when its last accounting sweep committed (absent "
           "before its first), as read from the store.");
  for (const auto& h : s.fleet.hosts)
    if (h.last_sweep_at)
      w.sample("mtwarden_fleet_host_last_sweep_timestamp_seconds",
               "host=\"" + escape(h.name) + "\"", *h.last_sweep_at);
  w.family("mtwarden_upstream_workers", "gauge",
           "Running workers whose last report counts this [[upstream]] up or down.");
  for (const auto& u : s.upstreams) {
    const std::string l = "upstream=\"" + escape(u.name) + "\"";
    w.sample("mtwarden_upstream_workers", l + ",state=\"up\"", u.workers_up);
    w.sample("mtwarden_upstream_workers", l + ",state=\"down\"", u.workers_down);
  }
  w.family("mtwarden_upstream_users", "gauge",
           "Users whose upstreams in force name this [[upstream]].");
  for (const auto& u : s.upstreams)
    w.sample("mtwarden_upstream_users", "upstream=\"" + escape(u.name) + "\"", u.users);
  w.family("mtwarden_uptime_seconds", "gauge", "Seconds since the supervisor started.");
  w.sample("mtwarden_uptime_seconds", "", s.uptime_s);
}

void api_metrics(Writer& w, const ApiCounters& a) {
  w.family("mtwarden_api_connections_refused_total", "counter",
           "API connections closed at accept because a connection cap was reached.");
  w.sample("mtwarden_api_connections_refused_total", "transport=\"unix\",reason=\"listener_full\"",
           a.refused_unix);
  w.sample("mtwarden_api_connections_refused_total", "transport=\"tcp\",reason=\"listener_full\"",
           a.refused_tcp_listener);
  w.sample("mtwarden_api_connections_refused_total", "transport=\"tcp\",reason=\"peer_full\"",
           a.refused_tcp_peer);
  w.family("mtwarden_api_auth_failures_total", "counter",
           "API requests refused for a missing or wrong bearer token.");
  w.sample("mtwarden_api_auth_failures_total", "transport=\"tcp\"", a.auth_failures_tcp);
}

}  // namespace

std::string metrics_text(const ServerStatus& server, const std::vector<UserStatus>& users,
                         const ApiCounters& api) {
  Writer w;
  user_metrics(w, users);
  server_metrics(w, server, users);
  api_metrics(w, api);
  return w.take();
}

}  // namespace mtw::api
