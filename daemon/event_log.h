// The supervisor's events (user created, quota throttled, worker crashed,
// reloaded, ...): numbered, logged once, kept in a bounded ring for the API
// (newest last), stored in the store's event table, and handed to the
// sinks (webhooks, D-Bus signals). Thread: the event loop only. Lifetime:
// the store and whatever the sink reaches must outlive the log, or be
// detached first (set_store(nullptr)).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/service.h"
#include "supervisor/store.h"

namespace mtw::daemon {

class EventLog {
 public:
  using Sink = std::function<void(const api::LiveEvent&)>;

  void set_store(supervisor::Store* store) { store_ = store; }
  void set_sink(Sink sink) { sink_ = std::move(sink); }
  // How many events the ring keeps ([api] events_kept); applies from the
  // next event.
  void set_capacity(std::size_t kept) { kept_ = kept; }

  // Records one event of `user` (named `user_name`; none: a server event).
  // A store that refuses it is logged; the event still reaches the ring
  // and the sink.
  void record(std::optional<supervisor::UserId> user, std::string user_name, std::string_view kind,
              std::string_view detail, supervisor::UnixSeconds now);

  // Up to `limit` events numbered above `after`, oldest first.
  std::vector<api::LiveEvent> since(std::uint64_t after, std::size_t limit) const;

 private:
  std::deque<api::LiveEvent> ring_;
  std::uint64_t seq_ = 0;
  std::size_t kept_ = 0;
  supervisor::Store* store_ = nullptr;
  Sink sink_;
};

}  // namespace mtw::daemon
