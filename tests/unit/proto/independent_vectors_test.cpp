// proto/ against bytes produced by two client implementations that share no
// code with us: Debian python3-telethon (obfuscated2 with abridged,
// intermediate and randomized-intermediate framing) and npm @mtcute/node
// (fake TLS). The vectors and their field meanings: tests/vectors/README.md;
// tests/vectors/generate.sh regenerates them (never run by the tests).
#include <gtest/gtest.h>

#include <boost/json/src.hpp>  // header-only Boost.JSON, compiled into this test only
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "proto/aes_ctr.h"
#include "proto/fake_tls.h"
#include "proto/framing.h"
#include "proto/obfs2.h"
#include "proto/secret.h"

namespace mtw::proto {
namespace {

namespace json = boost::json;

json::value load(const char* rel) {
  std::ifstream f(std::string(MTW_SOURCE_DIR) + "/tests/vectors/" + rel, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing vector file " << rel;
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str());
}

// Local hex decoder so that a bug in proto's own hex helpers cannot mask a
// mismatch here.
Bytes hex(std::string_view s) {
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    ADD_FAILURE() << "bad hex digit in vector";
    return 0;
  };
  Bytes out(s.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = std::byte((nib(s[2 * i]) << 4) | nib(s[2 * i + 1]));
  return out;
}
Bytes hex(const json::value& v) { return hex(std::string_view(v.as_string())); }
std::string str(const json::value& v) { return std::string(v.as_string()); }

SecretKey key_of(const json::value& root) {
  Bytes k = hex(root.at("key"));
  SecretKey key{};
  EXPECT_EQ(k.size(), key.size());
  std::copy_n(k.begin(), key.size(), key.begin());
  return key;
}

std::span<const std::byte, kInitSize> init_span(const Bytes& b) {
  EXPECT_GE(b.size(), kInitSize);
  return std::span<const std::byte, kInitSize>(b.data(), kInitSize);
}

ProtoTag tag_of(const json::value& c) {
  std::string t = str(c.at("expected_tag"));
  if (t == "efefefef") return ProtoTag::kAbridged;
  if (t == "eeeeeeee") return ProtoTag::kIntermediate;
  EXPECT_EQ(t, "dddddddd");
  return ProtoTag::kPadded;
}

std::vector<Bytes> payloads(const json::value& c, const char* field) {
  std::vector<Bytes> out;
  for (const auto& p : c.at(field).as_array()) out.push_back(hex(p));
  return out;
}

// Decodes client->proxy frames, feeding the stream in odd-sized chunks and
// keeping the unconsumed tail, as the worker does across reads.
std::vector<Bytes> decode_to_server(Transport t, ByteSpan stream, std::size_t chunk) {
  std::vector<Bytes> frames;
  Bytes pending;
  for (std::size_t off = 0; off < stream.size(); off += chunk) {
    auto piece = stream.subspan(off, std::min(chunk, stream.size() - off));
    pending.insert(pending.end(), piece.begin(), piece.end());
    auto used = decode_frames(t, Direction::kToServer, pending, [&](const Frame& f) {
      EXPECT_EQ(f.kind, Frame::Kind::kPacket);
      frames.emplace_back(f.payload.begin(), f.payload.end());
    });
    if (!used) {
      ADD_FAILURE() << "decode_frames: " << used.error().to_string();
      return frames;
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*used));
  }
  EXPECT_TRUE(pending.empty()) << pending.size() << " bytes left undecoded";
  return frames;
}

// Padded intermediate can only drop padding to a multiple of 4 (the length
// says payload+pad); accept a frame that is the payload plus at most 15
// trailing pad bytes. Other transports must match exactly.
void expect_frames(Transport t, const std::vector<Bytes>& got, const std::vector<Bytes>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE("frame " + std::to_string(i));
    if (t == Transport::kPadded) {
      ASSERT_GE(got[i].size(), want[i].size());
      EXPECT_LE(got[i].size() - want[i].size(), 15u);
      EXPECT_TRUE(std::equal(want[i].begin(), want[i].end(), got[i].begin()));
    } else {
      EXPECT_EQ(got[i], want[i]);
    }
  }
}

