// The mask prober against a real nginx (Debian nginx-light, TLS 1.3 only,
// self-signed RSA-2048 certificate for mask.test) started inside the test's
// network namespace on 127.0.0.1, compared with what `openssl s_client -msg`
// shows of the same server (an independent reading of the wire):
//   C3 the profile's ServerHello fields equal the server's,
//   C4 the answers built from the profile are as large as nginx's first
//      flight (within its spread, +-3 bytes),
//   C5 100 answers: all AppData bodies distinct and high-entropy.
// Skips only when not root (no sandbox, like every privileged test); a
// missing or failing nginx is a failure: scripts/deps.sh --test installs it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "base/unique_fd.h"
#include "proto/tls_profile.h"
#include "supervisor/mask_probe.h"
#include "tests/unit/netns/sandbox.h"

extern char** environ;

namespace mtw::supervisor {
namespace {

namespace fs = std::filesystem;
using proto::Bytes;
using proto::ByteSpan;

constexpr std::uint16_t kPort = 8443;
constexpr const char* kNginx = "/usr/sbin/nginx";
constexpr const char* kSuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf;
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    out.append(buf.data(), n);
  ::pclose(p);
  return out;
}

// nginx per test-components.md §1, started once for the whole binary.
class Nginx {
 public:
  static Nginx& get() {
    static Nginx n;
    return n;
  }
  const std::string& failure() const { return failure_; }

