// An in-memory api::Service for the API's unit tests only (the daemon's real
// implementation is tested end to end elsewhere). Guarded by a mutex because
// the tests read its state from the test thread while the server runs on
// the io_context thread.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "api/service.h"
#include "proto/secret.h"

namespace mtw::api::testing {

inline constexpr UnixSeconds kFakeNow = 1'790'000'000;  // 2026-09-21

class FakeService : public Service {
 public:
  FakeService() {
    UserRecord cfg;
    cfg.user.id = next_id_++;
    cfg.user.name = "cfguser";
    cfg.user.secrets = {"00112233445566778899aabbccddeeff"};
    cfg.user.comment = "from file";
    cfg.user.origin = supervisor::UserOrigin::kConfig;
    cfg.user.created_at = kFakeNow - 100;
    cfg.secret_info = {{"00112233445566778899aabbccddeeff", {}}};
    cfg.limits = defaults_;
    users_["cfguser"] = cfg;
  }

  bool reload_ok = true;
  std::vector<std::string> reload_restart_needed;  // what reload() says waits for a restart
  std::uint64_t reloads = 0;
  std::optional<base::Error> next_error;  // returned once by the next update_user
  std::size_t room = 1000;                // users create_user allows, like [cells]

  void add_event(std::string user, std::string kind, std::string detail) {
    std::lock_guard l(mu_);
    events_.push_back(
        {events_.size() + 1, kFakeNow, std::move(user), std::move(kind), std::move(detail)});
  }

  // Everything the API could change, as text: equal dumps = unchanged state.
  std::string dump() {
    std::lock_guard l(mu_);
    std::ostringstream o;
    for (const auto& [name, r] : users_) {
      const auto& u = r.user;
      const auto& ov = u.overrides;
      o << name << " id=" << u.id << " en=" << u.enabled << " exp=" << u.expires_at.value_or(-1)
        << " c=" << u.comment << " ru=" << ov.rate_up_bps.value_or(-1ull)
        << " rd=" << ov.rate_down_bps.value_or(-1ull) << " q=" << ov.quota_bytes.value_or(-1ull)
        << " p=" << (ov.period ? int(*ov.period) : -1) << " a=" << ov.anchor_day.value_or(-1)
        << " t=" << ov.throttle_bps.value_or(-1ull) << " w=" << ov.warn_percent.value_or(-1)
        << " mc=" << ov.max_connections.value_or(-1u) << " mi=" << ov.max_unique_ips.value_or(-1u)
        << " od=" << (ov.on_demand ? int(*ov.on_demand) : -1)
        << " it=" << ov.idle_teardown_s.value_or(-1u) << " bw=" << ov.bandwidth_weight.value_or(-1u)
        << " resets=" << resets_[name] << " upw=" << u.upstream_password
        << " up=" << (u.upstreams ? "[" : "inherit");
      if (u.upstreams)
        for (const auto& n : *u.upstreams) o << n << ",";
      for (const auto& s : r.secret_info)
        o << " s=" << s.secret << "/" << s.expires_at.value_or(-1);
      o << "\n";
    }
    o << "reloads=" << reloads << " next_id=" << next_id_ << "\n";
    return o.str();
  }

