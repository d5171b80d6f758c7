// A child's log channel, the pure part: the gate and every worker write
// their stderr into a pipe of their own (child_log_pipe.h), and the
// supervisor re-logs each line tagged with the child
// (`child=worker user=alice pid=123 line="..."`). A child is untrusted, so
// what it writes cannot pass for the supervisor's own lines: the line is
// quoted with control characters, quotes, backslashes and non-ASCII bytes
// escaped (no forged newline, no terminal escape), cut at a length cap, and
// admitted at a bounded rate (token bucket); lines over the rate are
// counted and reported as one "lines dropped" summary per period.
// Pure: bytes and time are arguments. Not thread-safe (one per child).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

namespace mtw::supervisor {

struct ChildLogLimits {
  std::size_t max_line_bytes = 1024;  // longer lines are cut (the cut is reported)
  double lines_per_s = 50;            // admitted lines per second, sustained
  double burst_lines = 200;           // and in one burst (an ASan report fits)
  // The reader pauses above this (the child then blocks on its own writes
  // once the pipe is full): a flood costs the supervisor a bounded amount
  // of reading, whatever the child does.
  double bytes_per_s = 256 * 1024;
  double burst_bytes = 1024 * 1024;
  std::chrono::milliseconds report_every{10'000};  // "lines dropped" at most this often
};

// `raw` made safe to print inside double quotes: \" \\ \t, and \xNN for
// every other byte below 0x20, 0x7f and every byte from 0x80.
std::string escape_log_line(std::string_view raw);

// The spdlog level name a child's line starts with after its timestamp
// ("2026-12-07T10:00:00.123 warning [worker] ..." -> "warning"), or "info"
// when there is none. Only chooses the level the line is re-logged at.
std::string_view child_line_level(std::string_view raw);

// Token bucket: `rate` per second, up to `burst`. Starts full.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  // Takes `n` tokens if there are that many (after refilling up to `now`).
  bool take(double n, Clock::time_point now);
  // Takes `n` even if that goes below zero (bytes already read).
  void charge(double n, Clock::time_point now);
  // How long until the bucket holds at least `n` (zero when it does).
  Clock::duration wait_for(double n, Clock::time_point now);

 private:
  void refill(Clock::time_point now);
  double rate_, burst_, tokens_;
  Clock::time_point last_{};
  bool started_ = false;
};

class ChildLogFilter {
 public:
  using Clock = std::chrono::steady_clock;
  // emit(raw line without its newline (at most max_line_bytes), bytes cut
  // off its end).
  using Emit = std::function<void(std::string_view line, std::size_t cut)>;

  explicit ChildLogFilter(ChildLogLimits limits = {})
      : limits_(limits), lines_(limits.lines_per_s, limits.burst_lines) {}

  // Splits `bytes` into lines (a line may span calls) and emits those the
  // rate admits; the others are counted as dropped.
  void feed(std::string_view bytes, Clock::time_point now, const Emit& emit);
  // End of the stream: an unterminated last line is a line too.
  void finish(Clock::time_point now, const Emit& emit);
  // Lines dropped since the last call; resets the count.
  std::uint64_t take_dropped() { return std::exchange(dropped_, 0); }
  std::uint64_t dropped() const noexcept { return dropped_; }

 private:
  void end_line(Clock::time_point now, const Emit& emit);

  ChildLogLimits limits_;
  TokenBucket lines_;
  std::string line_;     // the current line's kept bytes
  std::size_t cut_ = 0;  // and how many were cut off it
  bool in_line_ = false;
  std::uint64_t dropped_ = 0;
};

}  // namespace mtw::supervisor
