// The daemon's side of cell egress (supervisor/cell_egress.h): the sets
// follow the configuration and the workers' generations, and the per-cell
// drop counters become per-user counts and rate-limited warnings.
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "supervisor/daemon_impl.h"

namespace mtw::supervisor {

namespace {

// How often the drop counters are read (one nft list of a set holding only
// cells that dropped something).
constexpr auto kEgressPollEvery = std::chrono::seconds(5);

std::vector<std::string> system_nameservers() {
  std::ifstream in("/etc/resolv.conf");
  std::stringstream text;
  text << in.rdbuf();
  return resolv_conf_nameservers(text.str());
}

}  // namespace

base::Result<void> Daemon::update_egress() {
  if (!host_) return {};
  if (!egress_) {
    egress_.emplace([this](const std::vector<netns::EgressRule>& rules) {
      return host_->set_egress(rules);
    });
  }
  EgressPlan plan = plan_egress(cell_egress(cfg_), resolve_host, system_nameservers());
  for (const auto& u : plan.unresolved) log()->warn("cell egress: name not resolved {}", u);
  const std::size_t n = plan.rules.size();
  const bool dns = plan.dns;
  if (auto r = egress_->set(std::move(plan)); !r) {
    log()->error("cell egress not updated, the previous sets stay error={}", r.error().to_string());
    return base::fail(r.error().code, "cell egress: " + r.error().to_string());
  }
  log()->info("cell egress updated generation={} destinations={} allowed={} dns={}",
              egress_->generation(), n, egress_->applied().size(), dns ? "yes" : "no");
  return {};
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
    auto it = by_host_if_.find(inc.host_if);
    if (it == by_host_if_.end()) continue;  // a cell torn down meanwhile
    auto u = users_.find(it->second);
    if (u == users_.end()) continue;
    u->second->egress_dropped += inc.packets;
    if (auto n = egress_log_.add(u->second->user.name, inc.packets, now); n > 0) {
      log()->warn("cell egress dropped user={} packets={} total={}", u->second->user.name, n,
                  u->second->egress_dropped);
    }
  }
  for (const auto& [name, n] : egress_log_.due(now)) {
    auto u = by_name_.find(name);
    log()->warn("cell egress dropped user={} packets={} total={}", name, n,
                u == by_name_.end() ? 0 : u->second->egress_dropped);
  }
}

}  // namespace mtw::supervisor
