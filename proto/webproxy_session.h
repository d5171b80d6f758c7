// One WEB proxy session from the relay's side (../shared/docs/webproxy.md
// §1.5, §2.1, §4.3): the HELLO/WELCOME handshake, the stream table with its
// limits and tombstones, per-stream flow control, PING/PONG, BYE, and the
// bounded queue of frames waiting for the carrier. It advances on input
// (carrier messages, bytes delivered to a backend, the caller's clock as a
// value) and reports what the worker must do as events; it does no I/O.
//
// Faults: a frame that breaks the protocol ends the session (every stream
// closes with that reason) or, where the damage is confined to one stream,
// only that stream (answered with CLOSE). The session's reason is
// close_reason(); each stream's is counted in stream_closes().
// Memory: the outbound queue is capped (WebSessionLimits); uplink bytes the
// worker still holds are bounded by the streams' windows (at most
// max_streams * kWebInitialWindow) and reported by uplink_buffered().
//
// Thread-safety: single owner. A WebUserBudget is shared by one user's
// sessions on one thread and must outlive them.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "proto/webproxy_flow.h"
#include "proto/webproxy_frame.h"

namespace mtw::proto {

// Limits across one user's sessions.
class WebUserBudget {
 public:
  WebUserBudget(std::uint32_t max_sessions, std::uint32_t max_streams) noexcept
      : max_sessions_(max_sessions), max_streams_(max_streams) {}
  WebUserBudget(const WebUserBudget&) = delete;
  WebUserBudget& operator=(const WebUserBudget&) = delete;

  [[nodiscard]] bool try_acquire_session() noexcept;
  void release_session() noexcept;
  [[nodiscard]] bool try_acquire_stream() noexcept;
  void release_stream() noexcept;
  std::uint32_t sessions() const noexcept { return sessions_; }
  std::uint32_t streams() const noexcept { return streams_; }

 private:
  std::uint32_t max_sessions_;
  std::uint32_t max_streams_;
  std::uint32_t sessions_ = 0;
  std::uint32_t streams_ = 0;
};

struct WebSessionLimits {
  std::uint32_t max_streams = 16;  // open at once in one session
  // Encoded frames waiting for the carrier. Data is only produced within
  // the room left (downlink_allowance); a reply the app's input calls for
  // (WELCOME, PONG, CLOSE of a refused stream) that does not fit ends the
  // session with kBufferLimit. WINDOWs wait for room. Each open stream
  // keeps 8 bytes reserved for its CLOSE, so outbound_bytes() + 8 * open
  // streams never passes this (BYE, the last frame, aside). An OPEN that
  // finds no room for that reserve is refused.
  std::size_t max_outbound_bytes = 2 * 1024 * 1024;
  // Closed ids remembered so late frames for them are dropped quietly; the
  // reference relay and the app both keep 4096.
  std::size_t tombstones = 4096;
};

enum class WebSessionState {
  kAwaitHello,  // nothing but HELLO(0, 01) is acceptable
  kOpen,        // WELCOME queued; streams may open
  kClosed,      // after a fault or BYE; every input is ignored
};

// What the worker has to do after an input.
struct WebEvent {
  enum class Kind {
    kOpened,  // dial the backend for stream_id
    kData,    // write `data` to stream_id's backend, then report on_delivered()
    kClosed,  // the stream is gone (reason says why); drop its backend
  };
  Kind kind = Kind::kData;
  std::uint32_t stream_id = 0;
  ByteSpan data;  // kData only; points into the message passed to on_message()
  WebReason reason = WebReason::kNone;
};

class WebSession {
 public:
  // A session slot from `budget`, or nullopt at the user's session limit.
  [[nodiscard]] static std::optional<WebSession> start(const WebSessionLimits& limits,
                                                       WebUserBudget& budget);
  WebSession(WebSession&& o) noexcept;
  WebSession& operator=(WebSession&&) = delete;
  WebSession(const WebSession&) = delete;
  ~WebSession();  // returns the session's streams and slot to the budget

  // Applies one carrier message (one or more frames, decode_web_batch).
  // Appends events; replies go to the outbound queue. A session-level fault
  // closes the session (kClosed events for every open stream) and is
  // returned; stream-level faults are counted and do not fail the call. In
  // kClosed, returns the closing reason and does nothing.
  [[nodiscard]] WebResult<void> on_message(ByteSpan message, std::vector<WebEvent>& events);
  // The same for one frame (carriers that decode incrementally); the frame
  // is checked against the codec's rules first (check_web_frame).
  [[nodiscard]] WebResult<void> on_frame(const WebFrame& frame, std::vector<WebEvent>& events);

