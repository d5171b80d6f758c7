// OpenClients (open_clients.h).
#include "worker/open_clients.h"

#include <algorithm>

namespace mtw::worker {

std::optional<OpenClients::Key> OpenClients::key_of(const ipc::control::PeerAddress& p) {
  if (p.family != 4 && p.family != 6) return std::nullopt;
  Key k{p.family, p.addr};
  // An IPv4 address uses the first 4 bytes; whatever follows is not part of it.
  if (p.family == 4) std::fill(k.second.begin() + 4, k.second.end(), std::byte{0});
  return k;
}

void OpenClients::opened(const ipc::control::PeerAddress& peer) {
  if (auto k = key_of(peer)) ++open_[*k];
}

void OpenClients::closed(const ipc::control::PeerAddress& peer, std::int64_t now_unix) {
  last_close_unix_ = std::max(last_close_unix_, now_unix);
  const auto k = key_of(peer);
  if (!k) return;
  auto it = open_.find(*k);
  if (it == open_.end()) return;
  if (--it->second == 0) open_.erase(it);
}

ipc::control::ClientsReport OpenClients::report(std::size_t cap) const {
  ipc::control::ClientsReport r;
  r.last_close_unix = last_close_unix_;
  r.truncated = open_.size() > cap;
  r.open.reserve(std::min(cap, open_.size()));
  for (const auto& [k, n] : open_) {
    if (r.open.size() == cap) break;
    ipc::control::ClientAddress a;
    a.peer.family = k.first;
    a.peer.addr = k.second;
    a.connections = n;
    r.open.push_back(a);
  }
  return r;
}

}  // namespace mtw::worker
