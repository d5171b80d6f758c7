// Restart policy for a crashed child (worker or gate): exponential backoff
// from `min` to `max` (first restart after `min`, so within 1 s with the
// defaults), reset once the child stayed up for a whole crash-loop window,
// and "failed" once `limit` crashes happen inside one window. Pure: the
// caller passes the clock. Thread-safe as a value.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace mtw::supervisor {

class RestartPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds min{250};
    std::chrono::milliseconds max{30'000};
    std::chrono::milliseconds window{60'000};
    std::uint32_t limit = 5;  // crashes within `window` that mean "failed"
  };
  struct Decision {
    bool failed = false;                 // crash loop: do not restart
    std::chrono::milliseconds delay{0};  // restart after this long
  };

  explicit RestartPolicy(Options o) : opts_(o) {}
  // The child was started at `started`, crashed at `now`.
  Decision on_crash(Clock::time_point started, Clock::time_point now);
  // Forget the crash history (operator re-enabled the user, config reload).
  void reset() noexcept;
  std::uint32_t restarts() const noexcept { return restarts_; }  // total since creation

 private:
  Options opts_;
  std::deque<Clock::time_point> crashes_;  // within the window
  std::uint32_t streak_ = 0;               // consecutive quick crashes: the backoff exponent
  std::uint32_t restarts_ = 0;
};

}  // namespace mtw::supervisor
