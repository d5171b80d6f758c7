#include "systemd/dbus_manager.h"

#include <fcntl.h>
#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <utility>

#include "base/log.h"
#include "systemd/dbus_handlers.h"

namespace mtw::systemd {
namespace asio = boost::asio;
using boost::system::error_code;
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("dbus");
  return l;
}

template <class T>
T unwrap(DbusResult<T>&& r) {
  if (!r) throw sdbus::Error(r.error().name, r.error().message);
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

// Every method body runs through here: an unexpected exception becomes
// org.mtwarden.Error.Failed instead of escaping sd_bus_process().
template <class F>
auto guarded(const char* method, F&& f) {
  try {
    return f();
  } catch (const sdbus::Error&) {
    throw;
  } catch (const std::exception& e) {
    log()->error("dbus method failed method={} what={}", method, e.what());
    throw sdbus::Error(kErrFailed, "internal error");
  }
}

class Manager final : public DbusManager {
 public:
  Manager(asio::io_context& io, api::Service& service)
      : handlers_(service), fd_(io), timer_(io), retry_(io) {}
  ~Manager() override { stop(); }

  base::Result<void> open(const DbusOptions& options);
  void on_event(const api::LiveEvent& e) override;
  void stop() override;
  bool connected() const override { return conn_ != nullptr; }
  void retry_from_start(const base::Error& e);

 private:
  void register_methods();
  void register_properties();
  void register_signals();
  void arm();
  void process();
  void lost(const std::exception& e);
  void drop_connection();
  void reconnect_later();

  DbusHandlers handlers_;
  DbusOptions options_;
  std::unique_ptr<sdbus::IConnection> conn_;
  std::unique_ptr<sdbus::IObject> object_;  // destroyed before conn_
  asio::posix::stream_descriptor fd_;       // a dup of the bus fd, only waited on
  asio::steady_timer timer_;                // sd-bus's own timeout (method call timeouts)
  asio::steady_timer retry_;                // the next connection attempt after a loss
  std::chrono::seconds retry_delay_{1};     // doubles per failed attempt, up to kMaxRetryDelay
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // handlers check it before `this`
  std::uint64_t generation_ = 0;  // waits armed before the last arm() are stale
  bool stopped_ = false;          // stop() was called: no more serving or reconnecting
};

constexpr std::chrono::seconds kMaxRetryDelay{30};

base::Result<void> Manager::open(const DbusOptions& options) {
  if (options.bus != "system" && options.bus != "session")
    return tl::unexpected(base::Error{base::Errc::kBadInput, 0, "bus must be system or session"});
  options_ = options;
  try {
    conn_ = options.bus == "system" ? sdbus::createSystemBusConnection()
                                    : sdbus::createSessionBusConnection();
    object_ = sdbus::createObject(*conn_, kObjectPath);
    register_methods();
    register_properties();
    register_signals();
    object_->finishRegistration();
    // Exported before the name is claimed, so no caller sees it half built.
    conn_->requestName(kBusName);
    // Close-on-exec like sd-bus's own: workers must not inherit the bus.
    const int fd = ::fcntl(conn_->getEventLoopPollData().fd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      const int err = errno;
      drop_connection();
      return tl::unexpected(base::Error{base::Errc::kSyscall, err, "dup of the bus fd"});
    }
    fd_.assign(fd);
  } catch (const sdbus::Error& e) {
    drop_connection();
    return tl::unexpected(
        base::Error{base::Errc::kSyscall, 0, e.getName() + ": " + e.getMessage()});
  }
  arm();
  return {};
}

void Manager::register_methods() {
  auto& o = *object_;
  auto& h = handlers_;
  o.registerMethod("ListUsers")
      .onInterface(kInterface)
      .withOutputParamNames("users")
      .implementedAs([&h] { return guarded("ListUsers", [&] { return unwrap(h.list_users()); }); });
  o.registerMethod("GetUser")
      .onInterface(kInterface)
      .withInputParamNames("name")
      .withOutputParamNames("user")
      .implementedAs([&h](const std::string& name) {
        return guarded("GetUser", [&] { return unwrap(h.get_user(name)); });
      });
  o.registerMethod("AddUser")
      .onInterface(kInterface)
      .withInputParamNames("name", "options")
      .withOutputParamNames("user")
      .implementedAs([&h](const std::string& name, const VariantMap& options) {
        return guarded("AddUser", [&] { return unwrap(h.add_user(name, options)); });
      });
  o.registerMethod("RemoveUser")
      .onInterface(kInterface)
      .withInputParamNames("name")
      .implementedAs([&h](const std::string& name) {
        guarded("RemoveUser", [&] { unwrap(h.remove_user(name)); });
      });
  o.registerMethod("EnableUser")
      .onInterface(kInterface)
      .withInputParamNames("name")
      .implementedAs([&h](const std::string& name) {
        guarded("EnableUser", [&] { unwrap(h.set_enabled(name, true)); });
      });
  o.registerMethod("DisableUser")
      .onInterface(kInterface)
      .withInputParamNames("name")
      .implementedAs([&h](const std::string& name) {
        guarded("DisableUser", [&] { unwrap(h.set_enabled(name, false)); });
      });
  o.registerMethod("SetLimits")
      .onInterface(kInterface)
      .withInputParamNames("name", "limits")
      .implementedAs([&h](const std::string& name, const VariantMap& limits) {
        guarded("SetLimits", [&] { unwrap(h.set_limits(name, limits)); });
      });
  o.registerMethod("GetStatus")
      .onInterface(kInterface)
      .withInputParamNames("name")
      .withOutputParamNames("status")
      .implementedAs([&h](const std::string& name) {
        return guarded("GetStatus", [&] { return unwrap(h.get_status(name)); });
      });
  o.registerMethod("GetUsage")
      .onInterface(kInterface)
      .withInputParamNames("name", "by", "from", "to")
      .withOutputParamNames("usage")
      .implementedAs([&h](const std::string& name, const std::string& by, const std::string& from,
                          const std::string& to) {
        return guarded("GetUsage", [&] { return unwrap(h.get_usage(name, by, from, to)); });
      });
  o.registerMethod("GetMaskProfiles")
      .onInterface(kInterface)
      .withOutputParamNames("probing", "profiles")
      .implementedAs(
          [&h] { return guarded("GetMaskProfiles", [&] { return unwrap(h.mask_profiles()); }); });
  o.registerMethod("GetUpstreams")
      .onInterface(kInterface)
      .withOutputParamNames("upstreams")
      .implementedAs(
          [&h] { return guarded("GetUpstreams", [&] { return unwrap(h.upstreams()); }); });
  o.registerMethod("Reload").onInterface(kInterface).implementedAs([&h] {
    guarded("Reload", [&] { unwrap(h.reload()); });
  });
}

// Read on demand from api::ServerStatus; they change all the time, so no
// PropertiesChanged (EmitsChangedSignal=false).
void Manager::register_properties() {
  auto& o = *object_;
  auto& h = handlers_;
  auto prop = [&o, &h](const char* name, auto field) {
    o.registerProperty(name)
        .onInterface(kInterface)
        .withGetter(
            [&h, field] { return guarded("Get", [&] { return field(h.server_status()); }); })
        .withUpdateBehavior(sdbus::Flags::EMITS_NO_SIGNAL);
  };
  prop("Version", [](const api::ServerStatus& s) { return s.version; });
  prop("StartedAt", [](const api::ServerStatus& s) { return std::int64_t{s.started_at}; });
  prop("UptimeSeconds", [](const api::ServerStatus& s) { return std::uint64_t{s.uptime_s}; });
  prop("Listeners", [](const api::ServerStatus& s) { return s.listeners; });
  prop("Users", [](const api::ServerStatus& s) { return s.users_total; });
  prop("UsersRunning", [](const api::ServerStatus& s) { return s.users_running; });
  prop("UsersThrottled", [](const api::ServerStatus& s) { return s.users_throttled; });
  prop("UsersFailed", [](const api::ServerStatus& s) { return s.users_failed; });
  prop("Cells", [](const api::ServerStatus& s) { return s.cells; });
  prop("Connections", [](const api::ServerStatus& s) { return s.connections; });
  prop("GateReady", [](const api::ServerStatus& s) { return s.gate_ready; });
  prop("GateRestarts", [](const api::ServerStatus& s) { return s.gate_restarts; });
  prop("MaskedTotal", [](const api::ServerStatus& s) { return std::uint64_t{s.masked_total}; });
  prop("HandoffsTotal", [](const api::ServerStatus& s) { return std::uint64_t{s.handoffs_total}; });
  prop("MemoryBound", [](const api::ServerStatus& s) { return s.memory_bound; });
}

void Manager::register_signals() {
  auto& o = *object_;
  o.registerSignal("UserThrottled")
      .onInterface(kInterface)
      .withParameters<std::string, std::string, std::string>("user", "reason", "detail");
  o.registerSignal("UserUnthrottled")
      .onInterface(kInterface)
      .withParameters<std::string, std::string>("user", "reason");
  o.registerSignal("QuotaWarning")
      .onInterface(kInterface)
      .withParameters<std::string, std::uint32_t, std::uint64_t, std::uint64_t>(
          "user", "percent", "used_bytes", "quota_bytes");
  o.registerSignal("WorkerRestarted")
      .onInterface(kInterface)
      .withParameters<std::string, std::uint32_t>("user", "restarts");
  o.registerSignal("UserExpired").onInterface(kInterface).withParameters<std::string>("user");
  o.registerSignal("UsageReset")
      .onInterface(kInterface)
      .withParameters<std::string, std::string>("user", "reason");
  o.registerSignal("UpstreamHealth")
      .onInterface(kInterface)
      .withParameters<std::string, std::string, bool, std::string>("user", "upstream", "up",
                                                                   "detail");
}

void Manager::on_event(const api::LiveEvent& e) {
  if (stopped_ || !conn_) return;
  const auto s = handlers_.signal_for(e);
  if (!s) return;
  try {
    auto& o = *object_;
    const std::string& m = s->member;
    if (m == "UserThrottled")
      o.emitSignal(m).onInterface(kInterface).withArguments(s->user, s->reason, s->detail);
    else if (m == "UserUnthrottled" || m == "UsageReset")
      o.emitSignal(m).onInterface(kInterface).withArguments(s->user, s->reason);
    else if (m == "QuotaWarning")
      o.emitSignal(m)
          .onInterface(kInterface)
          .withArguments(s->user, s->number, s->used_bytes, s->quota_bytes);
    else if (m == "WorkerRestarted")
      o.emitSignal(m).onInterface(kInterface).withArguments(s->user, s->number);
    else if (m == "UpstreamHealth")
      o.emitSignal(m).onInterface(kInterface).withArguments(s->user, s->reason, s->up, s->detail);
    else
      o.emitSignal(m).onInterface(kInterface).withArguments(s->user);  // UserExpired
  } catch (const sdbus::Error& err) {
    log()->warn("dbus signal not sent member={} error={}", s->member, err.what());
  }
  // A signal that did not fit the socket waits in sd-bus's queue: arm() now
  // also waits for writability, so it goes out without the next request.
  arm();
}

void Manager::arm() {
  if (stopped_ || !conn_) return;
  const std::uint64_t gen = ++generation_;
  error_code ignored;
  fd_.cancel(ignored);
  timer_.cancel();
  sdbus::IConnection::PollData pd{};
  try {
    pd = conn_->getEventLoopPollData();
  } catch (const sdbus::Error& e) {
    lost(e);
    return;
  }
  std::weak_ptr<int> alive = alive_;
  auto ready = [this, gen, alive](const error_code& ec) {
    if (ec || alive.expired() || gen != generation_) return;
    process();
  };
  if (pd.events & POLLIN) fd_.async_wait(asio::posix::descriptor_base::wait_read, ready);
  if (pd.events & POLLOUT) fd_.async_wait(asio::posix::descriptor_base::wait_write, ready);
  if (pd.timeout_usec != UINT64_MAX) {
    // An absolute CLOCK_MONOTONIC time, which is steady_clock's on Linux;
    // capped so that a far deadline cannot overflow the nanosecond clock.
    const auto now = std::chrono::steady_clock::now();
    const auto at = std::chrono::steady_clock::time_point(
        std::chrono::microseconds(std::min<std::uint64_t>(pd.timeout_usec, 1ull << 50)));
    timer_.expires_at(std::min(at, now + std::chrono::hours(1)));
    timer_.async_wait(ready);
  }
}

void Manager::process() {
  try {
    while (conn_->processPendingRequest()) {
    }
  } catch (const std::exception& e) {
    lost(e);
    return;
  }
  arm();
}

// The bus went away (dbus-daemon restarted): the connection is dropped and
// made again, with the object and the name, once the bus is back; until
// then D-Bus calls fail and signals are not sent. Nothing else is affected.
void Manager::lost(const std::exception& e) {
  log()->warn("dbus connection lost, reconnecting error={}", e.what());
  drop_connection();
  retry_delay_ = std::chrono::seconds(1);
  reconnect_later();
}

void Manager::retry_from_start(const base::Error& e) {
  log()->warn("dbus unavailable, retrying bus={} next_try_s={} error={}", options_.bus,
              retry_delay_.count(), e.to_string());
  reconnect_later();
}

void Manager::drop_connection() {
  ++generation_;  // waits armed on the old connection are stale
  error_code ignored;
  fd_.cancel(ignored);
  fd_.close(ignored);
  timer_.cancel();
  object_.reset();
  conn_.reset();
}

void Manager::reconnect_later() {
  retry_.expires_after(retry_delay_);
  std::weak_ptr<int> alive = alive_;
  retry_.async_wait([this, alive](const error_code& ec) {
    if (ec || alive.expired() || stopped_) return;
    auto r = open(options_);
    if (r) {
      log()->info("dbus reconnected name={} bus={}", kBusName, options_.bus);
      return;
    }
    // Warn while the interval still grows; a bus that stays away is then
    // retried every 30 s at debug level.
    const auto level = retry_delay_ < kMaxRetryDelay ? spdlog::level::warn : spdlog::level::debug;
    retry_delay_ = std::min(retry_delay_ * 2, kMaxRetryDelay);
    log()->log(level, "dbus reconnect failed next_try_s={} error={}", retry_delay_.count(),
               r.error().to_string());
    reconnect_later();
  });
}

void Manager::stop() {
  if (stopped_) return;
  stopped_ = true;
  retry_.cancel();
  if (!conn_) return;  // lost and not yet back
  error_code ignored;
  fd_.cancel(ignored);
  fd_.close(ignored);
  timer_.cancel();
  try {
    object_.reset();
    conn_->releaseName(kBusName);
  } catch (const sdbus::Error& e) {
    log()->warn("dbus name release failed error={}", e.what());
  }
  conn_.reset();  // flushes what is queued, then closes
  log()->info("dbus stopped name={}", kBusName);
}

}  // namespace

base::Result<std::unique_ptr<DbusManager>> DbusManager::start(boost::asio::io_context& io,
                                                              api::Service& service,
                                                              const DbusOptions& options) {
  auto m = std::make_unique<Manager>(io, service);
  if (auto r = m->open(options); !r) {
    if (r.error().code == base::Errc::kBadInput) return tl::unexpected(r.error());
    m->retry_from_start(r.error());
  }
  return std::unique_ptr<DbusManager>(std::move(m));
}

}  // namespace mtw::systemd
