// One carrier session: a WebSocket whose binary messages are frame batches
// (proto::websocket_batch) feeding one proto::WebSession, and the streams it
// opens, each a socket from the StreamBackend. Coroutines on the front's
// thread: the carrier reader, the carrier writer, and per stream a writer
// (app -> backend: WINDOW is earned only once bytes reached the backend)
// and a reader (backend -> app: only within the app's credit and the room in
// the session's outbound queue).
#include <vector>

#include "webfront/front_impl.h"

namespace mtw::webfront {
namespace {

using namespace detail;
using proto::WebEvent;
using proto::WebReason;

constexpr std::size_t kCarrierWriteBytes = 256 * 1024;  // one WebSocket message at most
constexpr std::uint64_t kMaxWaitMs = 1000;              // timer granularity of the writer

class Carrier : public std::enable_shared_from_this<Carrier> {
 public:
  Carrier(Front::Impl& f, std::unique_ptr<ws_stream> ws, proto::WebSession s, proto::WebUserId user,
          ClientAddress peer)
      : f_(f),
        ws_(std::move(ws)),
        session_(std::move(s)),
        user_(user),
        peer_(peer),
        wake_(f.io),
        room_(f.io, asio::steady_timer::time_point::max()),
        started_ms_(now_ms()),
        active_ms_(started_ms_) {}

  awaitable<void> run() {
    auto self = shared_from_this();
    ++f_.counters.sessions_started;
    ++f_.counters.sessions_active;
    f_.log->debug("session started user={}", user_);
    asio::co_spawn(f_.io, write_loop(), [self](std::exception_ptr) {});
    co_await read_loop();
    reading_ = false;
    finish(reason_ == WebReason::kNone ? WebReason::kPeerClose : reason_);
    // Let the writer flush (a BYE, a CLOSE) before the socket goes.
    while (!writer_done_) {
      asio::steady_timer t(f_.io, std::chrono::milliseconds(10));
      co_await t.async_wait(use_nothrow);
    }
    release();
    beast::get_lowest_layer(*ws_).expires_after(std::chrono::seconds(2));
    if (ws_->is_open()) co_await ws_->async_close(websocket::close_code::normal, use_nothrow);
    f_.log->debug("session ended user={} reason={}", user_, proto::web_reason_name(reason_));
  }

 private:
  struct Stream {
    Stream(asio::io_context& io, std::uint32_t id)
        : id(id), sock(io), wake(io, asio::steady_timer::time_point::max()) {}
    std::uint32_t id;
    asio::generic::stream_protocol::socket sock;
    asio::steady_timer wake;  // the writer waits here for data; never expires
    std::deque<proto::Bytes> out;
    bool connected = false;
    bool gone = false;
  };

  awaitable<void> read_loop() {
    std::vector<WebEvent> events;
    while (!done_) {
      beast::flat_buffer msg;
      auto [ec, n] = co_await ws_->async_read(msg, use_nothrow);
      if (ec || done_) co_return;  // the carrier is gone: kPeerClose
      active_ms_ = now_ms();
      auto data = msg.cdata();
      proto::ByteSpan bytes(static_cast<const std::byte*>(data.data()), data.size());
      auto batch = proto::websocket_batch(ws_->got_text(), bytes);
      if (!batch) {
        reason_ = batch.error();
        co_return;
      }
      events.clear();
      auto r = session_->on_message(*batch, events);
      apply(events);
      notify_room();  // a WINDOW may have raised some stream's credit
      notify_writer();
      if (!r) {
        reason_ = r.error();
        co_return;
      }
    }
  }

  void apply(std::vector<WebEvent>& events) {
    for (auto& ev : events) {
      switch (ev.kind) {
        case WebEvent::Kind::kOpened: {
          auto s = std::make_shared<Stream>(f_.io, ev.stream_id);
          streams_[ev.stream_id] = s;
          asio::co_spawn(f_.io, open_stream(s), [self = shared_from_this()](std::exception_ptr) {});
          break;
        }
        case WebEvent::Kind::kData: {
          auto it = streams_.find(ev.stream_id);
          if (it == streams_.end()) break;
          it->second->out.emplace_back(ev.data.begin(), ev.data.end());
          it->second->wake.cancel();
          break;
        }
        case WebEvent::Kind::kClosed: {
          auto it = streams_.find(ev.stream_id);
          if (it != streams_.end()) drop(*it->second);
          break;
        }
      }
    }
  }

