// Mask profile: the first-flight parser against a captured nginx flight,
// merging samples, the text form, and the answer built from a profile.
#include "proto/tls_profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "test_util.h"

namespace mtw::proto {
namespace {

using testing::hex;

struct Capture {
  Bytes client_session_id;
  Bytes server;
};

// tests/vectors/nginx_first_flight.txt: "client_session_id <hex>" and
// "server <hex>" lines, '#' comments.
Capture nginx_capture() {
  std::ifstream f(std::string(MTW_SOURCE_DIR) + "/tests/vectors/nginx_first_flight.txt");
  EXPECT_TRUE(f.good());
  Capture c;
  std::string key, value;
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream(line) >> key >> value;
    (key == "server" ? c.server : c.client_session_id) = hex(value);
  }
  return c;
}

std::vector<std::uint16_t> types_of(const std::vector<TlsExtension>& exts) {
  std::vector<std::uint16_t> t;
  for (const auto& e : exts) t.push_back(e.type);
  return t;
}

TEST(ServerFlight, ReadsTheNginxCapture) {
  const Capture c = nginx_capture();
  auto f = parse_server_flight(c.server);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  EXPECT_EQ(f->record_version, 0x0303);
  EXPECT_EQ(f->legacy_version, 0x0303);
  EXPECT_EQ(f->cipher_suite, 0x1302);  // Python's offer lists TLS_AES_256_GCM_SHA384 first
  EXPECT_EQ(f->session_id, c.client_session_id);
  // OpenSSL: supported_versions before key_share.
  EXPECT_EQ(types_of(f->extensions), (std::vector<std::uint16_t>{0x002b, 0x0033}));
  EXPECT_EQ(to_hex(f->extensions[0].body), "0304");
  EXPECT_EQ(f->key_share_group, 0x001d);
  EXPECT_EQ(f->key_share_len, 32u);
  EXPECT_EQ(f->ccs_count, 1u);
  // EncryptedExtensions (ALPN http/1.1), Certificate, CertificateVerify, Finished (SHA-384).
  ASSERT_EQ(f->encrypted_records.size(), 4u);
  EXPECT_EQ(f->encrypted_records[0], 42u);
  EXPECT_EQ(f->encrypted_records[2], 281u);
  EXPECT_EQ(f->encrypted_records[3], 69u);
  EXPECT_EQ(f->consumed, c.server.size());
}

TEST(ServerFlight, IgnoresAPartialTrailingRecord) {
  Bytes cut = nginx_capture().server;
  cut.resize(cut.size() - 10);
  auto f = parse_server_flight(cut);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->encrypted_records.size(), 3u);
  EXPECT_EQ(f->consumed, cut.size() + 10 - (5 + 69));
}

TEST(ServerFlight, WantsTheWholeServerHello) {
  const Bytes s = nginx_capture().server;
  for (std::size_t n : {0u, 4u, 5u, 126u}) {
    auto f = parse_server_flight(ByteSpan(s).first(n));
    ASSERT_FALSE(f.has_value());
    EXPECT_EQ(f.error().code, Errc::kShortInput) << n;
  }
}

TEST(ServerFlight, RejectsWhatIsNotATls13ServerHello) {
  const Bytes s = nginx_capture().server;
  auto rejects = [](Bytes b) {
    auto f = parse_server_flight(b);
    return !f.has_value() && f.error().code == Errc::kBadInput;
  };
  EXPECT_TRUE(rejects(hex("150303000202280000")));  // alert
  Bytes hrr = s;
  const Bytes magic = hex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c");
  std::copy(magic.begin(), magic.end(), hrr.begin() + 11);
  EXPECT_TRUE(rejects(hrr));
  Bytes tls12 = s;
  tls12[5 + 4 + 2 + 32 + 1 + 32 + 3 + 2 + 4 + 1] = std::byte{0x03};  // supported_versions 0303
  EXPECT_TRUE(rejects(tls12));
  Bytes not_hello = s;
  not_hello[5] = std::byte{0x0b};
  EXPECT_TRUE(rejects(not_hello));
  Bytes plain_after = s;
  plain_after[5 + 122] = std::byte{0x16};  // the CCS record turned into a handshake record
  EXPECT_TRUE(rejects(plain_after));
  Bytes bad_ext_len = s;
  bad_ext_len[5 + 4 + 2 + 32 + 1 + 32 + 3 + 1] ^= std::byte{0x01};
  EXPECT_TRUE(rejects(bad_ext_len));
}

