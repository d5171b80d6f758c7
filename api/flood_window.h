// Private to api/: folds a flood of like events (refused connections,
// failed authentications) into a bounded number of log lines. The first
// event after a quiet period opens a window and is logged on its own; the
// events after it in the window are only counted, and flush() at the
// window's end reports them as one summary ("N in the last 10 s from P
// peers") and opens the next window. So a flood that goes on costs one line
// per window however fast it comes, and a window without events closes the
// flood (the next event is logged on its own again).
// Pure: time is an argument. Not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_set>

namespace mtw::api::detail {

class FloodWindow {
 public:
  using Clock = std::chrono::steady_clock;
  // Distinct peers tracked per window; beyond it `peers` stops growing and
  // the summary says so (a bound on memory under a spread-out flood).
  static constexpr std::size_t kMaxPeers = 4096;

  struct Summary {
    std::uint64_t count = 0;  // events since the one logged on its own / the last summary
    std::size_t peers = 0;    // distinct peers among them (at most kMaxPeers)
    bool peers_capped = false;
  };

  explicit FloodWindow(Clock::duration window) : window_(window) {}

  // Counts one event from `peer`. Returns true when it opened a window: the
  // caller logs it on its own (and arranges a flush at window_end()).
  bool record(std::string_view peer, Clock::time_point now);
  // At or after window_end(): the events counted in the window (then the
  // next window opens at `now`), or nullopt when there were none (then the
  // window closes) or the window has not ended yet.
  std::optional<Summary> flush(Clock::time_point now);
  // What is counted and not yet reported, regardless of time (for stop);
  // the window closes.
  std::optional<Summary> drain();
  // The end of the open window; nullopt when none is open.
  std::optional<Clock::time_point> window_end() const { return end_; }

 private:
  std::optional<Summary> take();

  Clock::duration window_;
  std::optional<Clock::time_point> end_;
  std::uint64_t count_ = 0;
  std::unordered_set<std::size_t> peers_;  // hashes of the peer names
  bool capped_ = false;
};

}  // namespace mtw::api::detail