Bytes xor_stream(AesCtr& c, const Bytes& in) {
  Bytes out(in.size());
  c.apply(in, out);
  return out;
}

// ---------------------------------------------------------------- telethon

class TelethonVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = load("telethon.json");
    key_ = key_of(root_);
    ASSERT_GE(root_.at("cases").as_array().size(), 9u);
  }
  const json::array& cases() const { return root_.at("cases").as_array(); }
  json::value root_;
  SecretKey key_{};
};

TEST_F(TelethonVectors, InitsDecodeToTheClassTagAndDc) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes init = hex(c.at("init"));
    ASSERT_EQ(init.size(), kInitSize);
    auto parsed = parse_client_init(init_span(init), key_);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
    EXPECT_EQ(parsed->tag, tag_of(c));
    EXPECT_EQ(parsed->dc, c.at("dc").to_number<int>());
  }
}

TEST_F(TelethonVectors, DdPrefixedSecretGivesTheSameKeysAsTheBareKey) {
  // telethon was handed "dd"+key for this case; our secret parser must reduce
  // it to the same 16-byte key that decodes the init.
  for (const auto& c : cases()) {
    std::string s = str(c.at("secret"));
    if (s.size() != 34) continue;
    SCOPED_TRACE(str(c.at("name")));
    auto secret = parse_secret(s);
    ASSERT_TRUE(secret.has_value()) << secret.error().to_string();
    EXPECT_EQ(secret->kind, SecretKind::kSecure);
    Bytes init = hex(c.at("init"));
    auto parsed = parse_client_init(init_span(init), secret->key);
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(parsed->tag, ProtoTag::kPadded);
    return;
  }
  FAIL() << "no dd+key case in telethon.json";
}

TEST_F(TelethonVectors, WrongSecretDoesNotYieldAKnownTag) {
  SecretKey wrong = key_;
  wrong[15] ^= std::byte{0x01};
  int rejected = 0;
  for (const auto& c : cases()) {
    Bytes init = hex(c.at("init"));
    auto parsed = parse_client_init(init_span(init), wrong);
    ASSERT_FALSE(parsed.has_value()) << str(c.at("name"));
    EXPECT_EQ(parsed.error().code, Errc::kBadHandshake);
    ++rejected;
  }
  EXPECT_EQ(rejected, static_cast<int>(cases().size()));
}

TEST_F(TelethonVectors, ClientStreamDecryptsToTelethonsPackets) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes init = hex(c.at("init"));
    auto parsed = parse_client_init(init_span(init), key_);
    ASSERT_TRUE(parsed.has_value());
    auto streams = make_client_streams(*parsed);
    ASSERT_TRUE(streams.has_value()) << streams.error().to_string();
    Bytes plain = xor_stream(streams->decrypt, hex(c.at("c2s")));
    EXPECT_EQ(plain, hex(c.at("c2s_plain")));
    Transport t = transport_for(parsed->tag);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{333}, plain.size()}) {
      SCOPED_TRACE("chunk " + std::to_string(chunk));
      expect_frames(t, decode_to_server(t, plain, chunk), payloads(c, "c2s_payloads"));
    }
  }
}

TEST_F(TelethonVectors, ProxyEncryptStreamProducesWhatTelethonDecodes) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes init = hex(c.at("init"));
    auto parsed = parse_client_init(init_span(init), key_);
    ASSERT_TRUE(parsed.has_value());
    auto streams = make_client_streams(*parsed);
    ASSERT_TRUE(streams.has_value());
    EXPECT_EQ(xor_stream(streams->encrypt, hex(c.at("s2c_plain"))), hex(c.at("s2c")));
  }
}