ServerFlight flight(std::vector<std::size_t> records, std::uint16_t cipher = 0x1301) {
  ServerFlight f;
  f.record_version = f.legacy_version = 0x0303;
  f.cipher_suite = cipher;
  f.session_id = Bytes(32, std::byte{7});
  f.extensions = {{0x002b, hex("0304")}, {0x0033, hex("001d0020")}};
  f.extensions[1].body.resize(36, std::byte{9});
  f.key_share_group = 0x001d;
  f.key_share_len = 32;
  f.ccs_count = 1;
  f.encrypted_records = std::move(records);
  return f;
}

TEST(ProfileFromFlights, KeepsTheSpreadOfEveryRecordAndTheMedianLatency) {
  std::vector<FlightSample> s = {{flight({36, 2000, 281, 53}), Bytes(32, std::byte{7}), 5},
                                 {flight({36, 2003, 281, 53}), Bytes(32, std::byte{7}), 1},
                                 {flight({36, 1999, 281, 53, 100}), Bytes(32, std::byte{7}), 9}};
  auto p = profile_from_flights(s, "mask.test", 1'800'000'000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(p->source, ProfileSource::kMeasured);
  EXPECT_EQ(p->domain, "mask.test");
  EXPECT_EQ(p->samples, 2u);  // the 5-record sample is not the common shape
  EXPECT_EQ(p->encrypted_records,
            (std::vector<RecordRange>{{36, 36}, {2000, 2003}, {281, 281}, {53, 53}}));
  EXPECT_EQ(p->handshake_latency.min_ms, 1u);
  EXPECT_EQ(p->handshake_latency.median_ms, 5u);
  EXPECT_EQ(p->handshake_latency.max_ms, 9u);
  EXPECT_TRUE(p->session_id_echo);
  EXPECT_EQ(to_hex(p->extensions[1].body), "001d0020");  // the key is not kept
  EXPECT_EQ(flight_wire_range(*p).min, 4u * 5 + 36 + 2000 + 281 + 53);
  EXPECT_EQ(flight_wire_range(*p).max, 4u * 5 + 36 + 2003 + 281 + 53);
}

TEST(ProfileFromFlights, RefusesAServerWhoseHelloChanges) {
  std::vector<FlightSample> s = {{flight({36}, 0x1301), {}, 1}, {flight({36}, 0x1302), {}, 1}};
  EXPECT_FALSE(profile_from_flights(s, "mask.test", 1).has_value());
  EXPECT_FALSE(profile_from_flights({}, "mask.test", 1).has_value());
  std::vector<FlightSample> none = {{flight({}), {}, 1}};
  EXPECT_FALSE(profile_from_flights(none, "mask.test", 1).has_value());
}

TEST(ProfileFromFlights, TellsAnEchoFromAFreshSessionId) {
  std::vector<FlightSample> s = {{flight({36}), Bytes(32, std::byte{1}), 1}};
  auto p = profile_from_flights(s, "mask.test", 1);
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->session_id_echo);
}

TEST(ProfileText, BuiltinHasThisExactForm) {
  EXPECT_EQ(format_profile(builtin_profile()),
            "mtw-tls-profile 1\n"
            "source builtin\n"
            "measured_at 0\n"
            "domain -\n"
            "samples 0\n"
            "legacy_version 0303\n"
            "cipher 1301\n"
            "session_id_echo yes\n"
            "ext 002b 0304\n"
            "ext 0033 001d0020\n"
            "ccs 1\n"
            "flight 36 2400-4000 281 53\n"
            "latency_ms 0 0 0\n"
            "response -\n"
            "idle_close fin 60000 0 -\n"
            "bad_close fin 0 7 1503030002020a\n");
}

TEST(ProfileText, RoundTripsAMeasuredProfile) {
  TlsProfile p = builtin_profile();
  p.source = ProfileSource::kMeasured;
  p.measured_at = 1'800'000'123;
  p.domain = "mask.test";
  p.samples = 20;
  p.cipher_suite = 0x1302;
  p.session_id_echo = false;
  p.extensions.insert(p.extensions.begin(), TlsExtension{0x0000, {}});
  p.encrypted_records = {{42, 42}, {833, 840}, {281, 281}, {69, 69}};
  p.handshake_latency = {1, 2, 30};
  p.response_records = {249, 249, 160};
  p.answer_us = {850, 900, 1200};
  p.idle_close = {CloseKind::kOpen, 5000, 0, {}};
  p.bad_close = {CloseKind::kRst, 12, 300, Bytes(16, std::byte{0x48})};
  auto back = parse_profile(format_profile(p));
  ASSERT_TRUE(back.has_value()) << back.error().to_string();
  EXPECT_EQ(*back, p);
  EXPECT_EQ(*parse_profile(format_profile(builtin_profile())), builtin_profile());
}

