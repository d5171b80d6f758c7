#include "netns/rate.h"

#include <algorithm>
#include <string>

namespace mtw::netns {

std::uint32_t burst_for_rate(std::uint64_t bits_per_sec) noexcept {
  std::uint64_t ten_ms = bits_per_sec / 8 / 100;
  std::uint64_t b = std::clamp<std::uint64_t>(ten_ms, 4 * kFrameBytes, 16u << 20);
  return static_cast<std::uint32_t>(b);
}

std::uint32_t quantum_for_rate(std::uint64_t bits_per_sec) noexcept {
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(bits_per_sec / 8 / 10, kFrameBytes, 200'000));
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
