// The supervisor's events (event_log.h).
#include "daemon/event_log.h"

#include "base/log.h"

namespace mtw::daemon {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

}  // namespace

void EventLog::record(std::optional<supervisor::UserId> user, std::string user_name,
                      std::string_view kind, std::string_view detail, supervisor::UnixSeconds now) {
  api::LiveEvent e;
  e.seq = ++seq_;
  e.at = now;
  e.user = std::move(user_name);
  if (e.user.empty()) {
    log()->info("event event={} detail=\"{}\"", kind, detail);
  } else {
    log()->info("event event={} user={} detail=\"{}\"", kind, e.user, detail);
  }
  e.kind = std::string(kind);
  e.detail = std::string(detail);
  ring_.push_back(e);
  while (ring_.size() > kept_) ring_.pop_front();
  if (sink_) sink_(e);
  if (!store_) return;
  if (auto r = store_->record_event(now, user, kind, detail); !r) {
    log()->warn("event not stored kind={} error={}", kind, r.error().to_string());
  }
}

std::vector<api::LiveEvent> EventLog::since(std::uint64_t after, std::size_t limit) const {
  std::vector<api::LiveEvent> out;
  for (const auto& e : ring_) {
    if (e.seq <= after) continue;
    out.push_back(e);
    if (out.size() >= limit) break;
  }
  return out;
}

}  // namespace mtw::daemon
