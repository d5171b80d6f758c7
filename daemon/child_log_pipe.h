// A child's log channel, the I/O part: a pipe whose write end becomes the
// child's stdout and stderr, read on the supervisor's event loop and
// re-logged line by line through ChildLogFilter (child_log.h), tagged with
// the child. Reading is paced (ChildLogLimits::bytes_per_s): above it the
// pipe fills and only the flooding child waits on its own writes; neither
// the loop nor other children do.
// Thread-safety: the loop's thread. Lifetime: the read coroutine holds the
// object until every writer has closed the pipe (the child exited); the
// io_context must outlive it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/unique_fd.h"
#include "ipc/asio.h"
#include "supervisor/child_log.h"

namespace mtw::daemon {

using supervisor::ChildLogFilter;
using supervisor::ChildLogLimits;
using supervisor::TokenBucket;

class ChildLogPipe : public std::enable_shared_from_this<ChildLogPipe> {
 public:
  // The pipe (both ends CLOEXEC). kSyscall when pipe2 fails.
  [[nodiscard]] static base::Result<std::shared_ptr<ChildLogPipe>> open(boost::asio::io_context& io,
                                                                        ChildLogLimits limits = {});

  // The write end, for the spawn's fd layout (as the child's 1 and 2).
  int child_fd() const noexcept { return write_.get(); }

  // After the spawn (successful or not): closes our copy of the write end
  // and reads until EOF. `tag` prefixes every line ("child=worker
  // user=alice pid=123").
  void start(std::string tag);

 private:
  ChildLogPipe(boost::asio::io_context& io, base::UniqueFd rd, base::UniqueFd wr,
               ChildLogLimits limits);
  // Reads to EOF; `self` keeps the object alive meanwhile.
  ipc::awaitable<void> run(std::shared_ptr<ChildLogPipe> self);
  void emit(std::string_view line, std::size_t cut);
  // Logs the dropped-lines summary when due (or `force`d, at EOF).
  void report_dropped(ipc::Clock::time_point now, bool force);

  boost::asio::posix::stream_descriptor read_;
  base::UniqueFd write_;
  boost::asio::steady_timer pace_, report_;
  ChildLogLimits limits_;
  ChildLogFilter filter_;
  TokenBucket bytes_;
  std::string tag_;
  ipc::Clock::time_point last_report_{};
  bool report_armed_ = false;
  std::uint64_t dropped_total_ = 0;
};

// A pipe for a child's stdout/stderr, or nullptr (logged) when none could be
// made: the child then writes to /dev/null. `what` names the child in the log.
std::shared_ptr<ChildLogPipe> open_child_log_pipe(boost::asio::io_context& io,
                                                  std::string_view what);

}  // namespace mtw::daemon
