#include "ipc/control_protocol.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/unique_fd.h"
#include "ipc/control_socket.h"

namespace mtw::ipc::control {
namespace {

using base::UniqueFd;

Bytes bytes_of(std::string_view s) {
  auto b = proto::as_bytes(s);
  return Bytes(b.begin(), b.end());
}

Handoff sample_handoff() {
  Handoff h;
  h.listener_id = 7;
  h.peer.family = 4;
  h.peer.addr[0] = std::byte{127};
  h.peer.addr[3] = std::byte{1};
  h.peer.port = 40000;
  h.data = bytes_of("GET / HTTP/1.1\r\n");
  return h;
}

GateDirect sample_direct(std::size_t n) {
  GateDirect d;
  for (std::size_t i = 0; i < n; ++i) {
    GateDirectEntry e;
    e.user = static_cast<std::uint32_t>(100 + i);
    e.lane = static_cast<std::uint32_t>(7 + i);
    e.peer.family = i % 2 ? 6 : 4;
    e.peer.addr[15] = std::byte(i & 0xff);
    e.peer.port = static_cast<std::uint16_t>(1000 + i);
    d.entries.push_back(e);
  }
  return d;
}

Middle sample_middle() {
  Middle m;
  AdTag t{};
  for (std::size_t i = 0; i < t.size(); ++i) t[i] = std::byte(0xa0 + i);
  m.default_tag = t;
  m.listener_tags = {std::nullopt, t};
  m.fallback = false;
  m.generation = 7;
  m.proxy_secret = Bytes(128, std::byte{0x9c});
  m.config_v4 = "proxy_for 2 1.2.3.4:8888;\n";
  m.config_v6 = "proxy_for 2 [::1]:8888;\n";
  return m;
}

TEST(ControlProtocol, MiddleHasTheDocumentedLayout) {
  Middle m;
  m.fallback = true;
  m.listener_tags = {std::nullopt};
  m.proxy_secret = Bytes{std::byte{1}, std::byte{2}};
  m.config_v4 = "ab";
  auto wire = encode(m);
  ASSERT_TRUE(wire);
  // fallback, tag flag + 16, generation, u16 count + 17 per listener, u16 + secret,
  // u32 + v4, u32 + v6.
  ASSERT_EQ(wire->size(), kHeaderSize + 1 + 17 + 8 + 2 + 17 + 2 + 2 + 4 + 2 + 4);
  EXPECT_EQ((*wire)[5], std::byte{14});
  EXPECT_EQ((*wire)[kHeaderSize], std::byte{1});
  EXPECT_EQ((*wire)[kHeaderSize + 1], std::byte{0});  // no default tag
}

TEST(ControlProtocol, MiddleRejectsHostileBodies) {
  auto wire = encode(sample_middle());
  ASSERT_TRUE(wire);
  // Every truncation is a clear error, never a crash or a partial message.
  for (std::size_t n = kHeaderSize; n < wire->size(); ++n) {
    Bytes cut(wire->begin(), wire->begin() + static_cast<std::ptrdiff_t>(n));
    proto::store_le32(cut.data() + 8, static_cast<std::uint32_t>(n - kHeaderSize));
    EXPECT_FALSE(decode(cut, 0)) << n;
  }
  Bytes bad_flag = *wire;
  bad_flag[kHeaderSize] = std::byte{2};
  EXPECT_FALSE(decode(bad_flag, 0));
  Bytes bad_tag = *wire;
  bad_tag[kHeaderSize + 1] = std::byte{3};
  EXPECT_FALSE(decode(bad_tag, 0));
  EXPECT_FALSE(decode(*wire, 1));  // no fd with it
  // An absent tag is 16 zero bytes: anything else has a second encoding.
  Middle untagged;
  auto plain = encode(untagged);
  ASSERT_TRUE(plain);
  ASSERT_TRUE(decode(*plain, 0));
  Bytes stray = *plain;
  stray[kHeaderSize + 2] = std::byte{0xfd};
  EXPECT_FALSE(decode(stray, 0));
  Middle many;
  many.listener_tags.resize(kMaxMiddleListeners + 1);
  auto big = encode(many);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, base::Errc::kTooLarge);
  Middle huge;
  huge.config_v4.assign(kMaxMessageSize, 'x');
  EXPECT_FALSE(encode(huge));
}

TEST(ControlProtocol, SettingsHasTheDocumentedLayout) {
  auto wire = encode(Settings{0x0102030405060708ull, {"--dc", "2=1.2.3.4:443"}});
  ASSERT_TRUE(wire);
  // generation, u16 count, then u16 length + bytes per argument.
  ASSERT_EQ(wire->size(), kHeaderSize + 8 + 2 + 2 + 4 + 2 + 13);
  EXPECT_EQ((*wire)[5], std::byte{16});
  EXPECT_EQ((*wire)[kHeaderSize], std::byte{0x08});
  EXPECT_EQ((*wire)[kHeaderSize + 8], std::byte{2});
  EXPECT_EQ((*wire)[kHeaderSize + 10], std::byte{4});
  EXPECT_FALSE(decode(*wire, 1));  // no fd with it
}

TEST(ControlProtocol, SettingsRejectsHostileArguments) {
  // One encoding per message: no empty argument, no NUL, no oversized one.
  for (const std::string& a :
       {std::string(), std::string("a\0b", 3), std::string(kMaxSettingsArgBytes + 1, 'x')}) {
    auto wire = encode(Settings{1, {a}});
    EXPECT_FALSE(wire) << a.size();
    // The same bytes forged on the wire are refused by the decoder too.
    auto good = encode(Settings{1, {std::string(a.empty() ? 1 : a.size(), 'y')}});
    if (!good || a.size() > kMaxSettingsArgBytes) continue;
    Bytes forged = *good;
    if (a.empty()) {
      forged.pop_back();
      forged[kHeaderSize + 10] = std::byte{0};
      proto::store_le32(forged.data() + 8, static_cast<std::uint32_t>(forged.size() - kHeaderSize));
    } else {
      forged[kHeaderSize + 12 + 1] = std::byte{0};
    }
    EXPECT_FALSE(decode(forged, 0)) << a.size();
  }
  Settings many;
  many.args.assign(kMaxSettingsArgs + 1, "x");
  auto big = encode(many);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, base::Errc::kTooLarge);
  // Type 0 is never assigned.
  auto unknown = encode(Settings{}).value();
  unknown[5] = std::byte{0};
  EXPECT_FALSE(decode(unknown, 0));
}

