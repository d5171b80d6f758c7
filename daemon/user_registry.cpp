// The user registry and its indexes (user_registry.h).
#include "daemon/user_registry.h"

#include <algorithm>
#include <set>

#include "proto/secret.h"

namespace mtw::daemon {
namespace {

std::string key_of(const proto::Secret& s) {
  return std::string(reinterpret_cast<const char*>(s.key.data()), s.key.size());
}

}  // namespace

std::string_view user_state_name(UserState s) noexcept {
  switch (s) {
    case UserState::kDisabled:
      return "disabled";
    case UserState::kIdle:
      return "idle";
    case UserState::kStarting:
      return "starting";
    case UserState::kRunning:
      return "running";
    case UserState::kBackoff:
      return "backoff";
    case UserState::kFailed:
      return "failed";
  }
  return "?";
}

std::uint32_t UserRt::active() const noexcept {
  if (!worker) return 0;
  const auto& c = worker->counters;
  auto since = [](std::uint64_t ours, std::uint64_t theirs) {
    return ours > theirs ? ours - theirs : 0;
  };
  const std::uint64_t in_flight = since(sent, c[ipc::Counter::kHandoffs]) +
                                  since(direct_seen, c[ipc::Counter::kDirectHandoffs]);
  return static_cast<std::uint32_t>(
      std::min<std::uint64_t>(c[ipc::Counter::kActive] + in_flight, UINT32_MAX));
}

void UserRt::note_unreported(bool direct, const ipc::control::PeerAddress& peer) {
  if (unreported.size() >= kMaxUnreported) unreported.pop_front();
  unreported.push_back({direct, direct ? direct_seen : sent, {peer.family, peer.addr}});
}

void UserRt::drop_reported() noexcept {
  if (!worker) {
    unreported.clear();
    return;
  }
  const auto& c = worker->counters;
  const std::uint64_t via_us = c[ipc::Counter::kHandoffs];
  const std::uint64_t direct = c[ipc::Counter::kDirectHandoffs];
  std::erase_if(unreported,
                [&](const Unreported& x) { return x.ordinal <= (x.direct ? direct : via_us); });
}

std::uint64_t UserRt::lane_reserved() const noexcept {
  if (lane == 0 || lane_allow == ipc::control::kUnlimited) return 0;
  return lane_allow > lane_seen ? lane_allow - lane_seen : 0;
}

UserRt& UserRegistry::add(const supervisor::StoredUser& s,
                          supervisor::RestartPolicy::Options restart) {
  auto u = std::make_unique<UserRt>(restart);
  u->user = s;
  UserRt& ref = *u;
  users_.emplace(s.id, std::move(u));
  by_name_[s.name] = &ref;
  index_keys(ref);
  return ref;
}

void UserRegistry::remove(UserId id) {
  auto it = users_.find(id);
  if (it == users_.end()) return;
  UserRt& u = *it->second;
  unindex_keys(u);
  if (u.cell) by_host_if_.erase(u.cell->names().host_if);
  release_uid_slot(u);
  by_name_.erase(u.user.name);
  users_.erase(it);
}

void UserRegistry::set_definition(UserRt& u, const supervisor::StoredUser& s) {
  unindex_keys(u);
  u.user = s;
  index_keys(u);
}

UserRt* UserRegistry::find(UserId id) const {
  auto it = users_.find(id);
  return it == users_.end() ? nullptr : it->second.get();
}

UserRt* UserRegistry::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

UserRt* UserRegistry::find_by_host_if(std::string_view host_if) const {
  auto it = by_host_if_.find(host_if);
  return it == by_host_if_.end() ? nullptr : find(it->second);
}

void UserRegistry::bind_cell(UserRt& u) { by_host_if_[u.cell->names().host_if] = u.user.id; }

void UserRegistry::unbind_cell(UserRt& u) {
  if (!u.cell) return;
  by_host_if_.erase(u.cell->names().host_if);
  u.cell.reset();
}

bool UserRegistry::claim_uid_slot(UserRt& u) {
  if (u.uid_slot) return true;
  auto free = std::find(uid_slots_.begin(), uid_slots_.end(), false);
  if (free == uid_slots_.end()) return false;
  *free = true;
  u.uid_slot = static_cast<std::uint32_t>(free - uid_slots_.begin());
  return true;
}

void UserRegistry::release_uid_slot(UserRt& u) {
  if (!u.uid_slot) return;
  if (*u.uid_slot < uid_slots_.size()) uid_slots_[*u.uid_slot] = false;
  u.uid_slot.reset();
}

base::Result<void> UserRegistry::check_secrets_free(const std::vector<std::string>& secrets,
                                                    UserId except) const {
  std::set<std::string> keys;
  for (const auto& hex : secrets) {
    auto s = proto::parse_secret(hex);
    if (!s) return base::fail(base::Errc::kBadInput, "secrets: " + s.error().context);
    if (!keys.insert(key_of(*s)).second)
      return base::fail(base::Errc::kBadInput, "secrets: the same key is given twice");
  }
  for (const auto& k : keys) {
    auto it = by_key_.find(k);
    if (it != by_key_.end() && it->second != except)
      return base::fail(base::Errc::kExists, "secrets: this key is already used by another user");
  }
  return {};
}

void UserRegistry::index_keys(const UserRt& u) {
  for (const auto& hex : u.user.secrets) {
    if (auto s = proto::parse_secret(hex)) by_key_.emplace(key_of(*s), u.user.id);
  }
}

void UserRegistry::unindex_keys(const UserRt& u) {
  for (const auto& hex : u.user.secrets) {
    auto s = proto::parse_secret(hex);
    if (!s) continue;
    auto it = by_key_.find(key_of(*s));
    if (it != by_key_.end() && it->second == u.user.id) by_key_.erase(it);
  }
}

}  // namespace mtw::daemon