  Result<std::vector<UserRecord>> list_users() override {
    std::lock_guard l(mu_);
    std::vector<UserRecord> out;
    for (const auto& [n, r] : users_) out.push_back(r);
    return out;
  }
  Result<UserRecord> get_user(std::string_view name) override {
    std::lock_guard l(mu_);
    auto* r = find(name);
    if (!r) return missing(name);
    return *r;
  }
  Result<UserRecord> create_user(const NewUser& nu) override {
    std::lock_guard l(mu_);
    if (find(nu.name)) return base::fail(base::Errc::kExists, "user " + nu.name + " exists");
    if (users_.size() >= room)
      return base::fail(base::Errc::kExhausted, "no room for another user");
    UserRecord r;
    r.user.id = next_id_;
    r.user.name = nu.name;
    r.user.enabled = nu.enabled;
    r.user.expires_at = nu.expires_at;
    r.user.comment = nu.comment;
    r.user.upstreams = nu.upstreams;
    r.user.upstream_password = nu.upstream_password;
    r.user.created_at = kFakeNow;
    r.user.origin = supervisor::UserOrigin::kRuntime;
    std::vector<std::string> secrets = nu.secrets;
    if (secrets.empty()) {
      auto s = proto::generate_secret(proto::SecretKind::kFakeTls,
                                      nu.tls_domain.empty() ? "www.google.com" : nu.tls_domain);
      secrets.push_back(proto::format_hex(*s));
    }
    for (const auto& s : secrets) {
      if (secret_taken(s)) return base::fail(base::Errc::kExists, "secret taken");
      r.user.secrets.push_back(s);
      r.secret_info.push_back({s, {}});
    }
    apply_limits(r, nu.limits);
    ++next_id_;
    users_[nu.name] = r;
    return r;
  }
  Result<UserRecord> update_user(std::string_view name, const UserPatch& p) override {
    std::lock_guard l(mu_);
    if (next_error) return tl::unexpected(*std::exchange(next_error, std::nullopt));
    auto* r = find(name);
    if (!r) return missing(name);
    if (r->user.origin == supervisor::UserOrigin::kConfig)
      return base::fail(base::Errc::kPermission,
                        "user " + std::string(name) + " is declared in the configuration file");
    if (p.enabled) r->user.enabled = *p.enabled;
    if (p.expires_at) r->user.expires_at = *p.expires_at;
    if (p.comment) r->user.comment = *p.comment;
    if (p.upstreams) r->user.upstreams = *p.upstreams;
    if (p.upstream_password) r->user.upstream_password = *p.upstream_password;
    apply_limits(*r, p);
    return *r;
  }
  Result<void> delete_user(std::string_view name) override {
    std::lock_guard l(mu_);
    auto* r = find(name);
    if (!r) return missing(name);
    if (r->user.origin == supervisor::UserOrigin::kConfig)
      return base::fail(base::Errc::kPermission, "declared in the configuration file");
    users_.erase(std::string(name));
    return {};
  }
  Result<UserRecord> rotate_secret(std::string_view name, std::string_view new_secret,
                                   std::uint32_t grace_s) override {
    std::lock_guard l(mu_);
    auto* r = find(name);
    if (!r) return missing(name);
    std::string s(new_secret);
    if (s.empty()) s = proto::format_hex(*proto::generate_secret(proto::SecretKind::kSecure));
    if (secret_taken(s)) return base::fail(base::Errc::kExists, "secret taken");
    std::vector<SecretInfo> kept;
    for (auto& i : r->secret_info)
      if (grace_s > 0) kept.push_back({i.secret, i.expires_at.value_or(kFakeNow + grace_s)});
    kept.push_back({s, {}});
    r->secret_info = kept;
    r->user.secrets.clear();
    for (auto& i : kept) r->user.secrets.push_back(i.secret);
    return *r;
  }
  Result<void> reset_usage(std::string_view name) override {
    std::lock_guard l(mu_);
    if (!find(name)) return missing(name);
    ++resets_[std::string(name)];
    return {};
  }
  Result<UserStatus> user_status(std::string_view name) override {
    std::lock_guard l(mu_);
    auto* r = find(name);
    if (!r) return missing(name);
    return status_of(*r);
  }
  Result<ClientIps> client_ips(std::string_view name) override {
    std::lock_guard l(mu_);
    if (!find(name)) return missing(name);
    ClientIps c;
    c.name = std::string(name);
    if (auto it = open_ips.find(c.name); it != open_ips.end()) c.ips = it->second;
    return c;
  }
  std::vector<UserStatus> all_status() override {
    std::lock_guard l(mu_);
    std::vector<UserStatus> out;
    for (const auto& [n, r] : users_) out.push_back(status_of(r));
    return out;
  }
  // What client_ips() answers per user (none: an empty list).
  std::map<std::string, std::vector<supervisor::OpenIp>> open_ips;
  Result<std::vector<supervisor::DayUsage>> daily_usage(std::string_view name, UnixSeconds from,
                                                        UnixSeconds to) override {
    std::lock_guard l(mu_);
    if (!find(name)) return missing(name);
    last_from = from;
    last_to = to;
    // 1 MB up / 2 MB down on the first day of the range only.
    return std::vector<supervisor::DayUsage>{{from / 86'400, {1'000'000, 2'000'000}}};
  }
  Result<std::vector<supervisor::MonthUsage>> monthly_usage(std::string_view name, UnixSeconds from,
                                                            UnixSeconds to) override {
    std::lock_guard l(mu_);
    if (!find(name)) return missing(name);
    last_from = from;
    last_to = to;
    return std::vector<supervisor::MonthUsage>{{2026, 9, {5, 7}}};
  }
  ServerStatus server_status() override {
    ServerStatus s;
    s.version = "0.1.0-test";
    s.started_at = kFakeNow - 60;
    s.uptime_s = 60;
    s.listeners = {"0.0.0.0:443"};
    s.gate_ready = true;
    s.gate_counters = {{"fail_bad_handshake", 3}, {"fail_replay", 1}, {"masked", 4}};
    s.mask_profiles.probing = true;
    supervisor::MaskProfileView m;
    m.domain = "www.example.com";
    m.target = "www.example.com:443";
    m.origin = supervisor::ProfileOrigin::kStored;
    m.measured_at = kFakeNow - 100;
    m.age_s = 100;
    m.cipher = 0x1302;
    m.flight = {{36, 36}, {900, 910}};
    m.flight_wire = {956, 966};
    m.latency = {1, 2, 3};
    s.mask_profiles.profiles.push_back(m);
    s.fleet.backend = "postgresql";
    s.fleet.this_host = "edge-1";
    s.fleet.read_at = kFakeNow;
    s.fleet.hosts = {{"edge-1", kFakeNow - 3600, kFakeNow - 1, 40},
                     {"edge-2", kFakeNow - 7200, std::nullopt, 0}};
    ServerStatus::Upstream up;
    up.name = "dante";
    up.type = "socks5";
    up.address = "198.18.0.2:1080";
    up.auth = "user-name";
    up.weight = 3;
    up.users = 2;
    up.workers_up = 1;
    up.workers_down = 1;
    up.connects = 40;
    s.upstreams.push_back(up);
    std::lock_guard l(mu_);
    s.users_total = static_cast<std::uint32_t>(users_.size());
    return s;
  }
  Result<Links> links(std::string_view name) override {
    std::lock_guard l(mu_);
    auto* r = find(name);
    if (!r) return missing(name);
    Links out{"proxy.example.org", {443}, {}, {}};
    for (const auto& s : r->user.secrets) {
      out.tg.push_back("tg://proxy?server=proxy.example.org&port=443&secret=" + s);
      out.https.push_back("https://t.me/proxy?server=proxy.example.org&port=443&secret=" + s);
    }
    return out;
  }
  std::vector<LiveEvent> events(std::uint64_t after, std::size_t limit) override {
    std::lock_guard l(mu_);
    std::vector<LiveEvent> out;
    for (const auto& e : events_)
      if (e.seq > after && out.size() < limit) out.push_back(e);
    return out;
  }
  Result<ReloadOutcome> reload() override {
    std::lock_guard l(mu_);
    if (!reload_ok) return base::fail(base::Errc::kBadInput, "/etc/mtwarden.toml:3:1: bad key");
    ++reloads;
    return ReloadOutcome{reload_restart_needed};
  }

  UnixSeconds last_from = 0, last_to = 0;

 private:
  UserRecord* find(std::string_view name) {
    auto it = users_.find(std::string(name));
    return it == users_.end() ? nullptr : &it->second;
  }
  static tl::unexpected<base::Error> missing(std::string_view name) {
    return base::fail(base::Errc::kNotFound, "no user named " + std::string(name));
  }
  bool secret_taken(const std::string& s) const {
    for (const auto& [n, r] : users_)
      for (const auto& x : r.user.secrets)
        if (x == s) return true;
    return false;
  }
  void apply_limits(UserRecord& r, const UserPatch& p) {
    supervisor::apply_limit_patch(p, r.user.overrides);
    r.limits = supervisor::resolve_limits(defaults_, r.user.overrides);
  }
  UserStatus status_of(const UserRecord& r) const {
    UserStatus s;
    s.name = r.user.name;
    s.id = r.user.id;
    s.enabled = r.user.enabled;
    s.state = r.user.enabled ? "running" : "disabled";
    s.expires_at = r.user.expires_at;
    s.quota = supervisor::quota_status(r.limits, 1'000, kFakeNow);
    s.connections = 2;
    s.online = true;
    s.last_seen = kFakeNow;
    s.bytes_up_total = 10;
    s.bytes_down_total = 20;
    return s;
  }

  std::mutex mu_;
  supervisor::Limits defaults_;
  std::map<std::string, UserRecord> users_;
  std::map<std::string, int> resets_;
  std::vector<LiveEvent> events_;
  std::int64_t next_id_ = 1;
};

}  // namespace mtw::api::testing
