#include "systemd/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <systemd/sd-daemon.h>

#include "base/log.h"

namespace mtw::systemd {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("systemd");
  return l;
}

std::uint64_t monotonic_usec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

// "/run/systemd/notify" or "@abstract" -> sun_path bytes; empty when unusable
// (vsock and other address kinds are not supported here).
std::string socket_address(const char* env) {
  if (env == nullptr) return {};
  std::string a(env);
  if (a.size() < 2 || a.size() >= sizeof(sockaddr_un::sun_path)) return {};
  if (a[0] == '@')
    a[0] = '\0';
  else if (a[0] != '/')
    return {};
  return a;
}

}  // namespace

Notifier::Notifier() {
  const char* env = std::getenv("NOTIFY_SOCKET");
  const std::string raw = env ? env : "";
  address_ = socket_address(env);
  ::unsetenv("NOTIFY_SOCKET");
  // Parses WATCHDOG_USEC, honours WATCHDOG_PID (0 when it names another
  // process), and unsets both.
  std::uint64_t usec = 0;
  const int wd = ::sd_watchdog_enabled(1, &usec);
  if (!raw.empty() && address_.empty()) {
    log()->warn("notify socket not usable, not notifying the service manager address={}", raw);
  }
  if (address_.empty()) return;
  fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd_) {
    log()->warn("notify socket failed errno={} ({})", errno, std::strerror(errno));
    return;
  }
  enabled_ = true;
  if (wd < 0) {
    log()->warn("watchdog settings not understood, no keep-alives errno={} ({})", -wd,
                std::strerror(-wd));
  } else if (wd > 0 && usec > 0) {
    watchdog_period_ = std::chrono::microseconds(usec / 2);
  }
  log()->info("service manager notifications on watchdog_usec={}", wd > 0 ? usec : 0);
}

void Notifier::send(const std::string& state) {
  if (!enabled_) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, address_.data(), address_.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
  const ssize_t n = ::sendto(fd_.get(), state.data(), state.size(), MSG_NOSIGNAL,
                             reinterpret_cast<const sockaddr*>(&sa), len);
  if (n == static_cast<ssize_t>(state.size())) return;
  const int err = n < 0 ? errno : EMSGSIZE;
  // A manager that went away must not flood the log (the watchdog ticks often).
  if (send_failures_++ == 0) {
    log()->warn("service manager notification failed errno={} ({})", err, std::strerror(err));
  }
}

std::string one_line(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return out;
}

void Notifier::ready(std::string_view status) {
  last_status_ = one_line(status);
  send("READY=1\nSTATUS=" + last_status_);
}

void Notifier::status(std::string_view line) {
  std::string s = one_line(line);
  if (s == last_status_) return;
  last_status_ = std::move(s);
  send("STATUS=" + last_status_);
}

void Notifier::watchdog() { send("WATCHDOG=1"); }

void Notifier::reloading() {
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void Notifier::stopping(std::string_view status) {
  last_status_ = one_line(status);
  send("STOPPING=1\nSTATUS=" + last_status_);
}

void Notifier::extend_timeout(std::chrono::microseconds by) {
  if (by.count() <= 0) return;
  send("EXTEND_TIMEOUT_USEC=" + std::to_string(by.count()));
}

std::string status_line(std::uint32_t users, std::uint32_t connections, std::uint32_t throttled,
                        std::uint32_t failed) {
  std::string s = std::to_string(users) + (users == 1 ? " user, " : " users, ") +
                  std::to_string(connections) +
                  (connections == 1 ? " connection, " : " connections, ") +
                  std::to_string(throttled) + " throttled";
  if (failed > 0) s += ", " + std::to_string(failed) + " failed";
  return s;
}

}  // namespace mtw::systemd