TlsProfile measured_for(std::string domain, std::size_t cert) {
  TlsProfile p = builtin_profile();
  p.source = ProfileSource::kMeasured;
  p.measured_at = 1'800'000'000;
  p.domain = std::move(domain);
  p.samples = 5;
  p.encrypted_records = {{36, 36}, {cert, cert}, {281, 281}, {53, 53}};
  return p;
}

TEST(ProfileBundle, RoundTripsSeveralDomains) {
  const std::vector<TlsProfile> ps = {measured_for("a.example", 900),
                                      measured_for("b.example", 4000)};
  auto back = parse_profile_bundle(format_profile_bundle(ps));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(*back, ps);
  auto empty = parse_profile_bundle("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(ProfileBundle, RejectsWhatCannotBeKeyedOrParsed) {
  const std::string a = format_profile(measured_for("a.example", 900));
  auto twice = parse_profile_bundle(a + format_profile(measured_for("A.EXAMPLE", 800)));
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().context.find("profile 2: domain a.example given twice"),
            std::string::npos)
      << twice.error().context;
  auto nameless = parse_profile_bundle(a + format_profile(builtin_profile()));
  ASSERT_FALSE(nameless);
  EXPECT_NE(nameless.error().context.find("profile 2: no domain"), std::string::npos);
  EXPECT_FALSE(parse_profile_bundle("junk\n" + a));
  std::string broken = a;
  broken.replace(broken.find("cipher 1301"), 11, "cipher zz");
  auto bad = parse_profile_bundle(format_profile(measured_for("b.example", 1)) + broken);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().context.find("profile 2: tls profile line"), std::string::npos)
      << bad.error().context;
}

TEST(ProfileText, RejectsBrokenTexts) {
  const std::string good = format_profile(builtin_profile());
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string t = good;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  for (const std::string& t :
       {std::string(),
        replace("mtw-tls-profile 1", "mtw-tls-profile 2"),
        replace("cipher 1301\n", ""),
        replace("cipher 1301", "cipher 13010"),
        replace("cipher 1301", "cipher 1301\ncipher 1302"),
        replace("ccs 1", "ccs x"),
        replace("ext 0033 001d0020\n", ""),
        replace("ext 0033 001d0020", "ext 0033 001d"),
        replace("ext 002b 0304", "ext 0033 001d0020"),
        replace("flight 36", "flight 36-30"),
        replace("flight 36 2400-4000 281 53", "flight"),
        replace("latency_ms 0 0 0", "latency_ms 3 2 1"),
        replace("source builtin", "source guessed"),
        replace("domain -", "domain a/b"),
        replace("response -", "response - 1"),
        replace("samples 0", "samples 0\nbogus 1"),
        replace("idle_close fin 60000 0 -\n", ""),
        replace("idle_close fin", "idle_close shut"),
        replace("bad_close fin 0 7 1503030002020a", "bad_close fin 0 8 1503030002020a"),
        replace("bad_close fin 0 7 1503030002020a", "bad_close fin 0 7"),
        replace("idle_close fin 60000 0 -", "idle_close unknown 5 0 -")}) {
    auto r = parse_profile(t);
    EXPECT_FALSE(r.has_value()) << t;
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::kBadInput);
    }
  }
}

// --- the answer --------------------------------------------------------

Secret tls_secret() {
  SeededRandom rnd(41);
  Secret s;
  rnd.fill(s.key);
  s.kind = SecretKind::kFakeTls;
  s.domain = "mask.test";
  return s;
}

