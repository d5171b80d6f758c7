#include "ipc/control_protocol.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <string_view>

namespace mtw::ipc::control {
namespace {

using base::Errc;
using base::fail;

constexpr std::array<std::byte, 4> kMagic = {std::byte{'M'}, std::byte{'T'}, std::byte{'W'},
                                             std::byte{'C'}};

class Writer {
 public:
  void u8(std::uint8_t v) { out_.push_back(std::byte(v)); }
  void u16(std::uint16_t v) {
    u8(v & 0xff);
    u8(v >> 8);
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) u8((v >> (8 * i)) & 0xff);
  }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) u8((v >> (8 * i)) & 0xff);
  }
  void bytes(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  Bytes& out() { return out_; }

 private:
  Bytes out_;
};

// Bounds-checked little-endian reader; every read fails once past the end.
class Reader {
 public:
  explicit Reader(ByteSpan in) : in_(in) {}
  bool ok() const { return ok_; }
  std::size_t left() const { return in_.size() - pos_; }
  std::uint64_t uint(int n) {
    if (!take(n)) return 0;
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::to_integer<std::uint64_t>(in_[pos_ - n + i]) << (8 * i);
    return v;
  }
  ByteSpan bytes(std::size_t n) {
    if (!take(n)) return {};
    return in_.subspan(pos_ - n, n);
  }

