// Following the users of a shared store (PostgreSQL, docs/fleet.md): a user
// added, changed, disabled or removed through another host's API reaches
// this host within about a second, by the store's notifications
// (supervisor/store_listen.h), with a full re-read of the users as the
// safety net: each time the listener is subscribed anew (changes made
// while it was not are never replayed) and every kResyncInterval.
//
// The listener's socket is watched by the event loop: nothing here blocks
// it. A lost connection is retried after kRetryMin, doubling up to
// kRetryMax, logged once per outage; the relays never wait for it. The
// hooks do the applying (the supervisor's store reads and its usual path
// for a changed user), on the loop.
// Thread: the event loop only. Lifetime: the hooks' targets outlive it;
// destroy it before its io_context.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ipc/asio.h"
#include "supervisor/store.h"
#include "supervisor/store_listen.h"

namespace mtw::daemon {

class UserFollow {
 public:
  static constexpr std::chrono::seconds kResyncInterval{30};
  static constexpr std::chrono::milliseconds kRetryMin{500};
  static constexpr std::chrono::milliseconds kRetryMax{30'000};

  struct Hooks {
    // Users named in notifications changed in the store (may repeat).
    std::function<void(const std::vector<std::string>&)> changed;
    // Read every user: just subscribed, or kResyncInterval passed.
    std::function<void()> resync;
  };

  UserFollow(boost::asio::io_context& io, supervisor::StoreConfig config, Hooks hooks);
  ~UserFollow();
  UserFollow(const UserFollow&) = delete;
  UserFollow& operator=(const UserFollow&) = delete;

  // Connects and subscribes in the background; starts the periodic resync.
  void start();
  // Drops the connection and the timers; no hook runs after it.
  void stop();
  bool subscribed() const noexcept { return listener_ && listener_->subscribed(); }

 private:
  void connect();
  void watch(supervisor::StoreListener::Wait w);
  void on_ready(std::uint64_t gen);
  void drop(const std::string& why);
  void arm_resync();
  void close_socket();

  boost::asio::io_context& io_;
  supervisor::StoreConfig config_;
  Hooks hooks_;
  std::optional<supervisor::StoreListener> listener_;
  // Watches the listener's socket; libpq owns the descriptor (released,
  // never closed here).
  std::optional<boost::asio::posix::stream_descriptor> sock_;
  boost::asio::steady_timer retry_timer_, resync_timer_;
  std::chrono::milliseconds backoff_ = kRetryMin;
  std::uint64_t gen_ = 0;  // a callback of an older connection is stale
  bool stopped_ = true;
  bool was_subscribed_ = false;  // this connection's subscription was reported
  bool outage_logged_ = false;
};

}  // namespace mtw::daemon
