#include "api/json_out.h"

#include <boost/json.hpp>

namespace mtw::api::detail {
namespace json = boost::json;
namespace {

json::value opt_time(const std::optional<UnixSeconds>& t) {
  if (!t) return nullptr;
  return *t;
}

json::object counters(const std::vector<std::pair<std::string_view, std::uint64_t>>& c,
                      json::storage_ptr sp = {}) {
  json::object o(std::move(sp));
  o.reserve(c.size());
  for (const auto& [k, v] : c) o[k] = v;
  return o;
}

// The "middle" object of a user's status: the middle-proxy counters of the
// worker's last report under short names (0 before the first report).
struct MiddleField {
  std::string_view key, counter;
};
constexpr MiddleField kMiddleFields[] = {
    {"connections", "middle_connections"}, {"clients", "middle_clients"},
    {"errors", "middle_errors"},           {"relays", "middle_relays"},
    {"fallbacks", "middle_fallbacks"},     {"clusters_down", "middle_down"}};

std::uint64_t worker_counter(const UserStatus& s, std::string_view name) {
  for (const auto& [k, v] : s.worker_counters)
    if (k == name) return v;
  return 0;
}

json::value origin_name(supervisor::UserOrigin o) {
  return o == supervisor::UserOrigin::kConfig ? "config" : "runtime";
}

}  // namespace

json::value to_json(const ServerStatus& s) {
  json::array listeners;
  for (const auto& l : s.listeners) listeners.emplace_back(l);
  return json::object{{"version", s.version},
                      {"started_at", s.started_at},
                      {"uptime_s", s.uptime_s},
                      {"listeners", std::move(listeners)},
                      {"users_total", s.users_total},
                      {"users_running", s.users_running},
                      {"users_throttled", s.users_throttled},
                      {"users_failed", s.users_failed},
                      {"cells", s.cells},
                      {"connections", s.connections},
                      {"gate_pid", s.gate_pid},
                      {"gate_ready", s.gate_ready},
                      {"gate_restarts", s.gate_restarts},
                      {"gate_counters", counters(s.gate_counters)},
                      {"masked_total", s.masked_total},
                      {"handoffs_total", s.handoffs_total},
                      {"direct_handoffs_total", s.direct_handoffs_total},
                      {"memory_bound", s.memory_bound},
                      {"sweeps", s.sweeps},
                      {"sweep_cpu_ns_total", s.sweep_cpu_ns_total},
                      {"middle", json::object{{"wanted", s.middle.wanted},
                                              {"ready", s.middle.ready},
                                              {"generation", s.middle.generation},
                                              {"changed_at", s.middle.changed_at},
                                              {"last_success_at", s.middle.last_success_at},
                                              {"refreshes", s.middle.refreshes},
                                              {"refresh_failures", s.middle.refresh_failures},
                                              {"last_error", s.middle.last_error}}}};
}

json::value to_json(const supervisor::MaskProfilesView& v) {
  auto hex4 = [](std::uint16_t x) {
    static constexpr char kHex[] = "0123456789abcdef";
    return std::string{kHex[x >> 12], kHex[(x >> 8) & 15], kHex[(x >> 4) & 15], kHex[x & 15]};
  };
  json::array profiles;
  for (const auto& p : v.profiles) {
    json::array flight;
    for (const auto& r : p.flight) flight.push_back(json::array{r.min, r.max});
    profiles.push_back(json::object{{"domain", p.domain},
                                    {"target", p.target},
                                    {"source", supervisor::profile_origin_name(p.origin)},
                                    {"measured_at", p.measured_at},
                                    {"age_s", p.age_s},
                                    {"next_probe_at", p.next_probe_at},
                                    {"last_attempt_at", p.last_attempt_at},
                                    {"last_error", p.last_error},
                                    {"samples", p.samples},
                                    {"cipher", hex4(p.cipher)},
                                    {"key_share_group", hex4(p.key_share_group)},
                                    {"ccs", p.ccs},
                                    {"flight_records", p.flight.size()},
                                    {"flight", std::move(flight)},
                                    {"flight_wire_min", p.flight_wire.min},
                                    {"flight_wire_max", p.flight_wire.max},
                                    {"latency_ms", json::object{{"min", p.latency.min_ms},
                                                                {"median", p.latency.median_ms},
                                                                {"max", p.latency.max_ms}}}});
  }
  return json::object{{"probing", v.probing}, {"profiles", std::move(profiles)}};
}

json::value to_json(const ServerStatus::Fleet& f) {
  auto opt = [](const std::optional<UnixSeconds>& v) {
    return v ? json::value(*v) : json::value(nullptr);
  };
  json::array hosts;
  for (const auto& h : f.hosts) {
    // The age as of the read, so a client needs no clock of its own; null
    // for a host that has not swept yet.
    json::value age = nullptr;
    if (h.last_sweep_at && f.read_at >= *h.last_sweep_at) age = f.read_at - *h.last_sweep_at;
    hosts.push_back(json::object{{"name", h.name},
                                 {"this_host", h.name == f.this_host},
                                 {"first_seen", opt(h.first_seen)},
                                 {"last_sweep_at", opt(h.last_sweep_at)},
                                 {"last_sweep_age_s", std::move(age)},
                                 {"last_sweep_seq", h.last_seq}});
  }
  return json::object{{"backend", f.backend},
                      {"this_host", f.this_host},
                      {"read_at", f.read_at},
                      {"last_error", f.last_error},
                      {"hosts", std::move(hosts)}};
}

json::value to_json(const std::vector<ServerStatus::Upstream>& ups) {
  json::array out;
  for (const auto& u : ups)
    out.push_back(json::object{{"name", u.name},
                               {"type", u.type},
                               {"address", u.address},
                               {"auth", u.auth},
                               {"weight", u.weight},
                               {"source", u.source},
                               {"users", u.users},
                               {"workers_up", u.workers_up},
                               {"workers_down", u.workers_down},
                               {"connects", u.connects},
                               {"failures", u.failures},
                               {"marked_down", u.marked_down},
                               {"bytes_up", u.bytes_up},
                               {"bytes_down", u.bytes_down}});
  return json::object{{"upstreams", std::move(out)}};
}

namespace {

// JsonWriter's calls building a boost::json DOM instead of text, so that a
// model's fields are listed once (write_user_status) for both. Each value
// keeps the kind of its C++ type, as a DOM built directly would (counters
// uint64, ids int64), which D-Bus maps to its types. Not thread-safe.
class DomWriter {
 public:
  explicit DomWriter(json::storage_ptr sp) : sp_(std::move(sp)) {}

