#include "proto/webproxy_session.h"

#include <algorithm>

#include "base/check.h"

namespace mtw::proto {

bool WebUserBudget::try_acquire_session() noexcept {
  if (sessions_ >= max_sessions_) return false;
  ++sessions_;
  return true;
}
void WebUserBudget::release_session() noexcept {
  MTW_CHECK(sessions_ > 0);
  --sessions_;
}
bool WebUserBudget::try_acquire_stream() noexcept {
  if (streams_ >= max_streams_) return false;
  ++streams_;
  return true;
}
void WebUserBudget::release_stream() noexcept {
  MTW_CHECK(streams_ > 0);
  --streams_;
}

std::optional<WebSession> WebSession::start(const WebSessionLimits& limits, WebUserBudget& budget) {
  if (!budget.try_acquire_session()) return std::nullopt;
  return std::optional<WebSession>(WebSession(limits, budget));
}

WebSession::WebSession(const WebSessionLimits& limits, WebUserBudget& budget)
    : limits_(limits), budget_(&budget) {}

WebSession::WebSession(WebSession&& o) noexcept
    : limits_(o.limits_),
      budget_(std::exchange(o.budget_, nullptr)),
      state_(o.state_),
      close_reason_(o.close_reason_),
      streams_(std::move(o.streams_)),
      tombstones_(std::move(o.tombstones_)),
      tombstone_order_(std::move(o.tombstone_order_)),
      outbound_(std::move(o.outbound_)),
      outbound_bytes_(std::exchange(o.outbound_bytes_, 0)),
      uplink_buffered_(std::exchange(o.uplink_buffered_, 0)),
      ping_(std::move(o.ping_)),
      stream_closes_(o.stream_closes_),
      late_frames_(o.late_frames_) {
  o.streams_.clear();
}

WebSession::~WebSession() {
  if (budget_ == nullptr) return;
  for (std::size_t i = 0; i < streams_.size(); ++i) budget_->release_stream();
  budget_->release_session();
}

WebResult<void> WebSession::on_message(ByteSpan message, std::vector<WebEvent>& events) {
  if (state_ == WebSessionState::kClosed) return tl::unexpected(close_reason_);
  std::vector<WebFrame> frames;
  WebResult<std::size_t> n =
      decode_web_batch(message, [&](const WebFrame& f) { frames.push_back(f); });
  if (!n) return fail(n.error(), events);
  for (const WebFrame& f : frames) {
    if (WebResult<void> r = handle(f, events); !r) return r;
  }
  return {};
}

WebResult<void> WebSession::on_frame(const WebFrame& frame, std::vector<WebEvent>& events) {
  if (state_ == WebSessionState::kClosed) return tl::unexpected(close_reason_);
  if (WebResult<void> r = check_web_frame(frame); !r) return fail(r.error(), events);
  return handle(frame, events);
}

WebResult<void> WebSession::handle(const WebFrame& f, std::vector<WebEvent>& events) {
  if (state_ == WebSessionState::kAwaitHello) {
    if (f.type != WebFrameType::kHello || f.stream_id != 0 || f.payload.size() != 1 ||
        f.payload[0] != kWebProtocolVersion) {
      return fail(WebReason::kBadHello, events);
    }
    Bytes welcome;
    encode_web_welcome(welcome);
    if (WebResult<void> r = enqueue(std::move(welcome)); !r) return fail(r.error(), events);
    state_ = WebSessionState::kOpen;
    return {};
  }
  WebResult<void> r;
  switch (f.type) {
    case WebFrameType::kHello:
      return fail(WebReason::kBadHello, events);
    case WebFrameType::kOpen:
      r = handle_open(f.stream_id, events);
      break;
    case WebFrameType::kData:
      r = handle_data(f, events);
      break;
    case WebFrameType::kWindow:
      r = handle_window(f, events);
      break;
    case WebFrameType::kClose: {
      const std::uint32_t id = f.stream_id;
      if (streams_.contains(id)) {
        drop_stream(id, WebReason::kPeerClose);
        events.push_back({WebEvent::Kind::kClosed, id, {}, WebReason::kPeerClose});
      } else if (tombstones_.contains(id)) {
        ++late_frames_;
      } else {
        // Nothing to close and nothing to answer; counted, not fatal.
        ++stream_closes_[static_cast<std::size_t>(WebReason::kUnknownStream)];
      }
      break;
    }
    case WebFrameType::kPing: {
      // The app is not known to ping, but answering costs nothing.
      Bytes pong;
      MTW_CHECK(encode_web_frame(WebFrameType::kPong, 0, f.payload, pong).has_value());
      r = enqueue(std::move(pong));
      break;
    }
    case WebFrameType::kPong:
      r = handle_pong(f.payload);
      break;
    case WebFrameType::kBye:
      r = tl::unexpected(WebReason::kPeerClose);
      break;
    case WebFrameType::kWelcome:
    case WebFrameType::kAuthChallenge:
    case WebFrameType::kAuthResponse:
      r = tl::unexpected(WebReason::kUnexpectedFrame);
      break;
  }
  if (!r) return fail(r.error(), events);
  return {};
}

WebResult<void> WebSession::handle_open(std::uint32_t id, std::vector<WebEvent>& events) {
  if (streams_.contains(id) || tombstones_.contains(id)) {
    return tl::unexpected(WebReason::kDuplicateOpen);
  }
  if (streams_.size() >= limits_.max_streams ||
      outbound_bytes_ + close_reserve() + kWebFrameHeader > limits_.max_outbound_bytes) {
    return refuse(id, WebReason::kStreamLimit);  // with no room this fails: kBufferLimit
  }
  if (!budget_->try_acquire_stream()) return refuse(id, WebReason::kStreamLimit);
  streams_.emplace(id, WebStreamFlow{});
  events.push_back({WebEvent::Kind::kOpened, id, {}, WebReason::kNone});
  return {};
}

WebResult<void> WebSession::handle_data(const WebFrame& f, std::vector<WebEvent>& events) {
  const std::uint32_t id = f.stream_id;
  const auto it = streams_.find(id);
  if (it == streams_.end()) {
    if (tombstones_.contains(id)) {
      ++late_frames_;
      return {};
    }
    return refuse(id, WebReason::kUnknownStream);
  }
  if (WebResult<void> r = it->second.on_data_received(f.payload.size()); !r) {
    // The bytes are dropped, so the overrun costs no memory; only this stream ends.
    drop_stream(id, r.error());
    events.push_back({WebEvent::Kind::kClosed, id, {}, r.error()});
    Bytes close;
    encode_web_close(id, close);
    return enqueue(std::move(close));
  }
  uplink_buffered_ += f.payload.size();
  events.push_back({WebEvent::Kind::kData, id, f.payload, WebReason::kNone});
  return {};
}

WebResult<void> WebSession::handle_window(const WebFrame& f, std::vector<WebEvent>& events) {
  const std::uint32_t id = f.stream_id;
  const auto it = streams_.find(id);
  if (it == streams_.end()) {
    if (tombstones_.contains(id)) {
      ++late_frames_;
      return {};
    }
    return refuse(id, WebReason::kUnknownStream);
  }
  if (WebResult<void> r = it->second.on_window(load_be32(f.payload.data())); !r) {
    drop_stream(id, r.error());
    events.push_back({WebEvent::Kind::kClosed, id, {}, r.error()});
    Bytes close;
    encode_web_close(id, close);
    return enqueue(std::move(close));
  }
  return {};
}

WebResult<void> WebSession::handle_pong(ByteSpan payload) {
  if (!ping_ || !std::equal(payload.begin(), payload.end(), ping_->begin(), ping_->end())) {
    return tl::unexpected(WebReason::kBadPong);
  }
  ping_.reset();
  return {};
}

WebResult<void> WebSession::fail(WebReason r, std::vector<WebEvent>& events) {
  if (state_ != WebSessionState::kClosed) {
    state_ = WebSessionState::kClosed;
    close_reason_ = r;
    std::vector<std::uint32_t> ids;
    ids.reserve(streams_.size());
    for (const auto& [id, flow] : streams_) ids.push_back(id);
    std::sort(ids.begin(), ids.end());  // deterministic event order
    for (std::uint32_t id : ids) {
      budget_->release_stream();
      events.push_back({WebEvent::Kind::kClosed, id, {}, r});
    }
    streams_.clear();
    uplink_buffered_ = 0;
  }
  return tl::unexpected(close_reason_);
}

void WebSession::drop_stream(std::uint32_t id, WebReason r) {
  const auto it = streams_.find(id);
  MTW_CHECK(it != streams_.end());
  uplink_buffered_ -= it->second.uplink_buffered();
  streams_.erase(it);
  budget_->release_stream();
  tombstone(id);
  ++stream_closes_[static_cast<std::size_t>(r)];
}

WebResult<void> WebSession::refuse(std::uint32_t id, WebReason r) {
  tombstone(id);  // later frames for it are dropped, not answered again
  ++stream_closes_[static_cast<std::size_t>(r)];
  Bytes close;
  encode_web_close(id, close);
  return enqueue(std::move(close));
}

void WebSession::tombstone(std::uint32_t id) {
  if (limits_.tombstones == 0 || !tombstones_.insert(id).second) return;
  tombstone_order_.push_back(id);
  if (tombstone_order_.size() > limits_.tombstones) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
}

std::size_t WebSession::close_reserve() const noexcept { return streams_.size() * kWebFrameHeader; }

WebResult<void> WebSession::enqueue(Bytes frame) {
  if (outbound_bytes_ + frame.size() + close_reserve() > limits_.max_outbound_bytes) {
    return tl::unexpected(WebReason::kBufferLimit);
  }
  outbound_bytes_ += frame.size();
  outbound_.push_back(std::move(frame));
  return {};
}

bool WebSession::room_for_window() const noexcept {
  return outbound_bytes_ + kWebWindowFrame + close_reserve() <= limits_.max_outbound_bytes;
}

void WebSession::queue_grant(std::uint32_t id, WebStreamFlow& flow, std::uint64_t now_ms) {
  // A grant that does not fit stays pending in the flow (no credit is lost)
  // and goes out on a later on_tick(), once the carrier drained the queue.
  if (!room_for_window()) return;
  const std::uint32_t credit = flow.take_grant(now_ms);
  if (credit == 0) return;
  Bytes w;
  encode_web_window(id, credit, w);
  MTW_CHECK(enqueue(std::move(w)).has_value());
}

void WebSession::on_delivered(std::uint32_t stream_id, std::size_t n, std::uint64_t now_ms) {
  const auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second.on_delivered(n, now_ms);
  uplink_buffered_ -= n;
  queue_grant(stream_id, it->second, now_ms);
}

void WebSession::on_tick(std::uint64_t now_ms) {
  if (state_ != WebSessionState::kOpen) return;
  std::vector<std::uint32_t> ids;
  for (const auto& [id, flow] : streams_) {
    const auto d = flow.grant_deadline_ms();
    if (d && *d <= now_ms) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());  // deterministic frame order
  for (std::uint32_t id : ids) queue_grant(id, streams_.at(id), now_ms);
}

std::optional<std::uint64_t> WebSession::next_deadline_ms() const {
  if (state_ != WebSessionState::kOpen || !room_for_window()) return std::nullopt;
  std::optional<std::uint64_t> best;
  for (const auto& [id, flow] : streams_) {
    const auto d = flow.grant_deadline_ms();
    if (d && (!best || *d < *best)) best = d;
  }
  return best;
}

std::size_t WebSession::downlink_allowance(std::uint32_t stream_id) const {
  if (state_ != WebSessionState::kOpen) return 0;
  const auto it = streams_.find(stream_id);
  if (it == streams_.end()) return 0;
  const std::size_t used = outbound_bytes_ + kWebFrameHeader + close_reserve();
  if (used >= limits_.max_outbound_bytes) return 0;
  return std::min(it->second.downlink_allowance(), limits_.max_outbound_bytes - used);
}

void WebSession::send_data(std::uint32_t stream_id, ByteSpan data) {
  MTW_CHECK(!data.empty() && data.size() <= downlink_allowance(stream_id));
  streams_.at(stream_id).on_data_sent(data.size());
  Bytes frame;
  MTW_CHECK(encode_web_frame(WebFrameType::kData, stream_id, data, frame).has_value());
  MTW_CHECK(enqueue(std::move(frame)).has_value());  // the allowance left room
}

void WebSession::close_stream(std::uint32_t stream_id) {
  if (state_ != WebSessionState::kOpen || !streams_.contains(stream_id)) return;
  drop_stream(stream_id, WebReason::kLocalClose);
  // The stream's reserve just became free, so its CLOSE always fits.
  Bytes close;
  encode_web_close(stream_id, close);
  MTW_CHECK(enqueue(std::move(close)).has_value());
}

bool WebSession::send_ping(ByteSpan payload) {
  if (state_ != WebSessionState::kOpen || ping_ || payload.size() > kMaxWebControlPayload) {
    return false;
  }
  Bytes frame;
  MTW_CHECK(encode_web_frame(WebFrameType::kPing, 0, payload, frame).has_value());
  if (!enqueue(std::move(frame))) return false;
  ping_ = Bytes(payload.begin(), payload.end());
  return true;
}

void WebSession::send_bye(std::vector<WebEvent>& events) {
  if (state_ == WebSessionState::kClosed) return;
  Bytes bye;
  MTW_CHECK(encode_web_frame(WebFrameType::kBye, 0, {}, bye).has_value());
  // BYE may exceed the cap by its 8 bytes: it is the last frame ever queued.
  outbound_bytes_ += bye.size();
  outbound_.push_back(std::move(bye));
  (void)fail(WebReason::kLocalClose, events);
}

Bytes WebSession::take_outbound(std::size_t max_bytes) {
  Bytes out;
  std::size_t frames = 0;
  while (!outbound_.empty() && frames < kMaxWebBatchFrames) {
    const Bytes& f = outbound_.front();
    if (frames > 0 && out.size() + f.size() > max_bytes) break;
    out.insert(out.end(), f.begin(), f.end());
    outbound_bytes_ -= f.size();
    outbound_.pop_front();
    ++frames;
  }
  return out;
}

const WebStreamFlow* WebSession::flow(std::uint32_t id) const {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

}  // namespace mtw::proto
