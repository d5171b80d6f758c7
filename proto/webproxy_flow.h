// Per-stream flow control of the WEB proxy (../shared/docs/webproxy.md §1.5,
// §2.1 "Relay WINDOW", §4.3): credit both ways, from the relay's side.
//  - Uplink (app -> relay -> backend): the app may send as many DATA bytes as
//    the relay granted (4 MiB to start). The relay grants them back with
//    WINDOW only after they were written to the backend, never on receipt,
//    so a stream holds at most its window in the relay's buffers.
//  - Downlink (relay -> app): the relay sends at most the app's credit (4 MiB
//    to start, raised by the app's WINDOWs) in DATA frames of at most 64 KiB,
//    and reads its backend only while it has credit.
// Pure: no clock; times are the caller's milliseconds, passed in.
// Thread-safety: a plain value; one owner.
#pragma once

#include <cstdint>
#include <optional>

#include "proto/webproxy_frame.h"

namespace mtw::proto {

// The window both sides assume at OPEN; fixed by the protocol, not negotiable.
inline constexpr std::uint32_t kWebInitialWindow = 4 * 1024 * 1024;
// Largest DATA payload the relay sends (what the app itself sends).
inline constexpr std::size_t kWebDataChunk = 64 * 1024;
// Credit above this is refused (kWindowOverflow): the app only grants back
// what it read, so its legitimate credit never passes kWebInitialWindow; the
// cap leaves room for a larger window in a future client and keeps sums far
// from overflow.
inline constexpr std::uint64_t kMaxWebCredit = std::uint64_t{1} << 31;
// Grants are coalesced like the app does its own: sent when this much is
// pending, or kWebGrantDelayMs after the first pending byte.
inline constexpr std::uint32_t kWebGrantBatch = 256 * 1024;
inline constexpr std::uint64_t kWebGrantDelayMs = 20;

class WebStreamFlow {
 public:
  // --- uplink ---
  // DATA of `n` bytes arrived. kWindowOverrun when n exceeds uplink_credit()
  // (nothing changes then).
  [[nodiscard]] WebResult<void> on_data_received(std::size_t n) noexcept;
  // `n` of the received bytes reached the backend socket at `now_ms`; they
  // become grantable. n must not exceed uplink_buffered() (MTW_CHECK).
  void on_delivered(std::size_t n, std::uint64_t now_ms) noexcept;
  // The WINDOW credit to send now, or 0 when none is due: due when at least
  // kWebGrantBatch is pending, or anything is pending and now_ms has reached
  // grant_deadline_ms(). Taking it restores that much uplink credit.
  [[nodiscard]] std::uint32_t take_grant(std::uint64_t now_ms) noexcept;
  // When a pending grant falls due; nullopt when nothing is pending.
  std::optional<std::uint64_t> grant_deadline_ms() const noexcept;
  std::uint64_t uplink_credit() const noexcept { return up_credit_; }
  std::size_t uplink_buffered() const noexcept { return up_buffered_; }
  std::size_t uplink_pending_grant() const noexcept { return up_pending_; }

  // --- downlink ---
  // Bytes the relay may put in its next DATA frame: min(credit, kWebDataChunk).
  std::size_t downlink_allowance() const noexcept;
  // A DATA frame of `n` bytes was queued; n <= downlink_credit() (MTW_CHECK).
  void on_data_sent(std::size_t n) noexcept;
  // A WINDOW from the app. kZeroWindow, or kWindowOverflow when the credit
  // would pass kMaxWebCredit (nothing changes then).
  [[nodiscard]] WebResult<void> on_window(std::uint32_t credit) noexcept;
  std::uint64_t downlink_credit() const noexcept { return down_credit_; }

 private:
  std::uint64_t up_credit_ = kWebInitialWindow;  // the app may still send this much
  std::size_t up_buffered_ = 0;                  // received, not yet at the backend
  std::size_t up_pending_ = 0;                   // at the backend, not yet granted back
  std::uint64_t up_pending_since_ms_ = 0;        // when up_pending_ last left 0
  std::uint64_t down_credit_ = kWebInitialWindow;
};

}  // namespace mtw::proto
