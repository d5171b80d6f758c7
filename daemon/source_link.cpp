// The supervisor's side of per-cell source addresses (source_link.h).
#include "daemon/source_link.h"

#include "base/log.h"

namespace mtw::daemon {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

// "198.51.100.7", "198.51.100.7,2001:db8::7", "masquerade".
std::string shown(const std::map<std::string, netns::SourceNat>& m, const std::string& host_if) {
  auto it = m.find(host_if);
  if (it == m.end()) return "masquerade";
  const netns::SourceNat& e = it->second;
  std::string s = e.addr4.empty() ? "masquerade" : e.addr4;
  if (!e.addr6.empty()) s += "," + e.addr6;
  return s;
}

}  // namespace

base::Result<std::optional<netns::SourceNat>> SourceLink::wanted(const std::string& user,
                                                                 const std::string& host_if) const {
  auto src = supervisor::egress_source(cfg_, names_(user));
  if (!src) return std::optional<netns::SourceNat>();
  auto r = supervisor::resolve_cell_source(*src, cfg_.cells.ipv6_prefix.has_value(), lookup_);
  if (!r) return tl::unexpected(r.error());
  if (r->addr4.empty() && r->addr6.empty()) return std::optional<netns::SourceNat>();
  return std::optional<netns::SourceNat>(
      netns::SourceNat{host_if, std::move(r->addr4), std::move(r->addr6)});
}

base::Result<void> SourceLink::commit(std::map<std::string, netns::SourceNat> next) {
  if (next == applied_) return {};
  std::vector<netns::SourceNat> entries;
  entries.reserve(next.size());
  for (const auto& [_, e] : next) entries.push_back(e);
  if (auto r = apply_(entries); !r) return r;
  applied_ = std::move(next);
  return {};
}

base::Result<void> SourceLink::cell_up(const std::string& user, const std::string& host_if) {
  cells_[host_if] = user;
  auto want = wanted(user, host_if);
  if (!want) return tl::unexpected(want.error());
  auto next = applied_;
  if (*want)
    next[host_if] = std::move(**want);
  else
    next.erase(host_if);
  const std::string before = shown(applied_, host_if);
  if (auto r = commit(std::move(next)); !r) return r;
  const std::string after = shown(applied_, host_if);
  if (before != after)
    log()->info("cell source set user={} cell={} source={}", user, host_if, after);
  return {};
}

void SourceLink::refresh(const std::string& user, const std::string& host_if) {
  if (!cells_.contains(host_if)) return;
  if (auto r = cell_up(user, host_if); !r) {
    log()->error("cell source not resolved, the previous one stays user={} error={}", user,
                 r.error().to_string());
  }
}

void SourceLink::cell_gone(const std::string& host_if) {
  cells_.erase(host_if);
  auto next = applied_;
  if (next.erase(host_if) == 0) return;
  if (auto r = commit(std::move(next)); !r)
    log()->warn("cell source not removed cell={} error={}", host_if, r.error().to_string());
}

void SourceLink::update() {
  std::map<std::string, netns::SourceNat> next;
  for (const auto& [host_if, user] : cells_) {
    auto want = wanted(user, host_if);
    if (!want) {
      log()->error("cell source not resolved, the previous one stays user={} error={}", user,
                   want.error().to_string());
      if (auto old = applied_.find(host_if); old != applied_.end()) next.emplace(*old);
    } else if (*want) {
      next.emplace(host_if, std::move(**want));
    }
  }
  const auto before = applied_;
  if (auto r = commit(std::move(next)); !r) {
    log()->error("cell sources not updated, the previous ones stay error={}",
                 r.error().to_string());
    return;
  }
  for (const auto& [host_if, user] : cells_) {
    const std::string was = shown(before, host_if), now = shown(applied_, host_if);
    if (was != now) log()->info("cell source set user={} cell={} source={}", user, host_if, now);
  }
}

}  // namespace mtw::daemon