TEST(ControlProtocol, RoundTripsEveryMessage) {
  Report rep;
  rep.seq = 42;
  rep.counters[Counter::kBytesDcToClient] = 1ull << 40;
  std::vector<Message> msgs = {sample_handoff(),
                               rep,
                               SetLimits{100, kKeep, 5000},
                               Reload{{Bytes(16, std::byte{1}), Bytes(17, std::byte{0xdd})}},
                               ReportRequest{},
                               GateTable{0x0102030405060708ull},
                               GateHandoff{0xfffffffeu, sample_handoff()},
                               GateMask{sample_handoff()},
                               Lane{9},
                               GateLane{5, 2, kUnlimited},
                               GateCredit{6, 3, true, 12},
                               sample_direct(3),
                               MaskProfiles{0x0a0b0c0d0e0f1011ull},

                               sample_middle(),
                               Middle{},
                               Egress{0x0102030405060708ull},
                               Settings{9, {"--dc", "2=10.0.0.1:443", "--prefer-ipv6"}},
                               Settings{}};
  for (const auto& m : msgs) {
    auto wire = encode(m);
    ASSERT_TRUE(wire) << wire.error().to_string();
    std::size_t fds = carries_fd(type_of(m)) ? 1 : 0;
    auto back = decode(*wire, fds);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back, m);
  }
}