  awaitable<void> open_stream(std::shared_ptr<Stream> s) {
    auto fd = co_await f_.backend->open(user_, peer_);
    if (s->gone) co_return;  // closed by the app meanwhile; the fd closes
    if (!fd) {
      ++f_.counters.backend_failures;
      f_.log->debug("stream backend failed user={} error={}", user_, fd.error().to_string());
      end_stream(*s);
      co_return;
    }
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    ::getsockname(fd->get(), reinterpret_cast<sockaddr*>(&local), &len);
    error_code ec;
    s->sock.assign(asio::generic::stream_protocol(local.ss_family, 0), fd->get(), ec);
    if (ec) {
      ++f_.counters.backend_failures;
      end_stream(*s);
      co_return;
    }
    (void)fd->release();
    s->connected = true;
    ++f_.counters.streams_opened;
    auto self = shared_from_this();
    asio::co_spawn(f_.io, stream_to_backend(s), [self](std::exception_ptr) {});
    asio::co_spawn(f_.io, backend_to_stream(s), [self](std::exception_ptr) {});
  }

  // App -> backend. Bytes count as delivered (and become WINDOW credit)
  // once the backend socket took them.
  awaitable<void> stream_to_backend(std::shared_ptr<Stream> s) {
    while (!s->gone) {
      if (s->out.empty()) {
        co_await s->wake.async_wait(use_nothrow);
        continue;
      }
      proto::Bytes chunk = std::move(s->out.front());
      s->out.pop_front();
      auto [ec, n] = co_await asio::async_write(s->sock, asio::buffer(chunk), use_nothrow);
      if (s->gone) co_return;
      if (ec) {
        end_stream(*s);
        co_return;
      }
      f_.counters.bytes_up += n;
      active_ms_ = now_ms();
      session_->on_delivered(s->id, n, now_ms());
      notify_writer();
    }
  }

  // Backend -> app, within downlink_allowance(): the stream's credit, a
  // DATA chunk, and the room in the outbound queue. Bytes read while the
  // room shrank (other streams queued meanwhile) wait for room.
  awaitable<void> backend_to_stream(std::shared_ptr<Stream> s) {
    std::vector<std::byte> buf(proto::kWebDataChunk);
    while (!s->gone) {
      std::size_t allow = session_->downlink_allowance(s->id);
      if (allow == 0) {
        co_await room_.async_wait(use_nothrow);
        continue;
      }
      auto [ec, n] = co_await s->sock.async_read_some(asio::buffer(buf.data(), allow), use_nothrow);
      if (s->gone) co_return;
      if (ec) {  // EOF or error: the backend ended the connection
        end_stream(*s);
        co_return;
      }
      f_.counters.bytes_down += n;
      active_ms_ = now_ms();
      std::size_t sent = 0;
      while (sent < n && !s->gone) {
        std::size_t room = session_->downlink_allowance(s->id);
        if (room == 0) {
          co_await room_.async_wait(use_nothrow);
          continue;
        }
        std::size_t take = std::min(room, n - sent);
        session_->send_data(s->id, proto::ByteSpan(buf.data() + sent, take));
        sent += take;
        notify_writer();
      }
    }
  }

