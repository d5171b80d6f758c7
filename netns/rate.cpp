#include "netns/rate.h"

#include <algorithm>
#include <limits>
#include <string>

namespace mtw::netns {

std::uint64_t wire_bps(std::uint64_t payload_bps) noexcept {
  // Split so payload * kFrameBytes cannot overflow for any input.
  const std::uint64_t whole = payload_bps / kPayloadPerFrame;
  const std::uint64_t rest = payload_bps % kPayloadPerFrame;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  if (whole > (kMax - kFrameBytes) / kFrameBytes) return kMax;
  return whole * kFrameBytes + (rest * kFrameBytes + kPayloadPerFrame - 1) / kPayloadPerFrame;
}

std::uint32_t burst_for_rate(std::uint64_t bits_per_sec) noexcept {
  std::uint64_t ten_ms = bits_per_sec / 8 / 100;
  std::uint64_t b = std::clamp<std::uint64_t>(ten_ms, 4 * kFrameBytes, 16u << 20);
  return static_cast<std::uint32_t>(b);
}

std::uint32_t quantum_for_rate(std::uint64_t bits_per_sec) noexcept {
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(bits_per_sec / 8 / 10, kFrameBytes, 200'000));
}

std::uint32_t queue_limit_for_rate(std::uint64_t bits_per_sec) noexcept {
  std::uint64_t hundred_ms = bits_per_sec / 8 / 10;
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(hundred_ms, kMaxGsoBytes, 32u << 20));
}

base::Result<std::uint32_t> effective_burst(const Rate& r) {
  if (r.bits_per_sec < kMinRateBps || r.bits_per_sec > kMaxRateBps) {
    return base::fail(base::Errc::kBadInput,
                      "rate out of range bits_per_sec=" + std::to_string(r.bits_per_sec));
  }
  if (r.burst_bytes == 0) return burst_for_rate(r.bits_per_sec);
  if (r.burst_bytes < kFrameBytes) {
    return base::fail(base::Errc::kBadInput,
                      "burst below one frame burst_bytes=" + std::to_string(r.burst_bytes));
  }
  return r.burst_bytes;
}

}  // namespace mtw::netns

namespace mtw::netns {

base::Result<std::uint32_t> effective_queue(const Rate& r) {
  if (auto b = effective_burst(r); !b) return tl::unexpected(b.error());
  if (r.queue_bytes == 0) return queue_limit_for_rate(r.bits_per_sec);
  if (r.queue_bytes < kMaxGsoBytes) {
    return base::fail(base::Errc::kBadInput,
                      "queue below one GSO packet queue_bytes=" + std::to_string(r.queue_bytes));
  }
  return r.queue_bytes;
}

}  // namespace mtw::netns