TEST(ControlProtocol, HeaderLayoutIsStable) {
  auto wire = encode(ReportRequest{}).value();
  ASSERT_EQ(wire.size(), kHeaderSize);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(wire.data()), 4), "MTWC");
  EXPECT_EQ(wire[4], std::byte{kVersion});
  EXPECT_EQ(wire[5], std::byte{5});
}

TEST(ControlProtocol, GateMessagesHaveTheDocumentedLayout) {
  auto table = encode(GateTable{0x1122334455667788ull}).value();
  ASSERT_EQ(table.size(), kHeaderSize + 8);
  EXPECT_EQ(table[5], std::byte{6});
  EXPECT_EQ(table[kHeaderSize], std::byte{0x88});  // little-endian
  EXPECT_EQ(table[kHeaderSize + 7], std::byte{0x11});

  Handoff h = sample_handoff();
  auto plain = encode(h).value();
  auto gate = encode(GateHandoff{0x01020304u, h}).value();
  EXPECT_EQ(gate[5], std::byte{7});
  ASSERT_EQ(gate.size(), plain.size() + 4);
  EXPECT_EQ(proto::load_le32(gate.data() + kHeaderSize), 0x01020304u);
  // After the user id comes exactly the handoff body.
  EXPECT_TRUE(std::equal(plain.begin() + kHeaderSize, plain.end(), gate.begin() + kHeaderSize + 4));

  auto mask = encode(GateMask{h}).value();
  EXPECT_EQ(mask[5], std::byte{8});
  EXPECT_TRUE(std::equal(plain.begin() + 6, plain.end(), mask.begin() + 6));
}

TEST(ControlProtocol, MaskProfilesHasTheDocumentedLayoutAndOneFd) {
  auto wire = encode(MaskProfiles{0x1122334455667788ull}).value();
  ASSERT_EQ(wire.size(), kHeaderSize + 8);
  EXPECT_EQ(wire[5], std::byte{13});
  EXPECT_EQ(wire[kHeaderSize], std::byte{0x88});  // little-endian
  EXPECT_TRUE(carries_fd(MsgType::kMaskProfiles));
  EXPECT_FALSE(decode(wire, 0));
  EXPECT_FALSE(decode(wire, 2));
  auto back = decode(wire, 1);
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<MaskProfiles>(*back).generation, 0x1122334455667788ull);
  wire.push_back(std::byte{0});  // a byte after the generation
  proto::store_le32(wire.data() + 8, 9);
  EXPECT_FALSE(decode(wire, 1));
}

TEST(ControlProtocol, EgressIsTypeFifteenWithAGenerationAndOneFd) {
  auto wire = encode(Egress{0x1122334455667788ull}).value();
  ASSERT_EQ(wire.size(), kHeaderSize + 8);
  EXPECT_EQ(wire[5], std::byte{15});
  EXPECT_EQ(wire[kHeaderSize], std::byte{0x88});  // little-endian
  EXPECT_TRUE(carries_fd(MsgType::kEgress));
  EXPECT_FALSE(decode(wire, 0));  // the egress travels in the fd, never in the body
  auto back = decode(wire, 1);
  ASSERT_TRUE(back);
  EXPECT_EQ(std::get<Egress>(*back).generation, 0x1122334455667788ull);
  wire.push_back(std::byte{0});
  proto::store_le32(wire.data() + 8, 9);
  EXPECT_FALSE(decode(wire, 1));
}

TEST(ControlProtocol, GateMessagesNeedExactlyOneFd) {
  for (const Message& m : std::vector<Message>{GateTable{1}, GateHandoff{1, sample_handoff()},
                                               GateMask{sample_handoff()}}) {
    auto wire = encode(m).value();
    EXPECT_FALSE(decode(wire, 0)) << int(type_of(m));
    EXPECT_TRUE(decode(wire, 1)) << int(type_of(m));
    EXPECT_FALSE(decode(wire, 2)) << int(type_of(m));
  }
}