  awaitable<void> write_loop() {
    auto self = shared_from_this();
    while (true) {
      std::uint64_t now = now_ms();
      if (!done_) check_deadlines(now);
      session_->on_tick(now);
      proto::Bytes out = session_->take_outbound(kCarrierWriteBytes);
      if (!out.empty()) {
        ws_->binary(true);
        auto [ec, n] = co_await ws_->async_write(asio::buffer(out), use_nothrow);
        if (ec) {
          if (!done_) ws_failed_ = true;
          break;
        }
        notify_room();
        continue;
      }
      if (done_) break;
      if (dirty_) {
        dirty_ = false;
        continue;
      }
      std::uint64_t wait = kMaxWaitMs;
      if (auto d = session_->next_deadline_ms()) wait = *d > now ? std::min(*d - now, wait) : 0;
      wake_.expires_after(std::chrono::milliseconds(wait));
      co_await wake_.async_wait(use_nothrow);
    }
    if (ws_failed_) {
      // The reader learns it from its own read; close the socket so it does.
      error_code ec;
      beast::get_lowest_layer(*ws_).socket().close(ec);
    } else if (reading_) {
      // The relay ended the session (deadline) and its last frames are out:
      // a close handshake ends the reader's pending read.
      release();
      beast::get_lowest_layer(*ws_).expires_after(std::chrono::seconds(2));
      co_await ws_->async_close(websocket::close_code::normal, use_nothrow);
    }
    writer_done_ = true;
  }

  void check_deadlines(std::uint64_t now) {
    const auto& l = f_.opts.limits;
    bool idle = now - active_ms_ >= l.session_idle_timeout_ms;
    bool old = now - started_ms_ >= l.session_max_ms;
    if (!idle && !old) return;
    f_.log->debug("session timed out user={} idle={} max={}", user_, idle, old);
    std::vector<WebEvent> events;
    session_->send_bye(events);
    apply(events);
    finish(WebReason::kLocalClose);
  }

  // The session is over: its slot and streams go back to the user's budget
  // now, not after the closing handshake. Idempotent.
  void release() {
    if (!session_) return;
    --f_.counters.sessions_active;
    ++f_.counters.session_closes[static_cast<std::size_t>(reason_)];
    for (std::size_t r = 0; r < proto::kWebReasonCount; ++r) {
      f_.counters.stream_closes[r] += session_->stream_closes(static_cast<WebReason>(r));
    }
    session_.reset();
  }

  void drop(Stream& s) {
    if (s.gone) return;
    s.gone = true;
    error_code ec;
    s.sock.close(ec);
    s.wake.cancel();
    streams_.erase(s.id);
    notify_room();  // its reader may be parked on room_
  }

  // The relay ends a stream: CLOSE to the app, the backend dropped.
  void end_stream(Stream& s) {
    if (s.gone) return;
    session_->close_stream(s.id);
    drop(s);
    notify_writer();
  }

  void finish(WebReason r) {
    if (done_) return;
    done_ = true;
    if (reason_ == WebReason::kNone) reason_ = r;
    std::vector<std::shared_ptr<Stream>> all;
    for (auto& [id, s] : streams_) all.push_back(s);
    for (auto& s : all) drop(*s);
    notify_writer();
  }

  void notify_writer() {
    dirty_ = true;
    wake_.cancel();
  }
  void notify_room() { room_.cancel(); }

  Front::Impl& f_;
  std::unique_ptr<ws_stream> ws_;
  std::optional<proto::WebSession> session_;  // reset when the session ends
  proto::WebUserId user_;
  ClientAddress peer_;
  asio::steady_timer wake_;  // the carrier writer's
  asio::steady_timer room_;  // stream readers wait here for credit or queue room; never expires
  std::unordered_map<std::uint32_t, std::shared_ptr<Stream>> streams_;
  std::uint64_t started_ms_;
  std::uint64_t active_ms_;
  WebReason reason_ = WebReason::kNone;
  bool done_ = false;
  bool dirty_ = false;
  bool writer_done_ = false;
  bool ws_failed_ = false;
  bool reading_ = true;  // the reader has not returned yet
};

}  // namespace

awaitable<void> run_carrier(Front::Impl& front, std::unique_ptr<ws_stream> ws,
                            proto::WebSession session, proto::WebUserId user, ClientAddress peer) {
  auto c = std::make_shared<Carrier>(front, std::move(ws), std::move(session), user, peer);
  co_await c->run();
}

}  // namespace mtw::webfront