TEST_F(TelethonVectors, EncoderFramesServerPacketsAsTelethonReadsThem) {
  // Padded frames carry random padding, so only the deterministic transports
  // are compared byte for byte.
  for (const auto& c : cases()) {
    Transport t = transport_for(tag_of(c));
    if (t == Transport::kPadded) continue;
    SCOPED_TRACE(str(c.at("name")));
    Bytes out;
    for (const auto& p : payloads(c, "s2c_payloads")) {
      auto r = encode_packet(t, p, false, out);
      ASSERT_TRUE(r.has_value()) << r.error().to_string();
    }
    EXPECT_EQ(out, hex(c.at("s2c_plain")));
  }
}

// ---------------------------------------------------------------- mtcute

class MtcuteVectors : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = load("mtcute.json");
    key_ = key_of(root_);
    ASSERT_GE(root_.at("cases").as_array().size(), 4u);
  }
  const json::array& cases() const { return root_.at("cases").as_array(); }
  static ClockWindow at(const json::value& c) {
    ClockWindow w;
    w.now = c.at("now").to_number<std::int64_t>();
    w.max_skew_seconds = 600;
    return w;
  }
  json::value root_;
  SecretKey key_{};
};

TEST_F(MtcuteVectors, SecretParsesToKeyAndDomain) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    auto s = parse_secret(str(c.at("secret")));
    ASSERT_TRUE(s.has_value()) << s.error().to_string();
    EXPECT_EQ(s->kind, SecretKind::kFakeTls);
    EXPECT_EQ(s->key, key_);
    EXPECT_EQ(s->domain, str(c.at("domain")));
  }
}

TEST_F(MtcuteVectors, ClientHelloParsesWithRandomAndSni) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes rec = hex(c.at("client_hello"));
    auto scan = scan_client_hello(rec);
    ASSERT_TRUE(scan.has_value()) << scan.error().to_string();
    EXPECT_TRUE(scan->complete);
    EXPECT_EQ(scan->needed, rec.size());
    auto hello = parse_client_hello(rec);
    ASSERT_TRUE(hello.has_value()) << hello.error().to_string();
    EXPECT_EQ(hello->consumed, rec.size());
    Bytes random = hex(c.at("client_random"));
    EXPECT_TRUE(std::equal(random.begin(), random.end(), hello->random.begin()));
    ASSERT_TRUE(hello->sni.has_value());
    EXPECT_EQ(*hello->sni, str(c.at("domain")));
    EXPECT_EQ(hello->session_id_len, 32u);
  }
}

TEST_F(MtcuteVectors, ClientHelloHmacValidatesAtTheMockedTime) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    auto hello = parse_client_hello(hex(c.at("client_hello")));
    ASSERT_TRUE(hello.has_value());
    auto ts = validate_client_hello(*hello, key_, at(c));
    ASSERT_TRUE(ts.has_value()) << ts.error().to_string();
    EXPECT_EQ(*ts, c.at("now").to_number<std::uint32_t>());
    EXPECT_TRUE(check_sni(*hello, str(c.at("domain"))).has_value());
  }
}

TEST_F(MtcuteVectors, ClientHelloFailsWithWrongKeyTimeOrSni) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    auto hello = parse_client_hello(hex(c.at("client_hello")));
    ASSERT_TRUE(hello.has_value());
    SecretKey wrong = key_;
    wrong[0] ^= std::byte{0x80};
    auto bad_key = validate_client_hello(*hello, wrong, at(c));
    ASSERT_FALSE(bad_key.has_value());
    EXPECT_EQ(bad_key.error().code, Errc::kBadHandshake);

    ClockWindow late = at(c);
    late.now += 3600;
    auto skew = validate_client_hello(*hello, key_, late);
    ASSERT_FALSE(skew.has_value());
    EXPECT_EQ(skew.error().code, Errc::kClockSkew);

    auto sni = check_sni(*hello, "not-" + str(c.at("domain")));
    ASSERT_FALSE(sni.has_value());
    EXPECT_EQ(sni.error().code, Errc::kWrongSni);

    // One flipped byte inside the HMAC'd region (the cipher suite list).
    Bytes tampered = hex(c.at("client_hello"));
    tampered[80] ^= std::byte{0x01};
    auto h2 = parse_client_hello(tampered);
    ASSERT_TRUE(h2.has_value()) << h2.error().to_string();
    auto bad = validate_client_hello(*h2, key_, at(c));
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().code, Errc::kBadHandshake);
  }
}