TEST(ControlProtocol, GateMessagesEnforceTheHandoffCaps) {
  Handoff h = sample_handoff();
  h.data.assign(kMaxHandoffData + 1, std::byte{0});
  EXPECT_FALSE(encode(GateHandoff{1, h}));
  EXPECT_FALSE(encode(GateMask{h}));
  h.data.resize(kMaxHandoffData);
  for (const Message& m : std::vector<Message>{GateHandoff{1, h}, GateMask{h}}) {
    auto wire = encode(m).value();
    ASSERT_TRUE(decode(wire, 1));
    std::size_t len_at = wire.size() - kMaxHandoffData - 4;
    proto::store_le32(wire.data() + len_at, kMaxHandoffData + 1);
    auto r = decode(wire, 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, base::Errc::kTooLarge);
  }
  // Trailing bytes after a gate table's generation.
  auto table = encode(GateTable{1}).value();
  table.push_back(std::byte{0});
  proto::store_le32(table.data() + 8, 9);
  EXPECT_FALSE(decode(table, 1));
  // A bad reserved byte / family inside a gate handoff.
  auto gate = encode(GateHandoff{1, sample_handoff()}).value();
  auto bad_family = gate;
  bad_family[kHeaderSize + 4 + 4] = std::byte{5};
  EXPECT_FALSE(decode(bad_family, 1));
  auto unknown_flag = gate;
  unknown_flag[kHeaderSize + 4 + 5] = std::byte{2};
  EXPECT_FALSE(decode(unknown_flag, 1));
  // The hello-time flag without its 8 bytes: the length no longer adds up.
  auto flag_without_time = gate;
  flag_without_time[kHeaderSize + 4 + 5] = std::byte{1};
  EXPECT_FALSE(decode(flag_without_time, 1));
}

TEST(ControlProtocol, HandoffCarriesTheHelloTimeBehindItsFlag) {
  Handoff h = sample_handoff();
  const auto plain = encode(h).value();
  EXPECT_EQ(plain[kHeaderSize + 5], std::byte{0});  // no time: the old layout
  h.hello_at_ns = 0x0102030405060708ull;
  const auto timed = encode(h).value();
  ASSERT_EQ(timed.size(), plain.size() + 8);
  EXPECT_EQ(timed[kHeaderSize + 5], std::byte{1});
  EXPECT_EQ(timed[kHeaderSize + 24], std::byte{0x08});  // little-endian, after the address
  EXPECT_EQ(proto::load_le32(timed.data() + kHeaderSize + 32),
            static_cast<std::uint32_t>(h.data.size()));
  for (const Message& m : std::vector<Message>{h, GateHandoff{3, h}, GateMask{h}}) {
    auto wire = encode(m).value();
    auto back = decode(wire, 1);
    ASSERT_TRUE(back) << back.error().to_string();
    EXPECT_EQ(*back, m);
  }
  // A time of zero under the flag is refused: zero means "not known".
  auto zero = timed;
  std::fill(zero.begin() + kHeaderSize + 24, zero.begin() + kHeaderSize + 32, std::byte{0});
  EXPECT_FALSE(decode(zero, 1));
}

