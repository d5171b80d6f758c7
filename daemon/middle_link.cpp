// Middle-proxy mode, the supervisor's side (middle_link.h).
#include "daemon/middle_link.h"

#include <string>
#include <utility>

#include "api/http_get.h"
#include "base/log.h"
#include "proto/proxy_config.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;
using ipc::error_code;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

supervisor::UnixSeconds wall_now() { return static_cast<supervisor::UnixSeconds>(::time(nullptr)); }

}  // namespace

MiddleLink::MiddleLink(asio::io_context& io, const supervisor::Config& cfg, UserRegistry& users,
                       Hooks hooks)
    : io_(io), cfg_(cfg), users_(users), hooks_(std::move(hooks)) {}

MiddleLink::~MiddleLink() = default;

std::optional<proto::AdTag> MiddleLink::user_ad_tag(const UserRt& u) const {
  if (u.user.ad_tag.empty()) return std::nullopt;
  auto t = supervisor::parse_ad_tag(u.user.ad_tag);
  if (!t) return std::nullopt;  // the API and the loader store canonical tags only
  return *t;
}

supervisor::TagRouting MiddleLink::routing_of(const UserRt& u) const {
  std::vector<std::optional<proto::AdTag>> listeners;
  for (const auto& l : cfg_.listeners) listeners.push_back(l.ad_tag);
  return supervisor::tag_routing(user_ad_tag(u), listeners, cfg_.middle.ad_tag);
}

bool MiddleLink::wanted() const {
  if (cfg_.middle.ad_tag) return true;
  for (const auto& l : cfg_.listeners)
    if (l.ad_tag) return true;
  for (const auto& [id, u] : users_)
    if (!u->user.ad_tag.empty()) return true;
  return false;
}

supervisor::MiddleMode MiddleLink::mode_of(const UserRt& u) const {
  const std::uint64_t down =
      u.worker ? u.worker->counters.values[static_cast<std::size_t>(ipc::Counter::kMiddleDown)] : 0;
  return supervisor::middle_mode(routing_of(u).any(), material_ && material_->ready(),
                                 cfg_.middle.fallback, down);
}

base::Result<void> MiddleLink::start() {
  material_ = std::make_unique<supervisor::MiddleMaterial>(cfg_.server.state_dir + "/middle",
                                                           cfg_.middle.sources);
  if (auto r = material_->load_stored(); !r) return r;
  fetcher_ = std::make_unique<api::HttpFetcher>(
      io_, std::chrono::milliseconds(cfg_.middle.fetch_timeout_ms));
  timer_ = std::make_unique<asio::steady_timer>(io_);
  refresh();
  return {};
}

void MiddleLink::refresh() {
  if (!material_ || stopping_) return;
  // No tag anywhere: nothing to fetch (and no traffic to Telegram's site).
  // A tag set later calls this again.
  if (wanted()) {
    // A round already running answers at once without counting one: no
    // second event for its failure.
    const std::uint64_t rounds = material_->stats().refreshes;
    material_->refresh(*fetcher_, wall_now(), [this, rounds](bool changed) {
      if (stopping_ || material_->stats().refreshes == rounds) return;
      if (!material_->stats().last_error.empty())
        hooks_.event("middle_material_failed", material_->stats().last_error);
      if (changed) {
        hooks_.event("middle_material_updated",
                     "generation=" + std::to_string(material_->current()->generation));
        hooks_.material_changed();
        push(true);
      }
    });
  }
  timer_->expires_after(std::chrono::seconds(cfg_.middle.refresh_interval_s));
  timer_->async_wait([this](const error_code& ec) {
    if (!ec) refresh();
  });
}

void MiddleLink::refresh_unless_ready() {
  if (material_ && !material_->ready()) refresh();
}

void MiddleLink::send(UserRt& u, bool with_material) {
  if (!u.worker || !u.worker->ready || u.worker->gone || !material_) return;
  control::Middle m;
  const supervisor::TagRouting r = routing_of(u);
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

void MiddleLink::push(bool with_material) {
  for (auto& [id, u] : users_) send(*u, with_material);
}

std::vector<proto::Endpoint> MiddleLink::proxies() const {
  std::vector<proto::Endpoint> out;
  if (!material_) return out;
  const auto m = material_->current();
  if (!m) return out;
  for (const auto& [text, family] :
       {std::pair{&m->config_v4, proto::IpFamily::kV4}, {&m->config_v6, proto::IpFamily::kV6}}) {
    if (text->empty()) continue;
    if (auto pc = proto::parse_proxy_config(*text, family))
      for (const auto& [cluster, eps] : pc->clusters) out.insert(out.end(), eps.begin(), eps.end());
  }
  return out;
}

api::ServerStatus::Middle MiddleLink::status() const {
  if (!material_) return {};
  const auto& ms = material_->stats();
  return {wanted(),
          material_->ready(),
          material_->current()->generation,
          ms.last_change_at,
          ms.last_success_at,
          ms.refreshes,
          ms.refresh_failures,
          ms.last_error};
}

}  // namespace mtw::daemon
