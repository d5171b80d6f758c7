// One adopt path and one reap path for the gate and the workers (children.h).
#include "daemon/children.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "base/log.h"
#include "ipc/control_socket.h"

namespace mtw::daemon {
namespace {

namespace control = ipc::control;
using ipc::error_code;
using ipc::use_nothrow;

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("supervisor");
  return l;
}

// Waits for the pidfd to turn readable, reaps, and reports the status once.
awaitable<void> watch_exit(std::shared_ptr<ChildProc> c, ChildExit on_exit) {
  for (;;) {
    auto [ec] =
        co_await c->exit_watch.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec || c->gone) co_return;
    auto st = c->proc.try_reap();
    if (!st) {
      log()->warn("child wait failed pid={} error={}", c->pid, st.error().to_string());
      co_return;
    }
    if (!*st) continue;
    c->gone = true;
    c->cgroup.reset();  // empty now: removable
    error_code ignored;
    c->ctl.close(ignored);
    c->exit_watch.close(ignored);
    on_exit(c, **st);
    co_return;
  }
}

}  // namespace

std::shared_ptr<ChildProc> adopt_child(asio::io_context& io, Process proc, base::UniqueFd ctl,
                                       ChildExit on_exit) {
  auto c = std::make_shared<ChildProc>(io);
  c->proc = std::move(proc);
  c->pid = c->proc.pid();
  c->started = Clock::now();
  error_code ec;
  c->ctl.assign(ctl.release(), ec);
  c->ctl.non_blocking(true, ec);
  c->exit_watch.assign(::fcntl(c->proc.pidfd(), F_DUPFD_CLOEXEC, 0), ec);
  asio::co_spawn(io, watch_exit(c, std::move(on_exit)), ipc::LogExceptions{"child exit"});
  return c;
}

base::Result<void> send_to(ChildProc& c, const control::Message& m, int fd) {
  auto bytes = control::encode(m);
  if (!bytes) return base::fail(bytes.error().code, bytes.error().context);
  if (!c.ctl.is_open()) return base::fail(base::Errc::kNotFound, "child control socket closed");
  return control::send_datagram(c.ctl.native_handle(), *bytes, fd);
}

void request_report(ChildProc& c) {
  if (c.gone || !c.ctl.is_open()) return;
  (void)send_to(c, control::ReportRequest{});
}

void release_child(ChildProc& c) {
  c.gone = true;
  error_code ec;
  c.ctl.close(ec);
  c.exit_watch.close(ec);
}

base::Result<base::UniqueFd> memfd_with(const std::string& name, const std::string& text) {
  base::UniqueFd fd(::memfd_create(name.c_str(), MFD_CLOEXEC));
  if (!fd) return base::fail_errno("memfd_create");
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("write memfd");
    }
    off += static_cast<std::size_t>(n);
  }
  return fd;
}

std::uint64_t nofile_within_limit(std::uint64_t want) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
    return rl.rlim_max;
  }
  return want;
}

std::vector<std::string> child_env() {
  std::vector<std::string> env;
  for (const char* k : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TZ"}) {
    if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  }
  return env;
}

std::string find_child_bin(const std::string& configured, const char* name,
                           const char* build_path) {
  std::error_code ec;
  if (!configured.empty()) {
    auto abs = std::filesystem::absolute(configured, ec);
    return ec ? configured : abs.string();
  }
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto p = self.parent_path() / name;
    if (std::filesystem::exists(p, ec)) return p.string();
  }
  return build_path ? build_path : "";
}

void log_seccomp_denials(const char* child, const std::string& user, const ipc::Counters& before,
                         const ipc::Counters& now) {
  const auto k = ipc::Counter::kSeccompDenied;
  if (now[k] <= before[k]) return;
  if (user.empty()) {
    log()->warn("{} system calls denied by seccomp new={} total={}", child, now[k] - before[k],
                now[k]);
  } else {
    log()->warn("{} system calls denied by seccomp user={} new={} total={}", child, user,
                now[k] - before[k], now[k]);
  }
}

}  // namespace mtw::daemon