TEST(ControlProtocol, LaneMessagesHaveTheDocumentedLayout) {
  auto lane = encode(Lane{0x01020304u}).value();
  ASSERT_EQ(lane.size(), kHeaderSize + 4);
  EXPECT_EQ(lane[5], std::byte{9});
  EXPECT_EQ(lane[kHeaderSize], std::byte{0x04});

  auto gl = encode(GateLane{0x0a0b0c0du, 5, 77}).value();
  ASSERT_EQ(gl.size(), kHeaderSize + 16);
  EXPECT_EQ(gl[5], std::byte{10});
  EXPECT_EQ(proto::load_le32(gl.data() + kHeaderSize), 0x0a0b0c0du);
  EXPECT_EQ(proto::load_le32(gl.data() + kHeaderSize + 4), 5u);
  EXPECT_EQ(gl[kHeaderSize + 8], std::byte{77});

  auto gc = encode(GateCredit{3, 4, true, kUnlimited}).value();
  ASSERT_EQ(gc.size(), kHeaderSize + 20);
  EXPECT_EQ(gc[5], std::byte{11});
  EXPECT_EQ(proto::load_le32(gc.data() + kHeaderSize + 4), 4u);
  EXPECT_EQ(gc[kHeaderSize + 8], std::byte{1});
  EXPECT_EQ(gc[kHeaderSize + 19], std::byte{0xff});

  auto gd = encode(sample_direct(2)).value();
  ASSERT_EQ(gd.size(), kHeaderSize + 2 + 2 * kDirectEntrySize);
  EXPECT_EQ(gd[5], std::byte{12});
  EXPECT_EQ(gd[kHeaderSize], std::byte{2});
  EXPECT_EQ(proto::load_le32(gd.data() + kHeaderSize + 2), 100u);
  EXPECT_EQ(proto::load_le32(gd.data() + kHeaderSize + 6), 7u);
  EXPECT_EQ(gd[kHeaderSize + 2 + 8], std::byte{4});  // family of entry 0
}

TEST(ControlProtocol, LaneMessagesCheckFdsFlagsAndCaps) {
  // Lane and GateLane carry the lane socket; GateCredit and GateDirect none.
  for (const Message& m : std::vector<Message>{Lane{1}, GateLane{1, 1, 2}}) {
    auto wire = encode(m).value();
    EXPECT_FALSE(decode(wire, 0));
    EXPECT_TRUE(decode(wire, 1));
  }
  for (const Message& m : std::vector<Message>{GateCredit{1, 1, false, 2}, sample_direct(1)}) {
    auto wire = encode(m).value();
    EXPECT_TRUE(decode(wire, 0));
    EXPECT_FALSE(decode(wire, 1));
  }
  auto gc = encode(GateCredit{1, 1, false, 2}).value();
  auto bad_close = gc;
  bad_close[kHeaderSize + 8] = std::byte{2};
  EXPECT_FALSE(decode(bad_close, 0));
  auto bad_reserved = gc;
  bad_reserved[kHeaderSize + 10] = std::byte{1};
  EXPECT_FALSE(decode(bad_reserved, 0));

  EXPECT_FALSE(encode(GateDirect{}));
  EXPECT_TRUE(encode(sample_direct(kMaxDirectEntries)));
  EXPECT_FALSE(encode(sample_direct(kMaxDirectEntries + 1)));
  auto gd = encode(sample_direct(2)).value();
  auto zero = gd;
  zero[kHeaderSize] = std::byte{0};
  EXPECT_FALSE(decode(zero, 0));  // count 0 (and the length no longer matches)
  auto miscount = gd;
  miscount[kHeaderSize] = std::byte{3};
  EXPECT_FALSE(decode(miscount, 0));
  auto family = gd;
  family[kHeaderSize + 2 + 8] = std::byte{5};
  EXPECT_FALSE(decode(family, 0));
  auto reserved = gd;
  reserved[kHeaderSize + 2 + 9] = std::byte{1};
  EXPECT_FALSE(decode(reserved, 0));
  // A count over the cap is refused before the entries are read.
  auto big = gd;
  big[kHeaderSize] = std::byte((kMaxDirectEntries + 1) & 0xff);
  big[kHeaderSize + 1] = std::byte((kMaxDirectEntries + 1) >> 8);
  auto r = decode(big, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kTooLarge);
}

TEST(ControlProtocol, HandoffDataCapHoldsAWholeHandshakeBuffer) {
  // The gate hands over up to a whole ClientHello record (16384 + 5 bytes).
  EXPECT_GE(kMaxHandoffData, 16384u + 5u);
  Handoff h = sample_handoff();
  h.data.assign(kMaxHandoffData, std::byte{0x16});
  auto wire = encode(GateHandoff{1, h});
  ASSERT_TRUE(wire);
  EXPECT_LE(wire->size(), kMaxMessageSize);
}

