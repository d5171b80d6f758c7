// Middle-proxy mode (ad tags), the supervisor's side: the material
// (supervisor/middle_material.h) loaded at start, refreshed every [middle]
// refresh_interval_s while some tag is in use, and each worker's Middle
// message (its tags and the material) sent when it becomes ready, when its
// user's tag changes, after a reload and after a refresh that changed the
// material. Workers apply it to new connections only: nothing is dropped.
// Thread: the event loop only; the fetches run on the fetcher's threads and
// report back on the loop. Lifetime: made with the root, started by
// start(); `io`, `cfg` and `users` are borrowed and outlive it (the fetcher
// is joined in the destructor, while `io` still lives).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "api/service.h"
#include "base/error.h"
#include "daemon/user_registry.h"
#include "supervisor/config.h"
#include "supervisor/middle_material.h"

namespace mtw::daemon {

class MiddleLink {
 public:
  struct Hooks {
    // A server event (kind, detail) for the event log.
    std::function<void(std::string_view, std::string_view)> event;
    // The material changed, before the workers are sent it: the cells'
    // egress follows the new list's proxies.
    std::function<void()> material_changed;
  };

  MiddleLink(asio::io_context& io, const supervisor::Config& cfg, UserRegistry& users, Hooks hooks);
  ~MiddleLink();
  MiddleLink(const MiddleLink&) = delete;
  MiddleLink& operator=(const MiddleLink&) = delete;

  // Loads the stored copies (state_dir/middle) and runs the first round.
  [[nodiscard]] base::Result<void> start();
  // A round now (when some tag is in use), the next one scheduled.
  void refresh();
  // A user's first tag: a round now, unless the material is at hand.
  void refresh_unless_ready();
  // Some user, listener or [middle] ad_tag has a tag.
  bool wanted() const;
  // The user's mode for its status (supervisor::middle_mode).
  supervisor::MiddleMode mode_of(const UserRt& u) const;
  // The worker's Middle message; `with_material`: the current material too
  // (a worker that has it already needs only the tags). Skips a worker
  // that is not ready: it gets one when it becomes ready.
  void send(UserRt& u, bool with_material);
  void push(bool with_material);  // to every user's worker
  // The middle proxies of the lists in force (the cells must reach them).
  std::vector<proto::Endpoint> proxies() const;
  // The API's view; all zero before start().
  api::ServerStatus::Middle status() const;
  // The supervisor is stopping: no more rounds, no more events.
  void stop() noexcept { stopping_ = true; }

 private:
  std::optional<proto::AdTag> user_ad_tag(const UserRt& u) const;
  supervisor::TagRouting routing_of(const UserRt& u) const;

  asio::io_context& io_;
  const supervisor::Config& cfg_;
  UserRegistry& users_;
  Hooks hooks_;
  std::unique_ptr<supervisor::MiddleMaterial> material_;
  // After material_: destroyed first, joining its threads (their answers
  // refer to material_).
  std::unique_ptr<supervisor::MaterialFetcher> fetcher_;
  std::unique_ptr<asio::steady_timer> timer_;
  bool stopping_ = false;
};

}  // namespace mtw::daemon