 private:
  bool take(std::size_t n) {
    if (!ok_ || left() < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  ByteSpan in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

void encode_peer(const PeerAddress& p, Writer& w, std::uint8_t flags = 0);
// The handoff's flags byte (the peer address's second byte).
constexpr std::uint8_t kHandoffHelloAt = 0x01;  // a u64 hello_at_ns follows the address
void encode_body(const Handoff& h, Writer& w) {
  w.u32(h.listener_id);
  encode_peer(h.peer, w, h.hello_at_ns != 0 ? kHandoffHelloAt : 0);
  if (h.hello_at_ns != 0) w.u64(h.hello_at_ns);
  w.u32(static_cast<std::uint32_t>(h.data.size()));
  w.bytes(h.data);
}
void encode_body(const Report& r, Writer& w) {
  w.u64(r.seq);
  w.u16(static_cast<std::uint16_t>(kCounterCount));
  for (auto v : r.counters.values) w.u64(v);
  // Without egress and clients the report is as it always was.
  if (r.upstreams.empty() && !r.clients) return;
  w.u16(static_cast<std::uint16_t>(r.upstreams.size()));
  for (const auto& u : r.upstreams) {
    w.u8(static_cast<std::uint8_t>(u.name.size()));
    w.bytes(proto::as_bytes(u.name));
    w.u8(u.up ? 1 : 0);
    for (auto v : {u.connects, u.failures, u.bytes_up, u.bytes_down, u.marked_down}) w.u64(v);
  }
  if (!r.clients) return;
  w.u64(static_cast<std::uint64_t>(r.clients->last_close_unix));
  w.u8(r.clients->truncated ? 1 : 0);
  w.u16(static_cast<std::uint16_t>(r.clients->open.size()));
  for (const auto& c : r.clients->open) {
    encode_peer(PeerAddress{c.peer.family, c.peer.addr, 0}, w);
    w.u32(c.connections);
  }
}
void encode_body(const SetLimits& s, Writer& w) {
  w.u32(s.max_connections);
  w.u32(s.idle_timeout_ms);
  w.u32(s.handshake_timeout_ms);
}
void encode_body(const Reload& r, Writer& w) {
  w.u16(static_cast<std::uint16_t>(r.secrets.size()));
  for (const auto& s : r.secrets) {
    w.u16(static_cast<std::uint16_t>(s.size()));
    w.bytes(s);
  }
}
void encode_body(const Settings& st, Writer& w) {
  w.u64(st.generation);
  w.u16(static_cast<std::uint16_t>(st.args.size()));
  for (const auto& a : st.args) {
    w.u16(static_cast<std::uint16_t>(a.size()));
    w.bytes(std::as_bytes(std::span(a.data(), a.size())));
  }
}
void encode_body(const ReportRequest&, Writer&) {}
void encode_body(const GateTable& t, Writer& w) { w.u64(t.generation); }
void encode_body(const MaskProfiles& p, Writer& w) { w.u64(p.generation); }
void encode_body(const Egress& e, Writer& w) { w.u64(e.generation); }
void encode_body(const GateHandoff& g, Writer& w) {
  w.u32(g.user);
  encode_body(g.handoff, w);
}
void encode_body(const GateMask& g, Writer& w) { encode_body(g.handoff, w); }
void encode_body(const Lane& l, Writer& w) { w.u32(l.lane); }
void encode_body(const GateLane& l, Writer& w) {
  w.u32(l.user);
  w.u32(l.lane);
  w.u64(l.allow_until);
}
void encode_body(const GateCredit& c, Writer& w) {
  w.u32(c.user);
  w.u32(c.lane);
  w.u8(c.close ? 1 : 0);
  w.u8(0);
  w.u16(0);
  w.u64(c.allow_until);
}
void encode_peer(const PeerAddress& p, Writer& w, std::uint8_t flags) {
  w.u8(p.family);
  w.u8(flags);
  w.u16(p.port);
  w.bytes(p.addr);
}
void encode_body(const GateDirect& d, Writer& w) {
  w.u16(static_cast<std::uint16_t>(d.entries.size()));
  for (const auto& e : d.entries) {
    w.u32(e.user);
    w.u32(e.lane);
    encode_peer(e.peer, w);
  }
}

void encode_tag(const std::optional<AdTag>& t, Writer& w) {
  w.u8(t ? 1 : 0);
  w.bytes(t ? ByteSpan(*t) : ByteSpan(AdTag{}));
}
void encode_body(const Middle& m, Writer& w) {
  w.u8(m.fallback ? 1 : 0);
  encode_tag(m.default_tag, w);
  w.u64(m.generation);
  w.u16(static_cast<std::uint16_t>(m.listener_tags.size()));
  for (const auto& t : m.listener_tags) encode_tag(t, w);
  w.u16(static_cast<std::uint16_t>(m.proxy_secret.size()));
  w.bytes(m.proxy_secret);
  for (const std::string* c : {&m.config_v4, &m.config_v6}) {
    w.u32(static_cast<std::uint32_t>(c->size()));
    w.bytes(proto::as_bytes(*c));
  }
}

Result<Handoff> decode_handoff_body(Reader& r) {
  Handoff h;
  h.listener_id = static_cast<std::uint32_t>(r.uint(4));
  h.peer.family = static_cast<std::uint8_t>(r.uint(1));
  auto flags = r.uint(1);
  h.peer.port = static_cast<std::uint16_t>(r.uint(2));
  auto addr = r.bytes(16);
  if ((flags & kHandoffHelloAt) != 0) h.hello_at_ns = r.uint(8);
  auto len = r.uint(4);
  if (!r.ok()) return fail(Errc::kBadInput, "handoff: short body");
  if ((flags & ~kHandoffHelloAt) != 0) return fail(Errc::kBadInput, "handoff: unknown flag set");
  if ((flags & kHandoffHelloAt) != 0 && h.hello_at_ns == 0) {
    return fail(Errc::kBadInput, "handoff: hello time flagged but zero");
  }
  if (h.peer.family != 0 && h.peer.family != 4 && h.peer.family != 6) {
    return fail(Errc::kBadInput, "handoff: bad address family");
  }
  if (len > kMaxHandoffData) return fail(Errc::kTooLarge, "handoff: data over 17 KiB");
  if (len != r.left()) return fail(Errc::kBadInput, "handoff: data length mismatch");
  std::memcpy(h.peer.addr.data(), addr.data(), 16);
  auto data = r.bytes(len);
  h.data.assign(data.begin(), data.end());
  return h;
}

Result<Message> decode_handoff(Reader& r) {
  auto h = decode_handoff_body(r);
  if (!h) return tl::unexpected(h.error());
  return std::move(*h);
}

Result<Message> decode_gate_table(Reader& r) {
  GateTable t;
  t.generation = r.uint(8);
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "gate-table: length mismatch");
  return t;
}

Result<Message> decode_mask_profiles(Reader& r) {
  MaskProfiles p;
  p.generation = r.uint(8);
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "mask-profiles: length mismatch");
  return p;
}

Result<Message> decode_egress(Reader& r) {
  Egress e;
  e.generation = r.uint(8);
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "egress: length mismatch");
  return e;
}

