#include "supervisor/backoff.h"

#include <algorithm>

namespace mtw::supervisor {

namespace {
// 2^31 x min overflows nothing we care about long before this; the delay is
// already clamped to `max` after a handful of doublings.
constexpr std::uint32_t kMaxExponent = 30;
}  // namespace

RestartPolicy::Decision RestartPolicy::on_crash(Clock::time_point started, Clock::time_point now) {
  // A child that stayed up for a whole window was healthy: its crash starts
  // a new history (first delay = min again, crash count 1).
  if (now - started >= opts_.window) {
    streak_ = 0;
    crashes_.clear();
  }
  while (!crashes_.empty() && now - crashes_.front() >= opts_.window) crashes_.pop_front();
  crashes_.push_back(now);

  Decision d;
  if (opts_.limit > 0 && crashes_.size() >= opts_.limit) {
    d.failed = true;
    return d;
  }
  const std::uint32_t exp = std::min(streak_, kMaxExponent);
  const auto min_ms = opts_.min.count();
  const auto max_ms = std::max(opts_.max.count(), min_ms);
  // min * 2^exp without overflow: stop doubling once past max.
  auto delay_ms = min_ms;
  for (std::uint32_t i = 0; i < exp && delay_ms < max_ms; ++i) delay_ms *= 2;
  d.delay = std::chrono::milliseconds(std::min(delay_ms, max_ms));
  if (streak_ < kMaxExponent) ++streak_;
  ++restarts_;
  return d;
}

void RestartPolicy::reset() noexcept {
  crashes_.clear();
  streak_ = 0;
}

}  // namespace mtw::supervisor