  DomWriter& begin_object() { return open(json::object(sp_)); }
  DomWriter& end_object() { return close(); }
  DomWriter& begin_array() { return open(json::array(sp_)); }
  DomWriter& end_array() { return close(); }
  DomWriter& key(std::string_view k) {
    key_ = k;
    return *this;
  }
  template <class T>
  DomWriter& value(const T& v) {
    return put(json::value(v, sp_));
  }
  template <class T>
  DomWriter& value(const std::optional<T>& v) {
    return v ? value(*v) : null();
  }
  DomWriter& null() { return put(json::value(nullptr, sp_)); }
  template <class T>
  DomWriter& field(std::string_view k, const T& v) {
    return key(k).value(v);
  }
  // The value written at the top level.
  json::value take() { return std::move(root_); }

 private:
  struct Open {
    json::value container;
    std::string_view key;  // its key in the enclosing object
  };
  DomWriter& open(json::value container) {
    open_.push_back({std::move(container), key_});
    return *this;
  }
  DomWriter& close() {
    Open done = std::move(open_.back());
    open_.pop_back();
    key_ = done.key;
    return put(std::move(done.container));
  }
  DomWriter& put(json::value v) {
    if (open_.empty()) {
      root_ = std::move(v);
    } else if (json::object* o = open_.back().container.if_object()) {
      o->emplace(key_, std::move(v));
    } else {
      open_.back().container.get_array().push_back(std::move(v));
    }
    return *this;
  }