 private:
  Nginx() {
    if (!fs::exists(kNginx)) {
      failure_ = "nginx not installed (apt-get install nginx-light; scripts/deps.sh --test)";
      return;
    }
    char tmpl[] = "/tmp/mtw-mask-nginx.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      failure_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    fs::create_directories(dir_ / "www");
    fs::create_directories(dir_ / "logs");
    fs::create_directories(dir_ / "tmp");
    std::ofstream(dir_ / "www/index.html") << "<h1>mask.test ok</h1>\n" << std::string(20000, 'x');
    const std::string d = dir_.string();
    run("openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj /CN=mask.test -addext "
        "subjectAltName=DNS:mask.test -keyout " +
        d + "/rsa.key -out " + d + "/rsa.crt 2>&1");
    std::ofstream(dir_ / "nginx.conf")
        << "user root; worker_processes 1; daemon off;\n"
        << "pid " << d << "/nginx.pid; error_log " << d << "/logs/error.log info;\n"
        << "events { worker_connections 64; }\n"
        << "http {\n  access_log " << d << "/logs/access.log;\n"
        << "  client_body_temp_path " << d << "/tmp/body; proxy_temp_path " << d << "/tmp/proxy;\n"
        << "  fastcgi_temp_path " << d << "/tmp/fastcgi; uwsgi_temp_path " << d << "/tmp/uwsgi;\n"
        << "  scgi_temp_path " << d << "/tmp/scgi;\n"
        << "  types { text/html html; }\n"
        << "  server {\n    listen 127.0.0.1:" << kPort << " ssl; server_name mask.test; root " << d
        << "/www;\n    ssl_protocols TLSv1.3;\n"
        << "    client_header_timeout 2s;\n"
        << "    ssl_certificate " << d << "/rsa.crt; ssl_certificate_key " << d << "/rsa.key;\n"
        << "  }\n}\n";
    const std::string conf = d + "/nginx.conf";
    const char* argv[] = {kNginx, "-c", conf.c_str(), "-p", d.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    const std::string log = d + "/logs/stdout.log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = ::posix_spawn(&pid_, kNginx, &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      failure_ = "posix_spawn nginx failed";
      pid_ = -1;
      return;
    }
    for (int i = 0; i < 100 && !fs::exists(dir_ / "nginx.pid"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!fs::exists(dir_ / "nginx.pid")) failure_ = "nginx did not start: " + run("cat " + log);
  }
  ~Nginx() {
    if (pid_ > 0) {
      ::kill(pid_, SIGQUIT);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  fs::path dir_;
  pid_t pid_ = -1;
  std::string failure_;
};

#define REQUIRE_NGINX()                                                    \
  do {                                                                     \
    MTW_REQUIRE_SANDBOX();                                                 \
    if (!Nginx::get().failure().empty()) FAIL() << Nginx::get().failure(); \
  } while (0)

MaskProbeOptions options(int handshakes = 10) {
  MaskProbeOptions o;
  o.host = "127.0.0.1";
  o.port = kPort;
  o.sni = "mask.test";
  o.handshakes = handshakes;
  o.step_timeout_ms = 5000;
  return o;
}

// What `openssl s_client -msg` printed: the ServerHello message and the
// headers of the records that carried the server's first flight.
struct SClientView {
  Bytes server_hello;                       // handshake message: 02 u24 body
  std::vector<std::size_t> flight_records;  // 17 03 03 payload lengths up to the server Finished
};

Bytes hex_bytes(const std::string& line) {
  Bytes out;
  std::istringstream in(line);
  for (std::string h; in >> h;) out.push_back(static_cast<std::byte>(std::stoul(h, nullptr, 16)));
  return out;
}

SClientView s_client() {
  const std::string out =
      run("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(kPort) +
          " -servername mask.test -tls1_3 -ciphersuites " + kSuites +
          " -groups X25519:P-256 -alpn h2,http/1.1 -msg 2>&1");
  SClientView v;
  std::istringstream in(out);
  std::string line;
  enum { kNone, kHello, kHeader } collecting = kNone;
  bool after_hello = false;
  while (std::getline(in, line)) {
    if (line.rfind("    ", 0) == 0) {
      if (collecting == kHello) {
        const Bytes b = hex_bytes(line);
        v.server_hello.insert(v.server_hello.end(), b.begin(), b.end());
      } else if (collecting == kHeader) {
        const Bytes h = hex_bytes(line);
        if (h.size() == 5 && h[0] == std::byte{0x17} && after_hello) {
          v.flight_records.push_back(proto::load_be16(h.data() + 3));
        }
      }
      continue;
    }
    collecting = kNone;
    if (line.rfind("<<<", 0) != 0) continue;
    if (line.find("ServerHello") != std::string::npos) {
      collecting = kHello;
      after_hello = true;
    } else if (line.find("RecordHeader") != std::string::npos) {
      collecting = kHeader;
    } else if (line.find("], Finished") != std::string::npos) {
      break;  // the server's Finished ends its first flight
    }
  }
  return v;
}

// The ServerHello walked by hand (not with proto::parse_server_flight).
struct HelloFields {
  std::uint16_t version = 0;
  std::size_t sid_len = 0;
  std::uint16_t cipher = 0;
  std::vector<std::uint16_t> ext_types;
  Bytes supported_versions;
  std::uint16_t group = 0;
  std::size_t key_len = 0;
};

HelloFields walk(ByteSpan m) {
  HelloFields f;
  EXPECT_GE(m.size(), 45u);
  if (m.size() < 45) return f;
  f.version = proto::load_be16(m.data() + 4);
  f.sid_len = static_cast<std::size_t>(m[38]);
  std::size_t p = 39 + f.sid_len;
  f.cipher = proto::load_be16(m.data() + p);
  p += 3 + 2;
  while (p + 4 <= m.size()) {
    const std::uint16_t t = proto::load_be16(m.data() + p);
    const std::size_t n = proto::load_be16(m.data() + p + 2);
    f.ext_types.push_back(t);
    if (t == 0x002b) f.supported_versions.assign(m.begin() + p + 4, m.begin() + p + 4 + n);
    if (t == 0x0033) {
      f.group = proto::load_be16(m.data() + p + 4);
      f.key_len = proto::load_be16(m.data() + p + 6);
    }
    p += 4 + n;
  }
  return f;
}

proto::Secret secret() {
  proto::SeededRandom rnd(77);
  proto::Secret s;
  rnd.fill(s.key);
  s.kind = proto::SecretKind::kFakeTls;
  s.domain = "mask.test";
  return s;
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

TEST(MaskProbe, ServerHelloFieldsEqualWhatSClientSees) {  // C3
  REQUIRE_NGINX();
  auto p = probe_mask(options(), 1'800'000'000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  const SClientView v = s_client();
  ASSERT_FALSE(v.server_hello.empty()) << "s_client printed no ServerHello";
  const HelloFields want = walk(v.server_hello);

  EXPECT_EQ(p->source, proto::ProfileSource::kMeasured);
  EXPECT_EQ(p->samples, 10u);
  EXPECT_EQ(p->measured_at, 1'800'000'000);
  EXPECT_EQ(p->legacy_version, want.version);
  EXPECT_EQ(p->cipher_suite, want.cipher);
  EXPECT_EQ(p->cipher_suite, 0x1301);  // the first suite of a browser's offer
  EXPECT_EQ(p->session_id_echo, want.sid_len == 32);
  std::vector<std::uint16_t> types;
  for (const auto& e : p->extensions) types.push_back(e.type);
  EXPECT_EQ(types, want.ext_types);
  EXPECT_EQ(p->extensions[0].body, want.supported_versions);
  EXPECT_EQ(p->key_share_group, want.group);
  EXPECT_EQ(p->key_share_len, want.key_len);
  EXPECT_EQ(p->ccs_count, 1u);
  ASSERT_EQ(p->encrypted_records.size(), v.flight_records.size());
  for (std::size_t i = 0; i < v.flight_records.size(); ++i) {
    EXPECT_LE(p->encrypted_records[i].min, v.flight_records[i]) << i;
    EXPECT_GE(p->encrypted_records[i].max, v.flight_records[i]) << i;
  }
  EXPECT_LE(p->handshake_latency.min_ms, p->handshake_latency.max_ms);
  // NewSessionTickets and the response to the GET came as records too.
  EXPECT_GE(p->response_records.size(), 2u);

  // And the answer built from it carries the same fields.
  const proto::Secret s = secret();
  proto::SeededRandom rnd(3);
  auto hello = proto::parse_client_hello(proto::build_client_hello(s, 1'800'000'000, rnd));
  ASSERT_TRUE(hello.has_value());
  const Bytes answer = proto::build_server_hello(*hello, s.key, *p, rnd);
  const HelloFields got = walk(ByteSpan(answer).subspan(5, proto::load_be16(answer.data() + 3)));
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.cipher, want.cipher);
  EXPECT_EQ(got.sid_len, want.sid_len);
  EXPECT_EQ(got.ext_types, want.ext_types);
  EXPECT_EQ(got.supported_versions, want.supported_versions);
  EXPECT_EQ(got.group, want.group);
  EXPECT_EQ(got.key_len, want.key_len);
  EXPECT_EQ(proto::load_be16(answer.data() + 3), v.server_hello.size());  // same ServerHello size
  EXPECT_TRUE(proto::verify_server_hello(answer, hello->random, s.key).has_value());
}

TEST(MaskProbe, BuiltAnswersAreAsLargeAsNginxsFirstFlight) {  // C4
  REQUIRE_NGINX();
  std::size_t lo = SIZE_MAX, hi = 0;
  for (int i = 0; i < 5; ++i) {
    const SClientView v = s_client();
    ASSERT_FALSE(v.flight_records.empty());
    std::size_t wire = 0;
    for (std::size_t n : v.flight_records) wire += 5 + n;
    lo = std::min(lo, wire);
    hi = std::max(hi, wire);
  }
  auto p = probe_mask(options(), 1'800'000'000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  const proto::Secret s = secret();
  proto::SeededRandom rnd(4);
  auto hello = proto::parse_client_hello(proto::build_client_hello(s, 1'800'000'000, rnd));
  ASSERT_TRUE(hello.has_value());
  for (int i = 0; i < 50; ++i) {
    const Bytes a = proto::build_server_hello(*hello, s.key, *p, rnd);
    const std::size_t hello_end = 5 + proto::load_be16(a.data() + 3);
    const std::size_t app_wire = a.size() - hello_end - 6;  // after the CCS
    EXPECT_GE(app_wire + 3, lo) << "nginx spread " << lo << ".." << hi;
    EXPECT_LE(app_wire, hi + 3) << "nginx spread " << lo << ".." << hi;
  }
}

TEST(MaskProbe, HundredAnswersHaveDistinctHighEntropyBodies) {  // C5
  REQUIRE_NGINX();
  auto p = probe_mask(options(3), 1'800'000'000);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  const proto::Secret s = secret();
  std::set<Bytes> bodies;
  Bytes all;
  for (int i = 0; i < 100; ++i) {
    // A fresh client hello each time, as on the wire; the system CSPRNG.
    auto hello = proto::parse_client_hello(
        proto::build_client_hello(s, 1'800'000'000, proto::system_random()));
    ASSERT_TRUE(hello.has_value());
    const Bytes a = proto::build_server_hello(*hello, s.key, *p, proto::system_random());
    const std::size_t hello_end = 5 + proto::load_be16(a.data() + 3);
    const ByteSpan body = ByteSpan(a).subspan(hello_end + 6 + 5);
    EXPECT_GT(entropy_bits_per_byte(body), 7.5);
    bodies.insert(Bytes(body.begin(), body.end()));
    all.insert(all.end(), body.begin(), body.end());
  }
  EXPECT_EQ(bodies.size(), 100u);
  EXPECT_GT(entropy_bits_per_byte(all), 7.9);
}

// What nginx does with a silent connection and with a malformed hello, read
// by the prober and (for the reply) over a plain socket here.
TEST(MaskProbe, SeesHowTheMaskClosesIdleAndBadConnections) {
  REQUIRE_NGINX();
  MaskProbeOptions o = options(1);
  o.fetch_response = false;
  o.idle_wait_ms = 5000;
  o.bad_wait_ms = 3000;
  auto p = probe_mask(o, 1);
  ASSERT_TRUE(p.has_value()) << p.error().to_string();
  EXPECT_EQ(p->idle_close.kind, proto::CloseKind::kFin);  // client_header_timeout 2s
  EXPECT_GE(p->idle_close.after_ms, 1800u);
  EXPECT_LE(p->idle_close.after_ms, 4000u);
  EXPECT_EQ(p->idle_close.reply_len, 0u);

  base::UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(s);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::send(s.get(), kBadClientHello, sizeof kBadClientHello, 0),
            static_cast<ssize_t>(sizeof kBadClientHello));
  Bytes reply;
  char buf[512];
  for (ssize_t n; (n = ::recv(s.get(), buf, sizeof buf, 0)) > 0;) {
    reply.insert(reply.end(), reinterpret_cast<std::byte*>(buf),
                 reinterpret_cast<std::byte*>(buf) + n);
  }
  EXPECT_EQ(p->bad_close.kind, proto::CloseKind::kFin);
  EXPECT_LT(p->bad_close.after_ms, 1000u);
  EXPECT_EQ(p->bad_close.reply_len, reply.size());
  EXPECT_EQ(p->bad_close.reply_head, reply);  // an alert: 7 bytes
  EXPECT_EQ(proto::to_hex(reply).substr(0, 10), "1503030002");
}

TEST(MaskProbe, ClosedPortFailsAtConnect) {
  MTW_REQUIRE_SANDBOX();
  MaskProbeOptions o = options(1);
  o.port = 9;  // nothing listens in this namespace
  auto p = probe_mask(o, 1);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, base::Errc::kSyscall);
  EXPECT_NE(p.error().context.find("mask probe connect 127.0.0.1:9"), std::string::npos)
      << p.error().context;
}

TEST(MaskProbe, SilentServerTimesOutInTheHandshake) {
  MTW_REQUIRE_SANDBOX();
  base::UniqueFd l(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(l);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(9444);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(l.get(), 4), 0);  // accepted by the kernel, never answered
  MaskProbeOptions o = options(1);
  o.port = 9444;
  o.step_timeout_ms = 300;
  const auto t0 = std::chrono::steady_clock::now();
  auto p = probe_mask(o, 1);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code, base::Errc::kTimeout);
  EXPECT_NE(p.error().context.find("mask probe handshake"), std::string::npos) << p.error().context;
  EXPECT_LT(took, std::chrono::seconds(2));
}

}  // namespace
}  // namespace mtw::supervisor
