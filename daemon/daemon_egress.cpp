// The daemon's side of cell egress (supervisor/cell_egress.h): the sets
// follow the configuration and the workers' generations, and the per-cell
// drop counters become per-user counts and rate-limited warnings.
#include <fstream>
#include <map>
#include <sstream>

#include <spdlog/spdlog.h>

#include "daemon/daemon_impl.h"
#include "proto/proxy_config.h"

namespace mtw::daemon {

namespace {

// How often the drop counters are read (one nft list of a set holding only
// cells that dropped something).
constexpr auto kEgressPollEvery = std::chrono::seconds(5);
// How often names among the destinations are looked up again (a mask host
// behind a CDN changes addresses; the workers look it up themselves).
constexpr auto kEgressNamesEvery = std::chrono::minutes(10);

std::vector<std::string> system_nameservers() {
  std::ifstream in("/etc/resolv.conf");
  std::stringstream text;
  text << in.rdbuf();
  return resolv_conf_nameservers(text.str());
}

}  // namespace

CellEgress Daemon::current_egress() const {
  EgressInputs in;
  for (const auto& [id, u] : users_)
    for (const auto& text : u->user.secrets)
      if (auto sec = proto::parse_secret(text); sec && sec->kind == proto::SecretKind::kFakeTls)
        in.fake_tls_domains.push_back(sec->domain);
  // Workers dial the middle proxies of the list in force (either family).
  if (material_) {
    if (const auto m = material_->current()) {
      for (const auto& [text, family] : {std::pair{&m->config_v4, proto::IpFamily::kV4},
                                         {&m->config_v6, proto::IpFamily::kV6}}) {
        if (text->empty()) continue;
        if (auto pc = proto::parse_proxy_config(*text, family))
          for (const auto& [cluster, eps] : pc->clusters)
            in.middle_proxies.insert(in.middle_proxies.end(), eps.begin(), eps.end());
      }
    }
  }
  return cell_egress(cfg_, in);
}

void Daemon::egress_follow_users() {
  if (!egress_targets_dirty_ || !egress_) return;
  egress_targets_dirty_ = false;
  if (current_egress().mask == egress_mask_) return;
  (void)update_egress();  // logged there; on failure the previous sets stay
}

base::Result<void> Daemon::update_egress() {
  if (!host_) return {};
  if (!egress_) {
    egress_.emplace(
        [this](const std::vector<netns::EgressRule>& rules) { return host_->set_egress(rules); });
  }
  CellEgress wanted = current_egress();
  egress_mask_ = wanted.mask;
  EgressPlan plan = plan_egress(wanted, resolve_host, system_nameservers());
  for (const auto& u : plan.unresolved) log()->warn("cell egress: name not resolved {}", u);
  const std::size_t n = plan.rules.size();
  const bool dns = plan.dns;
  if (auto r = egress_->set(std::move(plan)); !r) {
    log()->error("cell egress not updated, the previous sets stay error={}", r.error().to_string());
    return base::fail(r.error().code, "cell egress: " + r.error().to_string());
  }
  log()->info("cell egress updated generation={} destinations={} allowed={} dns={}",
              egress_->generation(), n, egress_->applied().size(), dns ? "yes" : "no");
  if (dns && !egress_names_watched_) {
    egress_names_watched_ = true;
    asio::co_spawn(io_, refresh_egress_names(), ipc::LogExceptions{"egress names"});
  }
  return {};
}

awaitable<void> Daemon::refresh_egress_names() {
  asio::steady_timer timer(io_);
  ipc::tcp::resolver resolver(io_);  // off the loop: Asio's resolver thread
  for (;;) {
    timer.expires_after(kEgressNamesEvery);
    if (auto [ec] = co_await timer.async_wait(use_nothrow); ec || stopping_ || !egress_) break;
    const CellEgress e = current_egress();
    const auto generation = egress_->generation();
    std::vector<std::string> names;  // what plan_egress would look up
    (void)plan_egress(e,
                      [&names](const std::string& h) -> base::Result<std::vector<std::string>> {
                        names.push_back(h);
                        return base::fail(base::Errc::kNotFound, "");
                      },
                      {});
    if (names.empty()) break;  // a reload removed them
    std::map<std::string, base::Result<std::vector<std::string>>> found;
    for (const auto& name : names) {
      auto [ec, results] = co_await resolver.async_resolve(name, "", use_nothrow);
      std::vector<std::string> addrs;
      if (!ec)
        for (const auto& r : results) addrs.push_back(r.endpoint().address().to_string());
      if (addrs.empty())
        found.emplace(name, base::fail(base::Errc::kNotFound, "lookup: " + ec.message()));
      else
        found.emplace(name, std::move(addrs));
    }
    // A reload meanwhile made its own plan, from a fresh lookup.
    if (stopping_ || !egress_ || egress_->generation() != generation) continue;
    EgressPlan plan = plan_egress(
        e,
        [&found](const std::string& h) -> base::Result<std::vector<std::string>> {
          auto it = found.find(h);
          if (it == found.end()) return base::fail(base::Errc::kNotFound, "not looked up");
          return it->second;
        },
        system_nameservers());
    for (const auto& u : plan.unresolved) log()->warn("cell egress: name not resolved {}", u);
    const auto before = egress_->applied();
    if (auto r = egress_->refresh(std::move(plan)); !r) {
      log()->warn("cell egress not refreshed error={}", r.error().to_string());
    } else if (egress_->applied() != before) {
      log()->info("cell egress names looked up again allowed={}", egress_->applied().size());
    }
  }
  egress_names_watched_ = false;
}

void Daemon::release_egress(ChildProc& c) {
  // While stopping, cells and their table go anyway: nothing to narrow.
  if (!c.egress_generation || !egress_ || !host_ || stopping_) return;
  const auto gen = *std::exchange(c.egress_generation, std::nullopt);
  if (auto r = egress_->release(gen); !r) {
    log()->warn("cell egress not narrowed after a worker exit error={}", r.error().to_string());
  }
}

void Daemon::poll_egress_drops() {
  if (!host_ || !egress_) return;
  const auto now = Clock::now();
  if (now - egress_polled_ < kEgressPollEvery) return;
  egress_polled_ = now;
  auto drops = host_->egress_drops();
  if (!drops) {
    log()->warn("cell egress drop counters not read error={}", drops.error().to_string());
    return;
  }
  for (const auto& inc : egress_tally_.update(*drops)) {
    UserRt* u = users_.find_by_host_if(inc.host_if);
    if (!u) continue;  // a cell torn down meanwhile
    u->egress_dropped += inc.packets;
    if (auto n = egress_log_.add(u->user.name, inc.packets, now); n > 0) {
      log()->warn("cell egress dropped user={} packets={} total={}", u->user.name, n,
                  u->egress_dropped);
    }
  }
  for (const auto& [name, n] : egress_log_.due(now)) {
    const UserRt* u = users_.find(name);
    log()->warn("cell egress dropped user={} packets={} total={}", name, n,
                u ? u->egress_dropped : 0);
  }
}

}  // namespace mtw::daemon