TEST(ControlProtocol, RejectsHandoffWithoutExactlyOneFd) {
  auto wire = encode(sample_handoff()).value();
  EXPECT_FALSE(decode(wire, 0));
  EXPECT_FALSE(decode(wire, 2));
  auto req = encode(ReportRequest{}).value();
  EXPECT_FALSE(decode(req, 1));
}

TEST(ControlProtocol, RejectsOversizedHandoffData) {
  Handoff h = sample_handoff();
  h.data.assign(kMaxHandoffData + 1, std::byte{0});
  EXPECT_FALSE(encode(h));
  h.data.resize(kMaxHandoffData);
  auto wire = encode(h).value();
  // Patch the data length field (offset 12 + 24) to claim more than the cap.
  proto::store_le32(wire.data() + kHeaderSize + 24, kMaxHandoffData + 1);
  auto r = decode(wire, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, base::Errc::kTooLarge);
}

TEST(ControlProtocol, RejectsMalformedHeaders) {
  auto good = encode(SetLimits{}).value();
  auto bad_magic = good;
  bad_magic[0] = std::byte{'X'};
  auto bad_version = good;
  bad_version[4] = std::byte{2};
  auto bad_type = good;
  bad_type[5] = std::byte{99};
  auto bad_flags = good;
  bad_flags[6] = std::byte{1};
  auto long_len = good;
  long_len.push_back(std::byte{0});
  auto short_len = good;
  short_len.pop_back();
  for (const auto& b : {bad_magic, bad_version, bad_type, bad_flags, long_len, short_len}) {
    EXPECT_FALSE(decode(b, 0));
  }
  EXPECT_FALSE(decode(Bytes(5, std::byte{0}), 0));
}

TEST(ControlProtocol, EveryTruncationIsAnErrorNotACrash) {
  for (const Message& m : std::vector<Message>{
           sample_handoff(), Report{}, SetLimits{}, Reload{{Bytes(20, std::byte{0xee})}},
           GateTable{7}, GateHandoff{3, sample_handoff()}, GateMask{sample_handoff()}, Lane{1},
           GateLane{1, 1, 1}, GateCredit{1, 1, false, 1}, sample_direct(2), MaskProfiles{3},
           Egress{4}, Settings{1, {"--fast-mode", "off"}}}) {
    auto wire = encode(m).value();
    std::size_t fds = carries_fd(type_of(m)) ? 1 : 0;
    for (std::size_t n = 0; n < wire.size(); ++n) {
      Bytes cut(wire.begin(), wire.begin() + n);
      if (n >= kHeaderSize) proto::store_le32(cut.data() + 8, n - kHeaderSize);
      EXPECT_FALSE(decode(cut, fds)) << "type " << int(type_of(m)) << " cut at " << n;
    }
  }
}

TEST(ControlProtocol, ReportAcceptsMoreCountersFromNewerWorker) {
  Report rep;
  rep.seq = 1;
  rep.counters[Counter::kAccepted] = 5;
  auto wire = encode(rep).value();
  // Append one extra counter and bump count and body length.
  for (int i = 0; i < 8; ++i) wire.push_back(std::byte{0xff});
  proto::store_le32(wire.data() + 8, static_cast<std::uint32_t>(wire.size() - kHeaderSize));
  wire[kHeaderSize + 8] = std::byte(kCounterCount + 1);
  auto back = decode(wire, 0);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<Report>(*back).counters[Counter::kAccepted], 5u);
}

TEST(ControlProtocol, ReportCarriesUpstreamCounters) {
  Report rep;
  rep.seq = 3;
  rep.upstreams.push_back({"dante", true, 7, 1, 1u << 20, 1ull << 33, 0});
  rep.upstreams.push_back({"dead", false, 0, 9, 0, 0, 2});
  auto wire = encode(rep).value();
  // Header, seq, count, counters, then u16 2 and the first entry's name.
  const std::size_t at = kHeaderSize + 8 + 2 + 8 * kCounterCount;
  ASSERT_EQ(wire.size(), at + 2 + 2 * (1 + 1 + 8 * 5) + 5 + 4);
  EXPECT_EQ(wire[at], std::byte{2});
  EXPECT_EQ(wire[at + 2], std::byte{5});
  auto back = decode(wire, 0);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<Report>(*back), rep);
}