  // `n` bytes of stream_id's DATA reached its backend. A stream that is
  // gone is ignored (its bytes no longer count). May queue a WINDOW.
  void on_delivered(std::uint32_t stream_id, std::size_t n, std::uint64_t now_ms);
  // Queues every WINDOW that has fallen due (see WebStreamFlow::take_grant).
  // A WINDOW never overflows the queue: when it does not fit, the grant stays
  // pending until the carrier drains (take_outbound) and on_tick() runs again.
  void on_tick(std::uint64_t now_ms);
  // The earliest time on_tick() has work; nullopt when none is pending, or
  // while the queue has no room for a WINDOW (re-ask after take_outbound()).
  std::optional<std::uint64_t> next_deadline_ms() const;

  // How many backend bytes stream_id may send now: its credit, at most
  // kWebDataChunk, and what fits in the outbound queue. 0 for a stream that
  // is not open or a session that is not kOpen.
  std::size_t downlink_allowance(std::uint32_t stream_id) const;
  // Queues DATA; 1 <= data.size() <= downlink_allowance(stream_id) (MTW_CHECK).
  void send_data(std::uint32_t stream_id, ByteSpan data);
  // The relay ends a stream (backend closed or failed): CLOSE is queued, the
  // id tombstoned; no event. Ignored for a stream that is not open. Room
  // for this CLOSE is reserved while the stream is open, so it always fits.
  void close_stream(std::uint32_t stream_id);
  // PING with up to 64 bytes of payload; the PONG must echo it. false when
  // one is already in flight or the session is not kOpen.
  [[nodiscard]] bool send_ping(ByteSpan payload);
  bool ping_in_flight() const noexcept { return ping_.has_value(); }
  // Queues BYE and closes the session with kLocalClose (kClosed events).
  void send_bye(std::vector<WebEvent>& events);

  // Removes whole frames from the front of the queue into one carrier
  // message: at most `max_bytes` (but always the first frame) and at most
  // kMaxWebBatchFrames frames. Empty when nothing is queued.
  [[nodiscard]] Bytes take_outbound(std::size_t max_bytes);
  std::size_t outbound_bytes() const noexcept { return outbound_bytes_; }
  std::size_t outbound_frames() const noexcept { return outbound_.size(); }

  WebSessionState state() const noexcept { return state_; }
  WebReason close_reason() const noexcept { return close_reason_; }
  std::size_t open_streams() const noexcept { return streams_.size(); }
  bool stream_open(std::uint32_t id) const { return streams_.contains(id); }
  // Received DATA bytes the worker has not reported delivered, all streams.
  std::size_t uplink_buffered() const noexcept { return uplink_buffered_; }
  const WebStreamFlow* flow(std::uint32_t id) const;
  // Streams closed (or refused) per reason; session-level faults are not here.
  std::uint64_t stream_closes(WebReason r) const noexcept {
    return stream_closes_[static_cast<std::size_t>(r)];
  }
  // Frames for tombstoned ids, dropped as the contract says.
  std::uint64_t late_frames() const noexcept { return late_frames_; }

 private:
  WebSession(const WebSessionLimits& limits, WebUserBudget& budget);

  WebResult<void> handle(const WebFrame& f, std::vector<WebEvent>& events);
  WebResult<void> handle_open(std::uint32_t id, std::vector<WebEvent>& events);
  WebResult<void> handle_data(const WebFrame& f, std::vector<WebEvent>& events);
  WebResult<void> handle_window(const WebFrame& f, std::vector<WebEvent>& events);
  WebResult<void> handle_pong(ByteSpan payload);
  WebResult<void> fail(WebReason r, std::vector<WebEvent>& events);
  // Removes an open stream (budget, buffered bytes), tombstones it, counts `r`.
  void drop_stream(std::uint32_t id, WebReason r);
  // CLOSE for an id the worker never saw (refused OPEN, unknown stream).
  WebResult<void> refuse(std::uint32_t id, WebReason r);
  void tombstone(std::uint32_t id);
  // Appends an encoded frame to the queue; kBufferLimit when it does not fit.
  WebResult<void> enqueue(Bytes frame);
  std::size_t close_reserve() const noexcept;
  bool room_for_window() const noexcept;
  // Takes the stream's due grant and queues its WINDOW, if the queue has room.
  void queue_grant(std::uint32_t id, WebStreamFlow& flow, std::uint64_t now_ms);

  WebSessionLimits limits_;
  WebUserBudget* budget_;  // nullptr once moved from
  WebSessionState state_ = WebSessionState::kAwaitHello;
  WebReason close_reason_ = WebReason::kNone;
  std::unordered_map<std::uint32_t, WebStreamFlow> streams_;
  std::unordered_set<std::uint32_t> tombstones_;
  std::deque<std::uint32_t> tombstone_order_;
  std::deque<Bytes> outbound_;
  std::size_t outbound_bytes_ = 0;
  std::size_t uplink_buffered_ = 0;
  std::optional<Bytes> ping_;
  std::array<std::uint64_t, kWebReasonCount> stream_closes_{};
  std::uint64_t late_frames_ = 0;
};

}  // namespace mtw::proto
