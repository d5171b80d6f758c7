// A thread that takes counter snapshots (CounterReader::snapshot) off the
// caller's thread. The RTM_GETSTATS dump runs under the kernel's rtnl lock;
// while the kernel's netns cleanup holds that lock (a batch of destroyed
// cells: 84 ms measured for ~230 namespaces at once), a dump on the
// supervisor's event loop would stall every handshake behind it.
// Thread-safety: request() and busy() from one thread (the owner's);
// `done` runs on the poller's thread, so it must only hand the snapshot on
// (e.g. post it to an io_context).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "netns/counters.h"

namespace mtw::netns {

class CounterPoller {
 public:
  using Done = std::function<void(base::Result<CounterSnapshot>)>;

  // Opens the reader on the calling thread (so it reads the caller's
  // namespace: a netlink socket keeps the namespace it was created in) and
  // starts the thread.
  [[nodiscard]] static base::Result<std::unique_ptr<CounterPoller>> start();

  CounterPoller(const CounterPoller&) = delete;
  CounterPoller& operator=(const CounterPoller&) = delete;
  // Stops and joins the thread. A dump under way finishes first (a netlink
  // dump cannot be cancelled); its `done` is then not called.
  ~CounterPoller();

  // Queues one snapshot; `done` gets it (or the error) on the poller
  // thread. At most one request is pending or running: false (and `done`
  // dropped) while the previous one has not finished, so slow dumps never
  // pile up.
  bool request(Done done);
  // A request is pending or running (its `done` has not returned yet).
  bool busy() const;

 private:
  explicit CounterPoller(CounterReader reader) : reader_(std::move(reader)) {}
  void run();

  CounterReader reader_;  // used only by thread_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Done pending_;        // guarded by mu_
  bool busy_ = false;   // guarded by mu_
  bool stop_ = false;   // guarded by mu_
  std::thread thread_;  // last: started after everything it uses exists
};

}  // namespace mtw::netns