Result<Message> decode_gate_handoff(Reader& r) {
  GateHandoff g;
  g.user = static_cast<std::uint32_t>(r.uint(4));
  if (!r.ok()) return fail(Errc::kBadInput, "gate-handoff: short body");
  auto h = decode_handoff_body(r);
  if (!h) return tl::unexpected(h.error());
  g.handoff = std::move(*h);
  return g;
}

Result<Message> decode_lane(Reader& r) {
  Lane l;
  l.lane = static_cast<std::uint32_t>(r.uint(4));
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "lane: length mismatch");
  return l;
}

Result<Message> decode_gate_lane(Reader& r) {
  GateLane l;
  l.user = static_cast<std::uint32_t>(r.uint(4));
  l.lane = static_cast<std::uint32_t>(r.uint(4));
  l.allow_until = r.uint(8);
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "gate-lane: length mismatch");
  return l;
}

Result<Message> decode_gate_credit(Reader& r) {
  GateCredit c;
  c.user = static_cast<std::uint32_t>(r.uint(4));
  c.lane = static_cast<std::uint32_t>(r.uint(4));
  auto close = r.uint(1);
  auto reserved = r.uint(3);
  c.allow_until = r.uint(8);
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "gate-credit: length mismatch");
  if (close > 1 || reserved != 0) return fail(Errc::kBadInput, "gate-credit: bad flags");
  c.close = close == 1;
  return c;
}

Result<Message> decode_gate_direct(Reader& r) {
  GateDirect d;
  auto count = r.uint(2);
  if (!r.ok()) return fail(Errc::kBadInput, "gate-direct: short body");
  if (count == 0) return fail(Errc::kBadInput, "gate-direct: no entries");
  if (count > kMaxDirectEntries) return fail(Errc::kTooLarge, "gate-direct: too many entries");
  if (r.left() != count * kDirectEntrySize)
    return fail(Errc::kBadInput, "gate-direct: length mismatch");
  d.entries.resize(count);
  for (auto& e : d.entries) {
    e.user = static_cast<std::uint32_t>(r.uint(4));
    e.lane = static_cast<std::uint32_t>(r.uint(4));
    e.peer.family = static_cast<std::uint8_t>(r.uint(1));
    auto reserved = r.uint(1);
    e.peer.port = static_cast<std::uint16_t>(r.uint(2));
    auto addr = r.bytes(16);
    if (reserved != 0) return fail(Errc::kBadInput, "gate-direct: reserved byte set");
    if (e.peer.family != 0 && e.peer.family != 4 && e.peer.family != 6) {
      return fail(Errc::kBadInput, "gate-direct: bad address family");
    }
    std::memcpy(e.peer.addr.data(), addr.data(), 16);
  }
  return d;
}

Result<Message> decode_gate_mask(Reader& r) {
  auto h = decode_handoff_body(r);
  if (!h) return tl::unexpected(h.error());
  return GateMask{std::move(*h)};
}

const Handoff* handoff_of(const Message& m) {
  if (auto* h = std::get_if<Handoff>(&m)) return h;
  if (auto* g = std::get_if<GateHandoff>(&m)) return &g->handoff;
  if (auto* g = std::get_if<GateMask>(&m)) return &g->handoff;
  return nullptr;
}

