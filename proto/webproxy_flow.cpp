#include "proto/webproxy_flow.h"

#include <algorithm>

#include "base/check.h"

namespace mtw::proto {

WebResult<void> WebStreamFlow::on_data_received(std::size_t n) noexcept {
  if (n > up_credit_) return tl::unexpected(WebReason::kWindowOverrun);
  up_credit_ -= n;
  up_buffered_ += n;
  return {};
}

void WebStreamFlow::on_delivered(std::size_t n, std::uint64_t now_ms) noexcept {
  MTW_CHECK(n <= up_buffered_);
  if (n == 0) return;
  if (up_pending_ == 0) up_pending_since_ms_ = now_ms;
  up_buffered_ -= n;
  up_pending_ += n;
}

std::uint32_t WebStreamFlow::take_grant(std::uint64_t now_ms) noexcept {
  if (up_pending_ == 0) return 0;
  if (up_pending_ < kWebGrantBatch && now_ms < up_pending_since_ms_ + kWebGrantDelayMs) return 0;
  // up_pending_ <= kWebInitialWindow: only received bytes become pending.
  const auto grant = static_cast<std::uint32_t>(up_pending_);
  up_pending_ = 0;
  up_credit_ += grant;
  return grant;
}

std::optional<std::uint64_t> WebStreamFlow::grant_deadline_ms() const noexcept {
  if (up_pending_ == 0) return std::nullopt;
  if (up_pending_ >= kWebGrantBatch) return up_pending_since_ms_;
  return up_pending_since_ms_ + kWebGrantDelayMs;
}

std::size_t WebStreamFlow::downlink_allowance() const noexcept {
  return static_cast<std::size_t>(std::min<std::uint64_t>(down_credit_, kWebDataChunk));
}

void WebStreamFlow::on_data_sent(std::size_t n) noexcept {
  MTW_CHECK(n <= down_credit_);
  down_credit_ -= n;
}

WebResult<void> WebStreamFlow::on_window(std::uint32_t credit) noexcept {
  if (credit == 0) return tl::unexpected(WebReason::kZeroWindow);
  if (down_credit_ + credit > kMaxWebCredit) return tl::unexpected(WebReason::kWindowOverflow);
  down_credit_ += credit;
  return {};
}

}  // namespace mtw::proto
