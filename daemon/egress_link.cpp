// The supervisor's side of cell egress (egress_link.h).
#include "daemon/egress_link.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>

#include "base/log.h"
#include "proto/secret.h"

namespace mtw::daemon {
namespace {

using ipc::use_nothrow;
using supervisor::CellEgress;
using supervisor::EgressPlan;

// How often the drop counters are read (one nft list of a set holding only
// cells that dropped something).
constexpr auto kEgressPollEvery = std::chrono::seconds(5);
// How often names among the destinations are looked up again (a mask host
// behind a CDN changes addresses; the workers look it up themselves).
constexpr auto kEgressNamesEvery = std::chrono::minutes(10);

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

std::vector<std::string> system_nameservers() {
  std::ifstream in("/etc/resolv.conf");
  std::stringstream text;
  text << in.rdbuf();
  return supervisor::resolv_conf_nameservers(text.str());
}

}  // namespace

EgressLink::EgressLink(asio::io_context& io, netns::CellHost& host, const supervisor::Config& cfg,
                       UserRegistry& users, MiddleProxies middle_proxies)
    : io_(io),
      host_(host),
      cfg_(cfg),
      users_(users),
      middle_proxies_(std::move(middle_proxies)),
      control_([&host](const std::vector<netns::EgressRule>& rules) {
        return host.set_egress(rules);
      }) {}

EgressLink::~EgressLink() { *alive_ = false; }

CellEgress EgressLink::wanted() const {
  supervisor::EgressInputs in;
  for (const auto& [id, u] : users_)
    for (const auto& text : u->user.secrets)
      if (auto sec = proto::parse_secret(text); sec && sec->kind == proto::SecretKind::kFakeTls)
        in.fake_tls_domains.push_back(sec->domain);
  // Workers dial the middle proxies of the list in force (either family).
  if (middle_proxies_) in.middle_proxies = middle_proxies_();
  return supervisor::cell_egress(cfg_, in);
}

void EgressLink::follow_users() {
  if (!targets_dirty_) return;
  targets_dirty_ = false;
  if (wanted().mask == mask_) return;
  (void)update();  // logged there; on failure the previous sets stay
}

base::Result<void> EgressLink::update() {
  CellEgress e = wanted();
  mask_ = e.mask;
  EgressPlan plan = supervisor::plan_egress(e, supervisor::resolve_host, system_nameservers());
  for (const auto& u : plan.unresolved) log()->warn("cell egress: name not resolved {}", u);
  const std::size_t n = plan.rules.size();
  const bool dns = plan.dns;
  if (auto r = control_.set(std::move(plan)); !r) {
    log()->error("cell egress not updated, the previous sets stay error={}", r.error().to_string());
    return base::fail(r.error().code, "cell egress: " + r.error().to_string());
  }
  log()->info("cell egress updated generation={} destinations={} allowed={} dns={}",
              control_.generation(), n, control_.applied().size(), dns ? "yes" : "no");
  if (dns && !names_watched_) {
    names_watched_ = true;
    asio::co_spawn(io_, refresh_names(alive_), ipc::LogExceptions{"egress names"});
  }
  return {};
}

awaitable<void> EgressLink::refresh_names(std::shared_ptr<const bool> alive) {
  asio::steady_timer timer(io_);
  ipc::tcp::resolver resolver(io_);  // off the loop: Asio's resolver thread
  for (;;) {
    timer.expires_after(kEgressNamesEvery);
    if (auto [ec] = co_await timer.async_wait(use_nothrow); ec || !*alive || stopping_) break;
    const CellEgress e = wanted();
    const auto generation = control_.generation();
    std::vector<std::string> names;  // what plan_egress would look up
    (void)supervisor::plan_egress(
        e,
        [&names](const std::string& h) -> base::Result<std::vector<std::string>> {
          names.push_back(h);
          return base::fail(base::Errc::kNotFound, "");
        },
        {});
    if (names.empty()) break;  // a reload removed them
    std::map<std::string, base::Result<std::vector<std::string>>> found;
    for (const auto& name : names) {
      auto [ec, results] = co_await resolver.async_resolve(name, "", use_nothrow);
      if (!*alive) co_return;
      std::vector<std::string> addrs;
      if (!ec)
        for (const auto& r : results) addrs.push_back(r.endpoint().address().to_string());
      if (addrs.empty())
        found.emplace(name, base::fail(base::Errc::kNotFound, "lookup: " + ec.message()));
      else
        found.emplace(name, std::move(addrs));
    }
    // A reload meanwhile made its own plan, from a fresh lookup.
    if (stopping_ || control_.generation() != generation) continue;
    EgressPlan plan = supervisor::plan_egress(
        e,
        [&found](const std::string& h) -> base::Result<std::vector<std::string>> {
          auto it = found.find(h);
          if (it == found.end()) return base::fail(base::Errc::kNotFound, "not looked up");
          return it->second;
        },
        system_nameservers());
    for (const auto& u : plan.unresolved) log()->warn("cell egress: name not resolved {}", u);
    const auto before = control_.applied();
    if (auto r = control_.refresh(std::move(plan)); !r) {
      log()->warn("cell egress not refreshed error={}", r.error().to_string());
    } else if (control_.applied() != before) {
      log()->info("cell egress names looked up again allowed={}", control_.applied().size());
    }
  }
  if (*alive) names_watched_ = false;
}

void EgressLink::acquire(ChildProc& worker) { worker.egress_generation = control_.acquire(); }

void EgressLink::release(ChildProc& worker) {
  if (!worker.egress_generation || stopping_) return;
  const auto gen = *std::exchange(worker.egress_generation, std::nullopt);
  if (auto r = control_.release(gen); !r) {
    log()->warn("cell egress not narrowed after a worker exit error={}", r.error().to_string());
  }
}

void EgressLink::poll_drops() {
  const auto now = Clock::now();
  if (now - polled_ < kEgressPollEvery) return;
  polled_ = now;
  auto drops = host_.egress_drops();
  if (!drops) {
    log()->warn("cell egress drop counters not read error={}", drops.error().to_string());
    return;
  }
  for (const auto& inc : tally_.update(*drops)) {
    UserRt* u = users_.find_by_host_if(inc.host_if);
    if (!u) continue;  // a cell torn down meanwhile
    u->egress_dropped += inc.packets;
    if (auto n = drop_log_.add(u->user.name, inc.packets, now); n > 0) {
      log()->warn("cell egress dropped user={} packets={} total={}", u->user.name, n,
                  u->egress_dropped);
    }
  }
  for (const auto& [name, n] : drop_log_.due(now)) {
    const UserRt* u = users_.find(name);
    log()->warn("cell egress dropped user={} packets={} total={}", name, n,
                u ? u->egress_dropped : 0);
  }
}

}  // namespace mtw::daemon