  json::storage_ptr sp_;
  std::vector<Open> open_;
  std::string_view key_;  // keys are literals or views into the model being written
  json::value root_;
};

// kForever ("never") is null on the wire.
template <class Writer>
void time_or_never(Writer& w, std::string_view key, UnixSeconds t) {
  w.key(key);
  if (t == supervisor::kForever)
    w.null();
  else
    w.value(t);
}

// A user's status, the one list of its fields for both the text and the DOM.
template <class Writer>
void write_user_status(Writer& w, const UserStatus& s) {
  w.begin_object();
  w.field("name", s.name).field("id", s.id).field("state", s.state);
  w.field("fail_reason", s.fail_reason).field("mode", s.mode).field("enabled", s.enabled);
  w.field("expires_at", s.expires_at).field("worker_pid", s.worker_pid);
  w.field("worker_uid", s.worker_uid).field("restarts", s.restarts);
  w.key("cell");
  if (s.cell) {
    w.begin_object();
    w.field("netns", s.cell->netns).field("host_if", s.cell->host_if).field("ipv4", s.cell->ipv4);
    w.field("shaper_up_bps", s.cell->shaper_up_bps)
        .field("shaper_down_bps", s.cell->shaper_down_bps);
    w.end_object();
  } else {
    w.null();
  }
  w.field("connections", s.connections).field("held", s.held).field("refused", s.refused);
  w.field("connections_total", s.connections_total).field("unique_ips", s.unique_ips);
  w.field("online", s.online).field("last_seen", s.last_seen);
  w.key("quota").begin_object();
  w.field("state", supervisor::quota_state_name(s.quota.state));
  w.field("used_bytes", s.quota.used_bytes).field("quota_bytes", s.quota.quota_bytes);
  w.field("remaining_bytes", s.quota.remaining_bytes).field("period_start", s.quota.period.start);
  time_or_never(w, "period_end", s.quota.period.end);
  time_or_never(w, "resets_at", s.quota.resets_at);
  w.end_object();
  w.field("throttled", s.throttled).field("throttled_quota", s.throttled_quota);
  w.field("throttled_unique_ips", s.throttled_unique_ips)
      .field("throttle_reason", s.throttle_reason);
  w.field("rate_up_bps", s.rate_up_bps).field("rate_down_bps", s.rate_down_bps);
  w.field("measured_up_bps", s.measured_up_bps).field("measured_down_bps", s.measured_down_bps);
  w.field("share_up_bps", s.share_up_bps).field("share_down_bps", s.share_down_bps);
  w.field("bandwidth_weight", s.bandwidth_weight);
  w.field("bytes_up_total", s.bytes_up_total).field("bytes_down_total", s.bytes_down_total);
  w.field("egress_dropped", s.egress_dropped);
  w.key("middle").begin_object();
  for (const auto& f : kMiddleFields) w.field(f.key, worker_counter(s, f.counter));
  w.end_object();
  w.key("worker_counters").begin_object();
  for (const auto& [k, v] : s.worker_counters) w.field(k, v);
  w.end_object();
  w.key("upstream_names").begin_array();
  for (const auto& n : s.upstream_names) w.value(std::string_view(n));
  w.end_array();
  w.field("upstreams_inherited", s.upstreams_inherited);
  w.key("upstreams").begin_array();
  for (const auto& u : s.upstreams) {
    w.begin_object().field("name", u.name).field("up", u.up).field("connects", u.connects);
    w.field("failures", u.failures).field("bytes_up", u.bytes_up);
    w.field("bytes_down", u.bytes_down).field("marked_down", u.marked_down).end_object();
  }
  w.end_array();
  w.end_object();
}

}  // namespace

void write_json(JsonWriter& w, const UserStatus& s) { write_user_status(w, s); }

json::value to_json(const UserStatus& s, json::storage_ptr sp) {
  DomWriter w(std::move(sp));
  write_user_status(w, s);
  return w.take();
}

json::value limits_json(const supervisor::Limits& l, json::storage_ptr sp) {
  return json::object({{"rate_up_bps", l.rate_up_bps},
                       {"rate_down_bps", l.rate_down_bps},
                       {"quota_bytes", l.quota_bytes},
                       {"period", supervisor::period_name(l.period)},
                       {"anchor_day", l.anchor_day},
                       {"throttle_bps", l.throttle_bps},
                       {"warn_percent", l.warn_percent},
                       {"max_connections", l.max_connections},
                       {"max_unique_ips", l.max_unique_ips},
                       {"on_demand", l.on_demand},
                       {"idle_teardown_s", l.idle_teardown_s},
                       {"bandwidth_weight", l.bandwidth_weight}},
                      std::move(sp));
}

json::value overrides_json(const supervisor::LimitOverrides& o, json::storage_ptr sp) {
  json::object j(std::move(sp));
  if (o.rate_up_bps) j["rate_up_bps"] = *o.rate_up_bps;
  if (o.rate_down_bps) j["rate_down_bps"] = *o.rate_down_bps;
  if (o.quota_bytes) j["quota_bytes"] = *o.quota_bytes;
  if (o.period) j["period"] = supervisor::period_name(*o.period);
  if (o.anchor_day) j["anchor_day"] = *o.anchor_day;
  if (o.throttle_bps) j["throttle_bps"] = *o.throttle_bps;
  if (o.warn_percent) j["warn_percent"] = *o.warn_percent;
  if (o.max_connections) j["max_connections"] = *o.max_connections;
  if (o.max_unique_ips) j["max_unique_ips"] = *o.max_unique_ips;
  if (o.on_demand) j["on_demand"] = *o.on_demand;
  if (o.idle_teardown_s) j["idle_teardown_s"] = *o.idle_teardown_s;
  if (o.bandwidth_weight) j["bandwidth_weight"] = *o.bandwidth_weight;
  return j;
}

namespace {

// null: [egress] upstreams; []: direct.
json::value upstreams_json(const std::optional<std::vector<std::string>>& names,
                           const json::storage_ptr& sp) {
  if (!names) return json::value(nullptr, sp);
  json::array a(sp);
  for (const auto& n : *names) a.emplace_back(n);
  return a;
}

}  // namespace

json::value to_json(const UserRecord& r, const UserStatus* status, json::storage_ptr sp) {
  const supervisor::StoredUser& u = r.user;
  json::array secrets(sp);
  for (const auto& s : r.secret_info)
    secrets.push_back(
        json::object({{"secret", s.secret}, {"expires_at", opt_time(s.expires_at)}}, sp));
  return json::object({{"name", u.name},
                       {"id", u.id},
                       {"enabled", u.enabled},
                       {"expires_at", opt_time(u.expires_at)},
                       {"comment", u.comment},
                       {"ad_tag", u.ad_tag.empty() ? json::value(nullptr) : json::value(u.ad_tag)},
                       {"upstreams", upstreams_json(u.upstreams, sp)},
                       // Write-only: whether one is set, never the value.
                       {"upstream_password_set", !u.upstream_password.empty()},
                       {"origin", origin_name(u.origin)},
                       {"created_at", u.created_at},
                       {"secrets", std::move(secrets)},
                       {"limits", limits_json(r.limits, sp)},
                       {"overrides", overrides_json(u.overrides, sp)},
                       {"status", status ? to_json(*status, sp) : json::value(nullptr)}},
                      sp);
}

json::value to_json(const LiveEvent& e) {
  return json::object{
      {"seq", e.seq}, {"at", e.at}, {"user", e.user}, {"kind", e.kind}, {"detail", e.detail}};
}

json::value to_json(const ClientIps& c) {
  json::array ips;
  ips.reserve(c.ips.size());
  for (const auto& i : c.ips)
    ips.push_back(
        json::object{{"address", i.address}, {"key", i.key}, {"connections", i.connections}});
  return json::object{{"name", c.name},
                      {"ipv6_prefix", c.ipv6_prefix},
                      {"truncated", c.truncated},
                      {"ips", std::move(ips)}};
}

json::value to_json(const Links& l) {
  json::array ports, tg, https;
  for (auto p : l.ports) ports.emplace_back(p);
  for (const auto& s : l.tg) tg.emplace_back(s);
  for (const auto& s : l.https) https.emplace_back(s);
  return json::object{{"host", l.host},
                      {"ports", std::move(ports)},
                      {"tg", std::move(tg)},
                      {"https", std::move(https)}};
}

}  // namespace mtw::api::detail