TEST_F(MtcuteVectors, ServerHelloThatMtcuteAcceptedVerifies) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes sh = hex(c.at("server_hello"));
    Bytes random = hex(c.at("client_random"));
    ASSERT_EQ(random.size(), 32u);
    std::span<const std::byte, 32> cr(random.data(), 32);
    auto used = verify_server_hello(sh, cr, key_);
    ASSERT_TRUE(used.has_value()) << used.error().to_string();
    EXPECT_EQ(*used, sh.size());
    sh[sh.size() - 1] ^= std::byte{0x01};  // last ApplicationData byte is HMAC'd too
    EXPECT_FALSE(verify_server_hello(sh, cr, key_).has_value());
  }
}

// Client bytes after the hello: CCS then application-data records.
Bytes record_payloads(const json::value& c) {
  Bytes wire = hex(c.at("client_ccs"));
  Bytes recs = hex(c.at("c2s_records"));
  wire.insert(wire.end(), recs.begin(), recs.end());
  Bytes body;
  auto used =
      read_tls_records(wire, [&](ByteSpan p) { body.insert(body.end(), p.begin(), p.end()); });
  EXPECT_TRUE(used.has_value()) << used.error().to_string();
  if (used) {
    EXPECT_EQ(*used, wire.size());
  }
  return body;
}

TEST_F(MtcuteVectors, FirstRecordsCarryTheInitAndThePackets) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes body = record_payloads(c);
    ASSERT_GT(body.size(), kInitSize);
    auto parsed = parse_client_init(init_span(body), key_);
    ASSERT_TRUE(parsed.has_value()) << parsed.error().to_string();
    EXPECT_EQ(parsed->tag, ProtoTag::kPadded);
    EXPECT_EQ(parsed->dc, c.at("dc").to_number<int>());
    auto streams = make_client_streams(*parsed);
    ASSERT_TRUE(streams.has_value());
    Bytes rest(body.begin() + kInitSize, body.end());
    Bytes plain = xor_stream(streams->decrypt, rest);
    EXPECT_EQ(plain, hex(c.at("c2s_plain")));
    expect_frames(Transport::kPadded, decode_to_server(Transport::kPadded, plain, 97),
                  payloads(c, "c2s_payloads"));
  }
}

TEST_F(MtcuteVectors, ProxyRecordsMatchWhatMtcuteDecodes) {
  for (const auto& c : cases()) {
    SCOPED_TRACE(str(c.at("name")));
    Bytes body = record_payloads(c);
    ASSERT_GT(body.size(), kInitSize);
    auto parsed = parse_client_init(init_span(body), key_);
    ASSERT_TRUE(parsed.has_value());
    auto streams = make_client_streams(*parsed);
    ASSERT_TRUE(streams.has_value());
    // One record per frame, as the generator wrote them.
    Bytes out;
    auto pays = payloads(c, "s2c_payloads");
    const auto& pads = c.at("s2c_pads").as_array();
    for (std::size_t i = 0; i < pays.size(); ++i) {
      Bytes pad = hex(pads[i]);
      Bytes frame(4);
      store_le32(frame.data(), static_cast<std::uint32_t>(pays[i].size() + pad.size()));
      frame.insert(frame.end(), pays[i].begin(), pays[i].end());
      frame.insert(frame.end(), pad.begin(), pad.end());
      write_tls_records(xor_stream(streams->encrypt, frame), out);
    }
    EXPECT_EQ(out, hex(c.at("s2c_records")));
  }
}

}  // namespace
}  // namespace mtw::proto
