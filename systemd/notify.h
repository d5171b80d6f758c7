// The service manager's notification protocol (sd_notify(3)): readiness,
// a one-line status, watchdog keep-alives, reload and stop phases. Every call
// is a cheap no-op when the process was not started by systemd (no
// $NOTIFY_SOCKET), so the daemon calls it unconditionally.
// Not thread-safe: used from the supervisor's io_context thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/unique_fd.h"

namespace mtw::systemd {

class Notifier {
 public:
  // Reads $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID once, then removes
  // them from the environment so children never inherit them. (sd_notify()
  // re-reads $NOTIFY_SOCKET on every call, so the notifier keeps the address
  // and sends the datagrams itself; the protocol is stable, see sd_notify(3).)
  Notifier();

  bool enabled() const noexcept { return enabled_; }
  // How often to call watchdog(): half of WatchdogSec, or nullopt when the
  // manager does not expect keep-alives (for this pid) or there is no socket.
  std::optional<std::chrono::microseconds> watchdog_period() const noexcept {
    return watchdog_period_;
  }

  void ready(std::string_view status);                // READY=1 + STATUS=
  void status(std::string_view line);                 // STATUS=, sent only when it changed
  void watchdog();                                    // WATCHDOG=1
  void reloading();                                   // RELOADING=1 + MONOTONIC_USEC=
  void stopping(std::string_view status);             // STOPPING=1 + STATUS=
  void extend_timeout(std::chrono::microseconds by);  // EXTEND_TIMEOUT_USEC=

  // Datagrams the manager could not be sent (logged once, then counted).
  std::uint64_t send_failures() const noexcept { return send_failures_; }

 private:
  void send(const std::string& state);
  bool enabled_ = false;
  std::optional<std::chrono::microseconds> watchdog_period_;
  std::string last_status_;
  std::string address_;  // sun_path bytes ('\0' first for an abstract socket)
  base::UniqueFd fd_;
  std::uint64_t send_failures_ = 0;
};

// "12 users, 340 connections, 2 throttled" (and ", 1 failed" when any is).
std::string status_line(std::uint32_t users, std::uint32_t connections, std::uint32_t throttled,
                        std::uint32_t failed);

// A STATUS= value is one line: control characters (newlines included) become
// spaces, so a message can never inject another assignment.
std::string one_line(std::string_view text);

}  // namespace mtw::systemd