TEST(ControlProtocol, ReportRejectsBadUpstreamEntries) {
  Report rep;
  rep.seq = 1;
  rep.upstreams.push_back({"a", true, 1, 2, 3, 4, 5});
  const auto good = encode(rep).value();
  const std::size_t at = kHeaderSize + 8 + 2 + 8 * kCounterCount;
  auto with = [&](std::size_t off, std::byte v) {
    auto w = good;
    w[off] = v;
    return decode(w, 0);
  };
  EXPECT_FALSE(with(at, std::byte{0}));      // zero upstreams announced
  EXPECT_FALSE(with(at, std::byte{65}));     // over the cap
  EXPECT_FALSE(with(at + 2, std::byte{0}));  // empty name
  EXPECT_FALSE(with(at + 2, std::byte{2}));  // name longer than the bytes left allow
  EXPECT_FALSE(with(at + 4, std::byte{2}));  // up is not 0 or 1
  auto extra = good;
  extra.push_back(std::byte{0});
  proto::store_le32(extra.data() + 8, static_cast<std::uint32_t>(extra.size() - kHeaderSize));
  EXPECT_FALSE(decode(extra, 0));  // trailing byte
}

ClientsReport sample_clients() {
  ClientsReport c;
  c.last_close_unix = 1'790'000'123;
  ClientAddress v4;
  v4.peer.family = 4;
  v4.peer.addr[0] = std::byte{198};
  v4.peer.addr[1] = std::byte{51};
  v4.peer.addr[2] = std::byte{100};
  v4.peer.addr[3] = std::byte{7};
  v4.connections = 2;
  ClientAddress v6;
  v6.peer.family = 6;
  v6.peer.addr[0] = std::byte{0x20};
  v6.peer.addr[1] = std::byte{0x01};
  v6.peer.addr[15] = std::byte{0x09};
  v6.connections = 1;
  c.open = {v4, v6};
  return c;
}

TEST(ControlProtocol, ReportCarriesClientsWithoutUpstreams) {
  Report rep;
  rep.seq = 4;
  rep.clients = sample_clients();
  auto wire = encode(rep).value();
  // Counters, u16 0 upstreams, i64 last close, u8 truncated, u16 2, 2 x 24.
  const std::size_t at = kHeaderSize + 8 + 2 + 8 * kCounterCount;
  ASSERT_EQ(wire.size(), at + 2 + 8 + 1 + 2 + 2 * kClientEntrySize);
  EXPECT_EQ(wire[at], std::byte{0});
  EXPECT_EQ(wire[at + 2 + 8 + 1], std::byte{2});
  auto back = decode(wire, 0);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<Report>(*back), rep);
  EXPECT_EQ(std::get<Report>(*back).clients->last_close_unix, 1'790'000'123);
}

TEST(ControlProtocol, ReportCarriesClientsAfterUpstreams) {
  Report rep;
  rep.seq = 5;
  rep.upstreams.push_back({"dante", true, 7, 1, 1u << 20, 1ull << 33, 0});
  rep.clients = sample_clients();
  rep.clients->truncated = true;
  auto back = decode(encode(rep).value(), 0);
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(std::get<Report>(*back), rep);
  // An empty clients section still says "none open", unlike no section.
  Report none;
  none.seq = 6;
  none.clients = ClientsReport{};
  back = decode(encode(none).value(), 0);
  ASSERT_TRUE(back) << back.error().to_string();
  ASSERT_TRUE(std::get<Report>(*back).clients.has_value());
  EXPECT_TRUE(std::get<Report>(*back).clients->open.empty());
}