Result<Message> decode_report(Reader& r) {
  Report rep;
  rep.seq = r.uint(8);
  auto count = r.uint(2);
  if (!r.ok() || r.left() < count * 8) return fail(Errc::kBadInput, "report: length mismatch");
  for (std::size_t i = 0; i < count; ++i) {
    auto v = r.uint(8);
    if (i < kCounterCount) rep.counters.values[i] = v;
  }
  if (r.left() == 0) return rep;
  // The egress section: u16 count, then per upstream u8 name length, name,
  // u8 up, five u64 (connects, failures, bytes_up, bytes_down, marked_down).
  // A count of 0 only in front of a clients section.
  const auto n = r.uint(2);
  if (n > kMaxReportUpstreams) return fail(Errc::kBadInput, "report: upstream count");
  for (std::size_t i = 0; i < n; ++i) {
    UpstreamReport u;
    const auto len = r.uint(1);
    const ByteSpan name = r.bytes(len);
    const auto up = r.uint(1);
    if (!r.ok() || len == 0 || len > 64 || up > 1)
      return fail(Errc::kBadInput, "report: bad upstream entry");
    u.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
    u.up = up == 1;
    for (auto* v : {&u.connects, &u.failures, &u.bytes_up, &u.bytes_down, &u.marked_down})
      *v = r.uint(8);
    rep.upstreams.push_back(std::move(u));
  }
  if (!r.ok()) return fail(Errc::kBadInput, "report: length mismatch");
  if (r.left() == 0) {
    if (n == 0) return fail(Errc::kBadInput, "report: upstream count");
    return rep;
  }
  // The clients section: i64 last close (Unix seconds), u8 truncated, u16
  // count, count x (peer as in a handoff with port 0, u32 connections).
  ClientsReport c;
  c.last_close_unix = static_cast<std::int64_t>(r.uint(8));
  const auto truncated = r.uint(1);
  const auto m = r.uint(2);
  if (!r.ok() || truncated > 1) return fail(Errc::kBadInput, "report: bad clients section");
  if (m > kMaxReportClients) return fail(Errc::kTooLarge, "report: too many clients");
  if (r.left() != m * kClientEntrySize) return fail(Errc::kBadInput, "report: length mismatch");
  c.truncated = truncated == 1;
  c.open.resize(m);
  for (auto& e : c.open) {
    e.peer.family = static_cast<std::uint8_t>(r.uint(1));
    const auto reserved = r.uint(1);
    const auto port = r.uint(2);
    const auto addr = r.bytes(16);
    e.connections = static_cast<std::uint32_t>(r.uint(4));
    if (reserved != 0 || port != 0 || (e.peer.family != 4 && e.peer.family != 6) ||
        e.connections == 0)
      return fail(Errc::kBadInput, "report: bad client entry");
    std::memcpy(e.peer.addr.data(), addr.data(), 16);
  }
  rep.clients = std::move(c);
  return rep;
}

Result<Message> decode_set_limits(Reader& r) {
  SetLimits s;
  s.max_connections = static_cast<std::uint32_t>(r.uint(4));
  s.idle_timeout_ms = static_cast<std::uint32_t>(r.uint(4));
  s.handshake_timeout_ms = static_cast<std::uint32_t>(r.uint(4));
  if (!r.ok() || r.left() != 0) return fail(Errc::kBadInput, "set-limits: length mismatch");
  return s;
}

Result<Message> decode_reload(Reader& r) {
  Reload rel;
  auto count = r.uint(2);
  if (!r.ok()) return fail(Errc::kBadInput, "reload: short body");
  if (count > kMaxReloadSecrets) return fail(Errc::kTooLarge, "reload: too many secrets");
  for (std::size_t i = 0; i < count; ++i) {
    auto len = r.uint(2);
    auto b = r.bytes(len);
    if (!r.ok()) return fail(Errc::kBadInput, "reload: short secret");
    if (len < 16 || len > 17 + 182) return fail(Errc::kBadInput, "reload: bad secret length");
    rel.secrets.emplace_back(b.begin(), b.end());
  }
  if (r.left() != 0) return fail(Errc::kBadInput, "reload: trailing bytes");
  return rel;
}

Result<std::optional<AdTag>> decode_tag(Reader& r) {
  const auto has = r.uint(1);
  auto b = r.bytes(16);
  if (!r.ok()) return fail(Errc::kBadInput, "middle: short body");
  if (has > 1) return fail(Errc::kBadInput, "middle: bad tag flag");
  if (has == 0) {
    // Absent: the 16 bytes are zero (docs/worker-control.md), so every
    // message has one encoding.
    if (std::any_of(b.begin(), b.end(), [](std::byte x) { return x != std::byte{0}; }))
      return fail(Errc::kBadInput, "middle: bytes in an absent tag");
    return std::optional<AdTag>();
  }
  AdTag t{};
  std::memcpy(t.data(), b.data(), t.size());
  return std::optional<AdTag>(t);
}

