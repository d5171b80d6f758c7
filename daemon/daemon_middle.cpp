// Middle-proxy mode (ad tags), the supervisor's side: the material
// (middle_material.h) loaded at start, refreshed on [middle]
// refresh_interval_s while some tag is in use, and each worker's Middle
// message (its tags and the material) sent when it becomes ready, when its
// user's tag changes, after a reload and after a refresh that changed the
// material. Workers apply it to new connections only: nothing is dropped.
#include "api/http_get.h"
#include "base/log.h"
#include "daemon/daemon_impl.h"

namespace mtw::daemon {

namespace control = ipc::control;

std::optional<proto::AdTag> Daemon::user_ad_tag(const UserRt& u) const {
  if (u.user.ad_tag.empty()) return std::nullopt;
  auto t = parse_ad_tag(u.user.ad_tag);
  if (!t) return std::nullopt;  // the API and the loader store canonical tags only
  return *t;
}

TagRouting Daemon::routing_of(const UserRt& u) const {
  std::vector<std::optional<proto::AdTag>> listeners;
  for (const auto& l : cfg_.listeners) listeners.push_back(l.ad_tag);
  return tag_routing(user_ad_tag(u), listeners, cfg_.middle.ad_tag);
}

bool Daemon::middle_wanted() const {
  if (cfg_.middle.ad_tag) return true;
  for (const auto& l : cfg_.listeners)
    if (l.ad_tag) return true;
  for (const auto& [id, u] : users_)
    if (!u->user.ad_tag.empty()) return true;
  return false;
}

supervisor::MiddleMode Daemon::mode_of(const UserRt& u) const {
  const std::uint64_t down =
      u.worker ? u.worker->counters.values[static_cast<std::size_t>(ipc::Counter::kMiddleDown)] : 0;
  return supervisor::middle_mode(routing_of(u).any(), material_ && material_->ready(),
                                 cfg_.middle.fallback, down);
}

base::Result<void> Daemon::start_middle() {
  material_ =
      std::make_unique<MiddleMaterial>(cfg_.server.state_dir + "/middle", cfg_.middle.sources);
  if (auto r = material_->load_stored(); !r) return r;
  material_fetcher_ = std::make_unique<api::HttpFetcher>(
      io_, std::chrono::milliseconds(cfg_.middle.fetch_timeout_ms));
  material_timer_ = std::make_unique<asio::steady_timer>(io_);
  refresh_middle();
  return {};
}

void Daemon::refresh_middle() {
  if (!material_ || stopping_) return;
  // No tag anywhere: nothing to fetch (and no traffic to Telegram's site).
  // A tag set later calls this again.
  if (middle_wanted()) {
    // A round already running answers at once without counting one: no
    // second event for its failure.
    const std::uint64_t rounds = material_->stats().refreshes;
    material_->refresh(*material_fetcher_, wall_now(), [this, rounds](bool changed) {
      if (stopping_ || material_->stats().refreshes == rounds) return;
      if (!material_->stats().last_error.empty())
        event(std::nullopt, "middle_material_failed", material_->stats().last_error);
      if (changed) {
        event(std::nullopt, "middle_material_updated",
              "generation=" + std::to_string(material_->current()->generation));
        (void)update_egress();  // the cells may reach the new list's proxies
        push_middle(true);
      }
    });
  }
  material_timer_->expires_after(std::chrono::seconds(cfg_.middle.refresh_interval_s));
  material_timer_->async_wait([this](const error_code& ec) {
    if (!ec) refresh_middle();
  });
}

void Daemon::send_middle(UserRt& u, bool with_material) {
  if (!u.worker || !u.worker->ready || u.worker->gone || !material_) return;
  control::Middle m;
  const TagRouting r = routing_of(u);
  m.default_tag = r.default_tag;
  m.listener_tags = r.listener_tags;
  m.fallback = cfg_.middle.fallback;
  const auto copy = material_->current();
  // Material only for a worker that routes some connection through the
  // middle proxies: direct users never need it.
  if (r.any() && with_material && material_->ready()) {
    m.generation = copy->generation;
    m.proxy_secret = copy->secret;
    m.config_v4 = copy->config_v4;
    m.config_v6 = copy->config_v6;
  }
  if (auto s = send_to(*u.worker, m); !s)
    log()->warn("middle settings not sent user={} error={}", u.user.name, s.error().to_string());
}

void Daemon::push_middle(bool with_material) {
  for (auto& [id, u] : users_) send_middle(*u, with_material);
}

}  // namespace mtw::daemon