TEST(ControlProtocol, ReportRejectsBadClientEntries) {
  Report rep;
  rep.seq = 1;
  rep.clients = sample_clients();
  const auto good = encode(rep).value();
  const std::size_t section = kHeaderSize + 8 + 2 + 8 * kCounterCount + 2;
  const std::size_t entry = section + 8 + 1 + 2;
  auto with = [&](std::size_t off, std::byte v) {
    auto w = good;
    w[off] = v;
    return decode(w, 0);
  };
  ASSERT_TRUE(decode(good, 0));
  EXPECT_FALSE(with(section + 8, std::byte{2}));   // truncated is not 0 or 1
  EXPECT_FALSE(with(section + 9, std::byte{3}));   // more entries announced than sent
  EXPECT_FALSE(with(entry, std::byte{0}));         // unknown family
  EXPECT_FALSE(with(entry, std::byte{5}));         // not 4 or 6
  EXPECT_FALSE(with(entry + 1, std::byte{1}));     // reserved byte set
  EXPECT_FALSE(with(entry + 2, std::byte{1}));     // a port: addresses only
  EXPECT_FALSE(with(entry + 20, std::byte{0}));    // zero connections (2 -> 0)
  auto big = with(section + 10, std::byte{0x10});  // 4098 announced, over the cap
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code, base::Errc::kTooLarge);
  Report over;
  over.clients = ClientsReport{};
  over.clients->open.resize(kMaxReportClients + 1, sample_clients().open[0]);
  auto e = encode(over);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, base::Errc::kTooLarge);
  // The largest report still fits a datagram.
  over.clients->open.resize(kMaxReportClients);
  for (std::size_t i = 0; i < kMaxReportUpstreams; ++i)
    over.upstreams.push_back({std::string(64, 'u'), true, 1, 2, 3, 4, 5});
  auto fits = encode(over);
  ASSERT_TRUE(fits) << fits.error().to_string();
  EXPECT_LE(fits->size(), kMaxMessageSize);
  EXPECT_EQ(std::get<Report>(decode(*fits, 0).value()), over);
}

// A real TCP connection, accepted here, travels through a SOCK_SEQPACKET pair
// with the bytes "already read"; the receiver then talks over the passed fd.
TEST(ControlSocket, PassesARealSocketAndKeepsItUsable) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd parent(sp[0]), worker(sp[1]);

  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  UniqueFd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);

  ASSERT_EQ(::write(client.get(), "hello", 5), 5);
  char first[5];
  ASSERT_EQ(::read(accepted.get(), first, 5), 5);  // what the gate consumed

  Handoff h = sample_handoff();
  h.data = bytes_of(std::string_view(first, 5));
  auto wire = encode(h).value();
  ASSERT_TRUE(send_datagram(parent.get(), wire, accepted.get()));
  accepted.reset();  // the parent's copy is gone; only the passed one remains

  auto got = recv_datagram(worker.get(), false);
  ASSERT_TRUE(got) << got.error().to_string();
  ASSERT_TRUE(*got);
  ASSERT_EQ((*got)->fds.size(), 1u);
  auto msg = decode((*got)->bytes, 1);
  ASSERT_TRUE(msg);
  EXPECT_EQ(std::get<Handoff>(*msg).data, bytes_of("hello"));
  EXPECT_EQ(std::get<Handoff>(*msg).listener_id, 7u);

  int passed = (*got)->fds[0].get();
  ASSERT_EQ(::write(passed, "pong", 4), 4);
  char buf[8] = {};
  ASSERT_EQ(::read(client.get(), buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  ASSERT_EQ(::write(client.get(), "ping!", 5), 5);
  ASSERT_EQ(::read(passed, buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "ping!");
}

TEST(ControlSocket, ReportsEofWhenPeerCloses) {
  int sp[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp), 0);
  UniqueFd a(sp[0]), b(sp[1]);
  a.reset();
  auto got = recv_datagram(b.get(), false);
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);
}

}  // namespace
}  // namespace mtw::ipc::control
