// Fuzzes WebSession with hostile carrier messages interleaved with the
// worker's own calls. The input is a list of operations: an op byte, then for
// a message a 16-bit length and that many bytes. Properties after each op:
//  - the user budget holds exactly the session's open streams;
//  - uplink_buffered() is the sum of the open streams' buffered bytes;
//  - the outbound queue plus the CLOSE reserve of the open streams stays
//    within its cap (plus one BYE);
//  - everything the session queues decodes as a valid batch;
//  - kData events point into the message that produced them, and a closed
//    session stays closed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "proto/webproxy_session.h"

namespace {

using namespace mtw::proto;

constexpr WebSessionLimits kLimits{.max_streams = 4, .max_outbound_bytes = 4096, .tombstones = 8};

void check(const WebSession& s, const WebUserBudget& budget,
           const std::vector<std::uint32_t>& ids) {
  if (budget.streams() != s.open_streams()) std::abort();
  std::size_t buffered = 0;
  // An id can be opened again once its tombstone is gone: count each once.
  std::vector<std::uint32_t> distinct = ids;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  for (std::uint32_t id : distinct) {
    if (const WebStreamFlow* f = s.flow(id)) buffered += f->uplink_buffered();
  }
  if (buffered != s.uplink_buffered()) std::abort();
  if (s.outbound_bytes() + kWebFrameHeader * s.open_streams() >
      kLimits.max_outbound_bytes + kWebFrameHeader) {
    std::abort();  // the cap, with every open stream's CLOSE reserved, plus one BYE
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  WebUserBudget budget(1, 6);
  auto started = WebSession::start(kLimits, budget);
  if (!started) std::abort();
  WebSession& s = *started;
  std::vector<std::uint32_t> ids;  // every stream id the worker heard of
  std::vector<WebEvent> events;
  std::uint64_t now = 0;
  std::size_t pos = 0;
  while (pos < size) {
    const std::uint8_t op = data[pos++];
    const std::uint32_t pick = ids.empty() ? 1 : ids[op % ids.size()];
    events.clear();
    switch (op % 8) {
      case 0:
      case 1: {  // a carrier message
        if (size - pos < 2) return 0;
        std::size_t len = data[pos] | (std::size_t{data[pos + 1]} << 8);
        pos += 2;
        len = std::min(len, size - pos);
        const ByteSpan msg(reinterpret_cast<const std::byte*>(data + pos), len);
        pos += len;
        const bool was_closed = s.state() == WebSessionState::kClosed;
        const auto r = s.on_message(msg, events);
        if (was_closed && (r || !events.empty())) std::abort();
        for (const WebEvent& e : events) {
          if (e.kind == WebEvent::Kind::kOpened) ids.push_back(e.stream_id);
          if (e.kind == WebEvent::Kind::kData &&
              (e.data.data() < msg.data() ||
               e.data.data() + e.data.size() > msg.data() + msg.size())) {
            std::abort();
          }
        }
        break;
      }
      case 2:  // the backend took everything buffered for one stream
        if (const WebStreamFlow* f = s.flow(pick)) s.on_delivered(pick, f->uplink_buffered(), now);
        break;
      case 3:
        now += op;
        s.on_tick(now);
        break;
      case 4: {
        const std::size_t n = std::min<std::size_t>(s.downlink_allowance(pick), op * 64u);
        if (n > 0) s.send_data(pick, Bytes(n, std::byte{0x42}));
        break;
      }
      case 5:
        s.close_stream(pick);
        break;
      case 6: {
        const Bytes out = s.take_outbound(op * 16u);
        if (!out.empty() && !decode_web_batch(out, [](const WebFrame&) {})) std::abort();
        break;
      }
      case 7:
        if (op & 0x80) {
          s.send_bye(events);
        } else {
          (void)s.send_ping(
              ByteSpan(reinterpret_cast<const std::byte*>(data), std::min<std::size_t>(pos, 8)));
        }
        break;
    }
    check(s, budget, ids);
  }
  const Bytes rest = s.take_outbound(SIZE_MAX);
  if (!rest.empty() && !decode_web_batch(rest, [](const WebFrame&) {})) std::abort();
  return 0;
}
