#include "daemon/child_log_pipe.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "base/log.h"

namespace mtw::daemon {

namespace asio = boost::asio;
using ipc::Clock;
using ipc::error_code;
using ipc::use_nothrow;
using supervisor::child_line_level;
using supervisor::escape_log_line;

namespace {

const std::shared_ptr<spdlog::logger>& child_logger() {
  static const auto l = base::logger("supervisor");
  return l;
}

// One read: at most this much is scanned before the pace is checked again.
constexpr std::size_t kReadChunk = 16 * 1024;

}  // namespace

base::Result<std::shared_ptr<ChildLogPipe>> ChildLogPipe::open(asio::io_context& io,
                                                               ChildLogLimits limits) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return base::fail_errno("child log pipe");
  base::UniqueFd rd(fds[0]), wr(fds[1]);
  if (::fcntl(rd.get(), F_SETFL, O_NONBLOCK) != 0) return base::fail_errno("child log O_NONBLOCK");
  return std::shared_ptr<ChildLogPipe>(new ChildLogPipe(io, std::move(rd), std::move(wr), limits));
}

std::shared_ptr<ChildLogPipe> open_child_log_pipe(asio::io_context& io, std::string_view what) {
  auto p = ChildLogPipe::open(io);
  if (!p) {
    child_logger()->warn("no log channel for a child, its output is discarded child={} error={}",
                         what, p.error().to_string());
    return nullptr;
  }
  return std::move(*p);
}

ChildLogPipe::ChildLogPipe(asio::io_context& io, base::UniqueFd rd, base::UniqueFd wr,
                           ChildLogLimits limits)
    : read_(io, rd.release()),
      write_(std::move(wr)),
      pace_(io),
      report_(io),
      limits_(limits),
      filter_(limits),
      bytes_(limits.bytes_per_s, limits.burst_bytes) {}

void ChildLogPipe::start(std::string tag) {
  tag_ = std::move(tag);
  write_.reset();  // EOF comes once the child (the last writer) is gone
  // The coroutine starts later (posted): it holds its own reference.
  asio::co_spawn(read_.get_executor(), run(shared_from_this()), ipc::LogExceptions{"child log"});
}

void ChildLogPipe::emit(std::string_view line, std::size_t cut) {
  const auto level = spdlog::level::from_str(std::string(child_line_level(line)));
  if (cut == 0) {
    child_logger()->log(level, "child output {} line=\"{}\"", tag_, escape_log_line(line));
  } else {
    child_logger()->log(level, "child output {} line=\"{}\" cut_bytes={}", tag_,
                        escape_log_line(line), cut);
  }
}

void ChildLogPipe::report_dropped(Clock::time_point now, bool force) {
  if (filter_.dropped() == 0) return;
  if (!force && now - last_report_ < limits_.report_every) {
    if (report_armed_) return;
    // A child that goes quiet after a flood still gets its summary.
    report_armed_ = true;
    report_.expires_at(last_report_ + limits_.report_every);
    report_.async_wait([self = shared_from_this()](const error_code& ec) {
      self->report_armed_ = false;
      if (!ec) self->report_dropped(Clock::now(), true);
    });
    return;
  }
  last_report_ = now;
  const std::uint64_t n = filter_.take_dropped();
  dropped_total_ += n;
  child_logger()->warn("child output lines dropped {} lines={} total={} limit_per_s={}", tag_, n,
                       dropped_total_, limits_.lines_per_s);
}

ipc::awaitable<void> ChildLogPipe::run(std::shared_ptr<ChildLogPipe> /*self*/) {
  auto emit_fn = [this](std::string_view line, std::size_t cut) { emit(line, cut); };
  std::string buf(kReadChunk, '\0');
  for (;;) {
    // Pace: a child over its byte budget waits here, and its writes block
    // once the pipe is full.
    if (auto wait = bytes_.wait_for(1, Clock::now()); wait > Clock::duration::zero()) {
      pace_.expires_after(wait);
      co_await pace_.async_wait(use_nothrow);
    }
    auto [ec] = co_await read_.async_wait(asio::posix::descriptor_base::wait_read, use_nothrow);
    if (ec) break;
    const ssize_t n = ::read(read_.native_handle(), buf.data(), buf.size());
    const auto now = Clock::now();
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;  // EOF (or a read error: nothing more to get)
    bytes_.charge(static_cast<double>(n), now);
    filter_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), now, emit_fn);
    report_dropped(now, false);
  }
  filter_.finish(Clock::now(), emit_fn);
  report_.cancel();
  report_dropped(Clock::now(), true);
  error_code ignored;
  read_.close(ignored);
}

}  // namespace mtw::daemon