TlsProfile nginx_profile() {
  const Capture c = nginx_capture();
  auto f = parse_server_flight(c.server);
  EXPECT_TRUE(f.has_value());
  std::vector<FlightSample> s = {{*f, c.client_session_id, 3}};
  auto p = profile_from_flights(s, "mask.test", 1'800'000'000);
  EXPECT_TRUE(p.has_value());
  return *p;
}

double entropy_bits_per_byte(ByteSpan b) {
  std::array<double, 256> n{};
  for (std::byte x : b) n[static_cast<unsigned char>(x)] += 1;
  double h = 0;
  for (double c : n) {
    if (c > 0) h -= c / b.size() * std::log2(c / b.size());
  }
  return h;
}

TEST(ProfiledServerHello, CarriesTheMasksFieldsAndVerifies) {
  const Secret s = tls_secret();
  const TlsProfile p = nginx_profile();
  SeededRandom crnd(5);
  auto hello = parse_client_hello(build_client_hello(s, 1'800'000'000, crnd));
  ASSERT_TRUE(hello.has_value());
  SeededRandom rnd(6);
  const Bytes answer = build_server_hello(*hello, s.key, p, rnd);

  auto used = verify_server_hello(answer, hello->random, s.key);
  ASSERT_TRUE(used.has_value()) << used.error().to_string();
  EXPECT_EQ(*used, answer.size());
  EXPECT_EQ(to_hex(ByteSpan(answer).first(3)), "160303");

  auto f = parse_server_flight(answer);
  ASSERT_TRUE(f.has_value()) << f.error().to_string();
  const ServerFlight mask = *parse_server_flight(nginx_capture().server);
  EXPECT_EQ(f->legacy_version, mask.legacy_version);
  EXPECT_EQ(f->cipher_suite, mask.cipher_suite);
  EXPECT_EQ(types_of(f->extensions), types_of(mask.extensions));
  EXPECT_EQ(f->extensions[0], mask.extensions[0]);
  EXPECT_EQ(f->key_share_group, mask.key_share_group);
  EXPECT_EQ(f->key_share_len, mask.key_share_len);
  EXPECT_EQ(f->session_id, Bytes(hello->session_id.begin(), hello->session_id.end()));
  EXPECT_EQ(f->ccs_count, 1u);
  // The mask's four records are one here, as large on the wire as all four.
  ASSERT_EQ(f->encrypted_records.size(), 1u);
  std::size_t mask_wire = 0;
  for (std::size_t n : mask.encrypted_records) mask_wire += 5 + n;
  EXPECT_EQ(5 + f->encrypted_records[0], mask_wire);
  EXPECT_EQ(answer.size(), 5 + 122 + 6 + mask_wire);
}

TEST(ProfiledServerHello, FailsVerificationUnderAnotherKey) {
  const Secret s = tls_secret();
  SeededRandom crnd(5);
  auto hello = parse_client_hello(build_client_hello(s, 1'800'000'000, crnd));
  ASSERT_TRUE(hello.has_value());
  SeededRandom rnd(6);
  Bytes answer = build_server_hello(*hello, s.key, builtin_profile(), rnd);
  SecretKey other = s.key;
  other[0] ^= std::byte{1};
  EXPECT_FALSE(verify_server_hello(answer, hello->random, other).has_value());
  answer.back() ^= std::byte{1};  // the HMAC covers the AppData too
  EXPECT_FALSE(verify_server_hello(answer, hello->random, s.key).has_value());
}

TEST(ProfiledServerHello, SizesStayInTheSpreadAndBodiesNeverRepeat) {
  const Secret s = tls_secret();
  SeededRandom crnd(8);
  auto hello = parse_client_hello(build_client_hello(s, 1'800'000'000, crnd));
  ASSERT_TRUE(hello.has_value());
  const TlsProfile& p = builtin_profile();
  const RecordRange wire = flight_wire_range(p);
  SeededRandom rnd(9);
  std::set<Bytes> bodies;
  std::set<std::size_t> sizes;
  std::set<Bytes> keys;
  Bytes all;
  for (int i = 0; i < 100; ++i) {
    const Bytes a = build_server_hello(*hello, s.key, p, rnd);
    auto f = parse_server_flight(a);
    ASSERT_TRUE(f.has_value());
    ASSERT_EQ(f->encrypted_records.size(), 1u);
    const std::size_t n = f->encrypted_records[0];
    EXPECT_GE(5 + n, wire.min);
    EXPECT_LE(5 + n, wire.max);
    sizes.insert(n);
    const Bytes body(a.end() - n, a.end());
    EXPECT_GT(entropy_bits_per_byte(body), 7.5);
    bodies.insert(body);
    all.insert(all.end(), body.begin(), body.end());
    keys.insert(f->extensions[1].body);
  }
  EXPECT_EQ(bodies.size(), 100u);
  EXPECT_EQ(keys.size(), 100u);
  EXPECT_GT(sizes.size(), 50u);
  EXPECT_GT(entropy_bits_per_byte(all), 7.99);
}

TEST(ProfiledServerHello, OmitsTheSessionIdWhenTheMaskDoesNotEchoIt) {
  const Secret s = tls_secret();
  SeededRandom crnd(8);
  auto hello = parse_client_hello(build_client_hello(s, 1'800'000'000, crnd));
  ASSERT_TRUE(hello.has_value());
  TlsProfile p = builtin_profile();
  p.session_id_echo = false;
  p.cipher_suite = 0x1303;
  SeededRandom rnd(9);
  const Bytes a = build_server_hello(*hello, s.key, p, rnd);
  auto f = parse_server_flight(a);
  ASSERT_TRUE(f.has_value());
  EXPECT_TRUE(f->session_id.empty());
  EXPECT_EQ(f->cipher_suite, 0x1303);
  EXPECT_TRUE(verify_server_hello(a, hello->random, s.key).has_value());
}

TEST(ProfileFromFlights, KeepsEveryAnswerLatencySorted) {
  std::vector<FlightSample> s = {{flight({36}), Bytes(32, std::byte{7}), 5, 1500},
                                 {flight({36}), Bytes(32, std::byte{7}), 1, 700},
                                 {flight({36}), Bytes(32, std::byte{7}), 9, 0},  // not measured
                                 {flight({36}), Bytes(32, std::byte{7}), 2, 900}};
  auto p = profile_from_flights(s, "mask.test", 1);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->answer_us, (std::vector<std::uint32_t>{700, 900, 1500}));
}

TEST(ProfileText, AnswerLatencyIsOptionalSortedAndBounded) {
  TlsProfile p = builtin_profile();
  EXPECT_EQ(format_profile(p).find("answer_us"), std::string::npos);  // old files parse
  const std::string base = format_profile(p);
  auto with = [&](const std::string& line) { return parse_profile(base + line + "\n"); };
  auto ok = with("answer_us 5 5 900");
  ASSERT_TRUE(ok.has_value()) << ok.error().to_string();
  EXPECT_EQ(ok->answer_us, (std::vector<std::uint32_t>{5, 5, 900}));
  EXPECT_FALSE(with("answer_us 900 5").has_value());  // not sorted
  EXPECT_FALSE(with("answer_us 0").has_value());
  EXPECT_FALSE(with("answer_us").has_value());
  EXPECT_FALSE(with("answer_us 60000001").has_value());
  std::string many = "answer_us";
  for (int i = 0; i < 65; ++i) many += " 10";
  EXPECT_FALSE(with(many).has_value());
  EXPECT_FALSE(parse_profile(base + "answer_us 1\nanswer_us 2\n").has_value());  // duplicate
}

TEST(AnswerDelay, ZeroWithoutAMeasurement) {
  SeededRandom rnd(1);
  EXPECT_EQ(draw_answer_delay_us(builtin_profile(), rnd), 0u);
}

TEST(AnswerDelay, FollowsTheMeasuredDistribution) {
  TlsProfile p = builtin_profile();
  p.answer_us = {1000, 1000, 2000, 4000};  // CDF: 1 ms up to 1/3, then linear to 4 ms
  SeededRandom rnd(7);
  std::vector<std::uint32_t> d;
  for (int i = 0; i < 30'000; ++i) d.push_back(draw_answer_delay_us(p, rnd));
  std::sort(d.begin(), d.end());
  EXPECT_EQ(d.front(), 1000u);
  EXPECT_LE(d.back(), 4000u);
  EXPECT_GE(d.back(), 3990u);
  // Quantiles of the piecewise-linear inverse CDF: q -> u = 3q.
  auto q = [&](double x) { return static_cast<double>(d[static_cast<std::size_t>(x * d.size())]); };
  EXPECT_NEAR(q(0.25), 1000, 1);
  EXPECT_NEAR(q(0.5), 1500, 40);  // u = 1.5: halfway from 1000 to 2000
  EXPECT_NEAR(q(0.9), 3400, 40);  // u = 2.7: 70% from 2000 to 4000
  p.answer_us = {1234};
  EXPECT_EQ(draw_answer_delay_us(p, rnd), 1234u);
}

TEST(RelayRecords, FullTls13RecordsUnlessTheMaskSentLargerOnes) {
  TlsProfile p = builtin_profile();
  EXPECT_EQ(relay_record_payload(p), 16401u);  // nothing seen: 2^14 + type + tag
  p.response_records = {249, 249, 300, 24};    // a small page says nothing about the cap
  EXPECT_EQ(relay_record_payload(p), 16401u);
  p.response_records = {249, 16408, 16408, 700};  // ChaCha/GCM with padding: the mask's own
  EXPECT_EQ(relay_record_payload(p), 16408u);
  p.response_records = {16640};
  EXPECT_EQ(relay_record_payload(p), kMaxProfileRecord);
}

}  // namespace
}  // namespace mtw::proto