Result<Message> decode_middle(Reader& r) {
  Middle m;
  const auto fallback = r.uint(1);
  if (!r.ok() || fallback > 1) return fail(Errc::kBadInput, "middle: bad fallback flag");
  m.fallback = fallback == 1;
  auto d = decode_tag(r);
  if (!d) return tl::unexpected(d.error());
  m.default_tag = *d;
  m.generation = r.uint(8);
  const auto n = r.uint(2);
  if (!r.ok()) return fail(Errc::kBadInput, "middle: short body");
  if (n > kMaxMiddleListeners) return fail(Errc::kTooLarge, "middle: too many listeners");
  for (std::size_t i = 0; i < n; ++i) {
    auto t = decode_tag(r);
    if (!t) return tl::unexpected(t.error());
    m.listener_tags.push_back(*t);
  }
  const auto slen = r.uint(2);
  auto secret = r.bytes(slen);
  if (!r.ok()) return fail(Errc::kBadInput, "middle: short secret");
  m.proxy_secret.assign(secret.begin(), secret.end());
  for (std::string* c : {&m.config_v4, &m.config_v6}) {
    const auto len = r.uint(4);
    auto b = r.bytes(len);
    if (!r.ok()) return fail(Errc::kBadInput, "middle: short config");
    c->assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  if (r.left() != 0) return fail(Errc::kBadInput, "middle: trailing bytes");
  return m;
}

Result<void> check_settings_arg(std::string_view a) {
  if (a.empty() || a.size() > kMaxSettingsArgBytes)
    return fail(Errc::kBadInput, "settings: argument of 1..1024 bytes wanted");
  if (a.find('\0') != std::string_view::npos)
    return fail(Errc::kBadInput, "settings: NUL in an argument");
  return {};
}

Result<Message> decode_settings(Reader& r) {
  Settings st;
  st.generation = r.uint(8);
  const auto n = r.uint(2);
  if (!r.ok()) return fail(Errc::kBadInput, "settings: short body");
  if (n > kMaxSettingsArgs) return fail(Errc::kTooLarge, "settings: too many arguments");
  for (std::size_t i = 0; i < n; ++i) {
    const auto len = r.uint(2);
    auto b = r.bytes(len);
    if (!r.ok()) return fail(Errc::kBadInput, "settings: short argument");
    std::string a(reinterpret_cast<const char*>(b.data()), b.size());
    if (auto c = check_settings_arg(a); !c) return tl::unexpected(c.error());
    st.args.push_back(std::move(a));
  }
  if (r.left() != 0) return fail(Errc::kBadInput, "settings: trailing bytes");
  return st;
}

// The wire type of each Message alternative, in variant order.
constexpr std::array<MsgType, std::variant_size_v<Message>> kWireTypes = {
    MsgType::kHandoff,       MsgType::kReport,    MsgType::kSetLimits,   MsgType::kReload,
    MsgType::kReportRequest, MsgType::kGateTable, MsgType::kGateHandoff, MsgType::kGateMask,
    MsgType::kLane,          MsgType::kGateLane,  MsgType::kGateCredit,  MsgType::kGateDirect,
    MsgType::kMaskProfiles,  MsgType::kMiddle,    MsgType::kEgress,      MsgType::kSettings};

}  // namespace

MsgType type_of(const Message& m) noexcept { return kWireTypes[m.index()]; }

bool carries_fd(MsgType t) noexcept {
  return t == MsgType::kHandoff || t == MsgType::kGateTable || t == MsgType::kGateHandoff ||
         t == MsgType::kGateMask || t == MsgType::kLane || t == MsgType::kGateLane ||
         t == MsgType::kMaskProfiles || t == MsgType::kEgress;
}

