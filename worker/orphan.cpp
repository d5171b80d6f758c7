#include "worker/orphan.h"

namespace mtw::worker {

bool controller_allowed(uid_t peer_uid, uid_t parent_uid) noexcept {
  return peer_uid == 0 || peer_uid == parent_uid;
}

Orphanage::OnClose Orphanage::controller_closed(Clock::time_point now, bool draining) noexcept {
  if (timeout_ms_ == 0 || draining) return OnClose::kDrain;
  orphaned_ = true;
  ++orphanings_;
  since_ = now;
  deadline_ = now + std::chrono::milliseconds(timeout_ms_);
  return OnClose::kOrphaned;
}

}  // namespace mtw::worker
