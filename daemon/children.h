// The supervisor's children (the gate and the per-user workers) as the event
// loop sees them: the process, its control socket and the watch on its exit.
// One adopt path and one asynchronous reap path serve both kinds: nothing
// here waits in wait(2); the exit is seen when the pidfd turns readable.
// Thread: the event loop only. Lifetime: a ChildProc is shared by whoever
// serves it (the control loop, the exit watch, its owner), so a torn-down
// child's pending waits finish harmlessly; it is `gone` once reaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "ipc/asio.h"
#include "ipc/control_protocol.h"
#include "ipc/counters.h"
#include "supervisor/memory_bound.h"
#include "supervisor/spawn.h"

namespace mtw::daemon {

namespace asio = boost::asio;
using ipc::awaitable;
using ipc::Clock;
using supervisor::Process;
using supervisor::WorkerCgroup;

// A spawned gate or worker with its control socket and exit watcher.
struct ChildProc {
  explicit ChildProc(asio::io_context& io) : ctl(io), exit_watch(io) {}
  Process proc;
  pid_t pid = 0;                              // kept for logs after the reap
  asio::posix::stream_descriptor ctl;         // SOCK_SEQPACKET, our end
  asio::posix::stream_descriptor exit_watch;  // CLOEXEC dup of the pidfd
  Clock::time_point started;
  bool ready = false;     // answered the first report request
  bool stopping = false;  // we are ending it: its exit is no crash
  bool gone = false;      // exit handled
  std::uint64_t report_seq = 0;
  std::uint64_t profiles_gen = 0;                       // the mask profiles it has (mask_link.h)
  ipc::Counters counters;                               // last report (never billed: detail only)
  std::vector<ipc::control::UpstreamReport> upstreams;  // last report: egress upstreams
  std::optional<ipc::control::ClientsReport> clients;   // last report: open client addresses
  // A stopped worker's memory cgroup: removed only once the child is reaped
  // (cgroupfs refuses to remove a cgroup that still has a member).
  std::optional<WorkerCgroup> cgroup;
  // The cell egress generation a worker was started with (cell_egress.h),
  // released when it is reaped.
  std::optional<std::uint64_t> egress_generation;
  // A worker's live settings (supervisor/config.h, worker_live_flags): those
  // it was started with, then the last settings message it took.
  std::vector<std::string> live_flags;
  // A worker's egress (upstream_sync.h, egress_key): what it was started
  // with, then the last egress message it took. Holds credentials.
  std::string egress_key;
};

// Takes a spawned child into the loop: its control socket (our end of the
// pair, made non-blocking) and a CLOEXEC dup of its pidfd to watch. When the
// child exits, it is reaped, marked gone, its cgroup released and its
// sockets closed, then `on_exit(child, wait status)` runs on the loop.
// `on_exit` must not assume the child is still its owner's (it may have
// been replaced meanwhile).
using ChildExit = std::function<void(const std::shared_ptr<ChildProc>&, int)>;
std::shared_ptr<ChildProc> adopt_child(asio::io_context& io, Process proc, base::UniqueFd ctl,
                                       ChildExit on_exit);

// Sends one control message (with at most one descriptor) to the child:
// kNotFound when its control socket is closed, else the socket's error
// (EAGAIN when its buffer is full: the caller decides whether to retry).
[[nodiscard]] base::Result<void> send_to(ChildProc& c, const ipc::control::Message& m, int fd = -1);

// Asks a live child for a report; a closed one is skipped.
void request_report(ChildProc& c);

// Marks a child gone and closes its sockets without waiting for it (used at
// shutdown, after the children were killed and given their grace).
void release_child(ChildProc& c);

// What the gate and every worker get. RLIMIT_NPROC: processes and threads
// of its uid (each child has a uid of its own). A relay runs one thread
// plus Asio's resolver thread; the rest is headroom, not room for a fork
// bomb.
inline constexpr std::uint64_t kChildNproc = 16;
// A child may not get more descriptors than our own hard limit allows
// (raising it needs CAP_SYS_RESOURCE, which containers often lack).
std::uint64_t nofile_within_limit(std::uint64_t want);
// The environment a child gets: sanitizer settings and TZ pass through
// (test builds), nothing else does.
std::vector<std::string> child_env();
// A child program: `configured` (made absolute) when set, else `name` in our
// binary's directory, else `build_path` (the build tree's, may be null).
std::string find_child_bin(const std::string& configured, const char* name, const char* build_path);
// Warns when a child's report shows more calls refused by its seccomp filter
// than the previous one (a relay never makes them: worth an operator's look).
void log_seccomp_denials(const char* child, const std::string& user, const ipc::Counters& before,
                         const ipc::Counters& now);

// A CLOEXEC memfd holding `text`, for handing to a child as a file.
[[nodiscard]] base::Result<base::UniqueFd> memfd_with(const std::string& name,
                                                      const std::string& text);

}  // namespace mtw::daemon