Result<Bytes> encode(const Message& m) {
  if (auto* h = handoff_of(m); h && h->data.size() > kMaxHandoffData) {
    return fail(Errc::kTooLarge, "handoff data over 17 KiB");
  }
  if (auto* r = std::get_if<Reload>(&m); r) {
    if (r->secrets.size() > kMaxReloadSecrets) return fail(Errc::kTooLarge, "too many secrets");
    for (const auto& s : r->secrets) {
      if (s.size() < 16 || s.size() > 17 + 182) return fail(Errc::kBadInput, "bad secret length");
    }
  }
  if (auto* rep = std::get_if<Report>(&m); rep) {
    if (rep->upstreams.size() > kMaxReportUpstreams)
      return fail(Errc::kTooLarge, "report: too many upstreams");
    if (rep->clients && rep->clients->open.size() > kMaxReportClients)
      return fail(Errc::kTooLarge, "report: too many clients");
  }
  if (auto* d = std::get_if<GateDirect>(&m); d) {
    if (d->entries.empty()) return fail(Errc::kBadInput, "gate-direct without entries");
    if (d->entries.size() > kMaxDirectEntries)
      return fail(Errc::kTooLarge, "too many gate-direct entries");
  }
  if (auto* st = std::get_if<Settings>(&m); st) {
    if (st->args.size() > kMaxSettingsArgs)
      return fail(Errc::kTooLarge, "settings: too many arguments");
    for (const auto& a : st->args)
      if (auto c = check_settings_arg(a); !c) return tl::unexpected(c.error());
  }
  if (auto* mid = std::get_if<Middle>(&m); mid) {
    if (mid->listener_tags.size() > kMaxMiddleListeners)
      return fail(Errc::kTooLarge, "middle: too many listeners");
    if (mid->proxy_secret.size() > 0xffff) return fail(Errc::kTooLarge, "middle: secret too large");
  }
  Writer w;
  // Room for the header and a small body up front: fewer reallocations, and
  // GCC 12 at -O2 no longer sees a write "past" the empty vector it inlines
  // the first insert into (a false -Wstringop-overflow).
  w.out().reserve(kHeaderSize + 64);
  w.bytes(kMagic);
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(type_of(m)));
  w.u16(0);
  w.u32(0);  // body length, patched below
  std::visit([&w](const auto& body) { encode_body(body, w); }, m);
  auto body_len = static_cast<std::uint32_t>(w.out().size() - kHeaderSize);
  if (w.out().size() > kMaxMessageSize) return fail(Errc::kTooLarge, "message too large");
  proto::store_le32(w.out().data() + 8, body_len);
  return std::move(w.out());
}

Result<Message> decode(ByteSpan datagram, std::size_t fd_count) {
  if (datagram.size() < kHeaderSize) return fail(Errc::kBadInput, "short header");
  if (datagram.size() > kMaxMessageSize) return fail(Errc::kTooLarge, "message too large");
  if (!std::equal(kMagic.begin(), kMagic.end(), datagram.begin())) {
    return fail(Errc::kBadInput, "bad magic");
  }
  Reader r(datagram);
  r.bytes(4);
  auto version = r.uint(1);
  auto type = r.uint(1);
  auto flags = r.uint(2);
  auto body_len = r.uint(4);
  if (version != kVersion) return fail(Errc::kBadInput, "unsupported version");
  if (flags != 0) return fail(Errc::kBadInput, "flags set");
  if (body_len != r.left()) return fail(Errc::kBadInput, "body length mismatch");
  bool wants_fd = carries_fd(static_cast<MsgType>(type));
  if (fd_count != (wants_fd ? 1u : 0u)) return fail(Errc::kBadInput, "wrong fd count");
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHandoff:
      return decode_handoff(r);
    case MsgType::kReport:
      return decode_report(r);
    case MsgType::kSetLimits:
      return decode_set_limits(r);
    case MsgType::kReload:
      return decode_reload(r);
    case MsgType::kReportRequest:
      if (r.left() != 0) return fail(Errc::kBadInput, "report-request: body not empty");
      return ReportRequest{};
    case MsgType::kGateTable:
      return decode_gate_table(r);
    case MsgType::kGateHandoff:
      return decode_gate_handoff(r);
    case MsgType::kGateMask:
      return decode_gate_mask(r);
    case MsgType::kLane:
      return decode_lane(r);
    case MsgType::kGateLane:
      return decode_gate_lane(r);
    case MsgType::kGateCredit:
      return decode_gate_credit(r);
    case MsgType::kGateDirect:
      return decode_gate_direct(r);
    case MsgType::kMaskProfiles:
      return decode_mask_profiles(r);
    case MsgType::kMiddle:
      return decode_middle(r);
    case MsgType::kEgress:
      return decode_egress(r);
    case MsgType::kSettings:
      return decode_settings(r);
  }
  return fail(Errc::kBadInput, "unknown message type");
}

}  // namespace mtw::ipc::control
