// Webhooks against local receivers on the same io_context (single thread):
// each test runs the loop until a condition holds or a deadline passes. The
// https tests make a self-signed certificate at run time (OpenSSL's C API)
// and serve it from an asio::ssl receiver on 127.0.0.1. getaddrinfo is
// interposed (below) so that a slow DNS server can be played with no query
// leaving the machine.
#include "api/webhooks.h"

#include <dlfcn.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "base/log.h"

// Fake DNS for this binary: names under .invalid (RFC 6761) are answered here
// and never forwarded. "hang.invalid" blocks like an unresponsive server
// until released (or 10 s); other .invalid names fail at once; everything
// else goes to the real getaddrinfo. Asio calls ::getaddrinfo from its
// resolver thread, which the executable's definition takes over.
namespace fake_dns {
std::atomic<int> hang_calls{0};
std::atomic<bool> released{false};
}  // namespace fake_dns

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) noexcept {
  const std::string_view name = node ? node : "";
  if (name == "hang.invalid") {
    ++fake_dns::hang_calls;
    for (int i = 0; i < 1000 && !fake_dns::released; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    *res = nullptr;
    return EAI_AGAIN;
  }
  if (name.ends_with(".invalid")) {
    *res = nullptr;
    return EAI_NONAME;
  }
  using Fn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);
  static const auto real = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  return real(node, service, hints, res);
}

namespace mtw::api {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

// Accepts connections; answers each POST with 200 (or never, when `hang`).
struct Receiver {
  Receiver(asio::io_context& io, std::uint16_t port, bool hang)
      : acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)), hang(hang) {
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::uint16_t port() const { return acc.local_endpoint().port(); }

  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, s] = co_await acc.async_accept(nothrow);
      if (ec) co_return;
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(s, buf, req, nothrow);
      if (rec) continue;
      bodies.push_back(req.body());
      targets.push_back(std::string(req.target()));
      if (hang) {
        held.push_back(std::move(s));
        continue;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.prepare_payload();
      co_await http::async_write(s, res, nothrow);
    }
  }

  tcp::acceptor acc;
  bool hang;
  std::vector<std::string> bodies, targets;
  std::vector<tcp::socket> held;
};

bool run_until(asio::io_context& io, std::function<bool()> done, std::chrono::milliseconds max) {
  const auto end = Clock::now() + max;
  while (!done() && Clock::now() < end) {
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return done();
}

LiveEvent event(std::uint64_t seq) { return {seq, 1'790'000'000, "alice", "quota_warned", "80%"}; }

std::uint16_t free_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

TEST(Webhooks, PostsEachEventAsJson) {
  asio::io_context io;
  Receiver rx(io, 0, false);
  auto wh = Webhooks::create(
      io, {{"http://127.0.0.1:" + std::to_string(rx.port()) + "/hook?x=1"}, 1000, 0, 10, ""});
  wh->post(event(7));
  wh->post(event(8));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->delivered() == 2; }, std::chrono::seconds(5)));
  ASSERT_EQ(rx.bodies.size(), 2u);
  EXPECT_EQ(rx.targets[0], "/hook?x=1");
  auto v = boost::json::parse(rx.bodies[0]);
  EXPECT_EQ(v.at("seq").as_int64(), 7);
  EXPECT_EQ(v.at("user"), "alice");
  EXPECT_EQ(v.at("kind"), "quota_warned");
  EXPECT_EQ(v.at("detail"), "80%");
  EXPECT_EQ(v.at("at").as_int64(), 1'790'000'000);
  EXPECT_EQ(wh->failed(), 0u);
}

TEST(Webhooks, RetriesUntilTheReceiverIsUp) {
  asio::io_context io;
  const std::uint16_t port = free_port(io);
  auto wh =
      Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(port) + "/"}, 500, 3, 10, ""});
  wh->post(event(1));
  run_until(
      io, [] { return false; }, std::chrono::milliseconds(200));  // first attempt refused
  EXPECT_EQ(wh->delivered(), 0u);
  Receiver rx(io, port, false);
  ASSERT_TRUE(run_until(
      io, [&] { return wh->delivered() == 1; }, std::chrono::seconds(5)));
  ASSERT_EQ(rx.bodies.size(), 1u);
  EXPECT_EQ(boost::json::parse(rx.bodies[0]).at("seq").as_int64(), 1);
  EXPECT_EQ(wh->failed(), 0u);
  EXPECT_GE(wh->failed_attempts(), 1u);  // the refused one(s) before the receiver came up
}

TEST(Webhooks, HungReceiverTimesOutWithoutBlockingTheLoop) {
  asio::io_context io;
  Receiver rx(io, 0, true);
  auto wh =
      Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(rx.port())}, 1000, 0, 10, ""});
  int ticks = 0;
  asio::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        ++ticks;
        arm();
      }
    });
  };
  arm();
  const auto start = Clock::now();
  wh->post(event(1));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->failed() == 1; }, std::chrono::seconds(5)));
  const auto took = Clock::now() - start;
  EXPECT_EQ(wh->failed_attempts(), 1u);  // webhook_retries 0: one attempt
  EXPECT_GE(took, std::chrono::milliseconds(950));
  EXPECT_LT(took, std::chrono::seconds(4));
  // The loop kept running other work meanwhile (a 20 ms tick: ~50 expected;
  // the margin absorbs a loaded machine).
  EXPECT_GE(ticks, 10);
  EXPECT_EQ(rx.bodies.size(), 1u);
  EXPECT_EQ(wh->delivered(), 0u);
  tick.cancel();
}

TEST(Webhooks, BoundedQueueDropsTheOldest) {
  asio::io_context io;
  const std::uint16_t port = free_port(io);
  auto wh = Webhooks::create(io, {{"http://127.0.0.1:" + std::to_string(port)}, 200, 0, 2, ""});
  for (std::uint64_t i = 1; i <= 5; ++i) wh->post(event(i));  // loop not run: nothing sent yet
  EXPECT_EQ(wh->dropped(), 3u);
  wh->stop();
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(wh->delivered(), 0u);
}

// An unresponsive DNS server ends the attempt at its deadline like a hung
// receiver does, and the retry (queued behind the first lookup in Asio's
// resolver thread) times out too: the event is given up on time.
TEST(Webhooks, HungNameResolutionTimesOut) {
  asio::io_context io;
  fake_dns::released = false;
  fake_dns::hang_calls = 0;
  auto wh = Webhooks::create(io, {{"http://hang.invalid:8080/h"}, 300, 1, 10, ""});
  const auto start = Clock::now();
  wh->post(event(1));
  const bool failed = run_until(
      io, [&] { return wh->failed() == 1; }, std::chrono::seconds(5));
  const auto took = Clock::now() - start;
  fake_dns::released = true;  // lets Asio's resolver thread finish before io is destroyed
  ASSERT_TRUE(failed);
  EXPECT_GE(fake_dns::hang_calls, 1);
  // Two 300 ms attempts and the 500 ms backoff between them.
  EXPECT_GE(took, std::chrono::milliseconds(1'050));
  EXPECT_LT(took, std::chrono::seconds(3));
  EXPECT_EQ(wh->delivered(), 0u);
}

TEST(Webhooks, UnknownNameFailsWithoutWaitingForTheDeadline) {
  asio::io_context io;
  auto wh = Webhooks::create(io, {{"https://no-such-host.invalid/h"}, 5'000, 0, 10, ""});
  const auto start = Clock::now();
  wh->post(event(1));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->failed() == 1; }, std::chrono::seconds(4)));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(wh->delivered(), 0u);
}

// stop() ends an attempt waiting on a hung lookup at once: the attempt's
// wait completes (handlers run) while the fake still holds getaddrinfo; once
// the lookup returns, the loop runs out of work.
TEST(Webhooks, StopEndsAHungNameResolution) {
  asio::io_context io;
  fake_dns::released = false;
  auto wh = Webhooks::create(io, {{"http://hang.invalid/h"}, 60'000, 0, 10, ""});
  wh->post(event(1));
  wh->post(event(2));
  run_until(
      io, [] { return false; }, std::chrono::milliseconds(100));
  wh->stop();
  io.restart();
  const std::size_t ran = io.run_for(std::chrono::milliseconds(200));
  fake_dns::released = true;
  EXPECT_GE(ran, 1u);  // without the cancel nothing is ready: 60 s deadline, lookup held
  const auto start = Clock::now();
  io.run_for(std::chrono::seconds(5));
  EXPECT_TRUE(io.stopped());  // out of work
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(wh->delivered() + wh->failed(), 0u);
}

// ---- https ----

namespace ssl = asio::ssl;

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Free<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION, X509_EXTENSION_free>>;

struct TestCert {
  std::string cert_pem, key_pem;
};

std::string bio_text(BIO* b) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// A self-signed P-256 certificate for `san` (e.g. "DNS:localhost,IP:127.0.0.1").
TestCert make_cert(const std::string& cn, const std::string& san) {
  auto need = [](bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("test certificate: ") + what);
  };
  KeyPtr key(EVP_EC_gen("P-256"));
  need(key != nullptr, "EVP_EC_gen");
  CertPtr x(X509_new());
  need(x && X509_set_version(x.get(), 2) == 1, "X509_set_version");
  need(ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1) == 1, "serial");
  need(X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr, "notBefore");
  need(X509_gmtime_adj(X509_getm_notAfter(x.get()), 86'400) != nullptr, "notAfter");
  need(X509_set_pubkey(x.get(), key.get()) == 1, "pubkey");
  X509_NAME* name = X509_get_subject_name(x.get());
  need(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                  0) == 1,
       "CN");
  need(X509_set_issuer_name(x.get(), name) == 1, "issuer");
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str()));
  need(ext && X509_add_ext(x.get(), ext.get(), -1) == 1, "subjectAltName");
  need(X509_sign(x.get(), key.get(), EVP_sha256()) > 0, "X509_sign");
  BioPtr cb(BIO_new(BIO_s_mem())), kb(BIO_new(BIO_s_mem()));
  need(cb && PEM_write_bio_X509(cb.get(), x.get()) == 1, "PEM cert");
  need(kb && PEM_write_bio_PrivateKey(kb.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ==
                 1,
       "PEM key");
  return {bio_text(cb.get()), bio_text(kb.get())};
}

// A fresh directory under the test temp dir, removed with the object.
struct TempDir {
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/mtw-webhooks-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string path;
};

struct Seen {
  std::string target, body, content_type, host, sni;
};

// TLS receiver on 127.0.0.1: records each POST and answers 200. With
// `handshake` false it accepts TCP and never speaks (a hung receiver).
struct TlsReceiver {
  TlsReceiver(asio::io_context& io, const TestCert& c, bool handshake = true)
      : ctx(ssl::context::tls_server),
        acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        handshake(handshake) {
    ctx.use_certificate_chain(asio::buffer(c.cert_pem));
    ctx.use_private_key(asio::buffer(c.key_pem), ssl::context::pem);
    asio::co_spawn(io, serve(), asio::detached);
  }
  std::uint16_t port() const { return acc.local_endpoint().port(); }

  asio::awaitable<void> serve() {
    for (;;) {
      auto [ec, sock] = co_await acc.async_accept(nothrow);
      if (ec) co_return;
      ++accepted;
      if (!handshake) {
        held.push_back(std::move(sock));
        continue;
      }
      ssl::stream<tcp::socket> s(std::move(sock), ctx);
      auto [hec] = co_await s.async_handshake(ssl::stream_base::server, nothrow);
      if (hec) {
        ++handshake_failures;
        continue;
      }
      const char* sni = SSL_get_servername(s.native_handle(), TLSEXT_NAMETYPE_host_name);
      boost::beast::flat_buffer buf;
      http::request<http::string_body> req;
      auto [rec, n] = co_await http::async_read(s, buf, req, nothrow);
      if (rec) continue;
      seen.push_back({std::string(req.target()), req.body(),
                      std::string(req[http::field::content_type]),
                      std::string(req[http::field::host]), sni ? sni : ""});
      http::response<http::string_body> res{http::status::ok, 11};
      res.prepare_payload();
      co_await http::async_write(s, res, nothrow);
    }
  }

  ssl::context ctx;
  tcp::acceptor acc;
  bool handshake;
  int accepted = 0, handshake_failures = 0;
  std::vector<Seen> seen;
  std::vector<tcp::socket> held;
};

// Captures the "api" logger's lines for the test's lifetime.
struct LogCapture {
  LogCapture() { base::use_log_sink(std::make_shared<spdlog::sinks::ostream_sink_mt>(out)); }
  ~LogCapture() { base::use_log_sink(nullptr); }
  std::string text() const { return out.str(); }
  std::ostringstream out;
};

std::string https_url(const std::string& host, std::uint16_t port, const std::string& path) {
  return "https://" + host + ":" + std::to_string(port) + path;
}

TEST(WebhooksTls, DeliversWithTheConfiguredCa) {
  TempDir dir;
  const TestCert cert = make_cert("localhost", "DNS:localhost,IP:127.0.0.1");
  asio::io_context io;
  TlsReceiver rx(io, cert);
  WebhookOptions o{{https_url("localhost", rx.port(), "/by-name?k=v"),
                    https_url("127.0.0.1", rx.port(), "/by-ip")},
                   2000,
                   0,
                   10,
                   dir.write("ca.pem", cert.cert_pem)};
  auto wh = Webhooks::create(io, o);
  wh->post(event(42));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->delivered() == 2; }, std::chrono::seconds(8)))
      << "failed=" << wh->failed() << " handshake_failures=" << rx.handshake_failures;
  ASSERT_EQ(rx.seen.size(), 2u);
  EXPECT_EQ(wh->failed(), 0u);
  for (const Seen& s : rx.seen) {
    EXPECT_EQ(s.content_type, "application/json");
    auto v = boost::json::parse(s.body);
    EXPECT_EQ(v.at("seq").as_int64(), 42);
    EXPECT_EQ(v.at("user"), "alice");
    EXPECT_EQ(v.at("kind"), "quota_warned");
    EXPECT_EQ(v.at("detail"), "80%");
    if (s.target == "/by-name?k=v") {
      EXPECT_EQ(s.sni, "localhost");  // SNI for a name...
      EXPECT_EQ(s.host, "localhost:" + std::to_string(rx.port()));
    } else {
      EXPECT_EQ(s.target, "/by-ip");
      EXPECT_EQ(s.sni, "");  // ...never for an address literal
      EXPECT_EQ(s.host, "127.0.0.1:" + std::to_string(rx.port()));
    }
  }
}

TEST(WebhooksTls, UntrustedCertificateFailsAfterTheRetries) {
  const TestCert cert = make_cert("localhost", "DNS:localhost,IP:127.0.0.1");
  asio::io_context io;
  TlsReceiver rx(io, cert);
  LogCapture logs;
  // No ca_file: only the system store, which does not know this certificate.
  auto wh = Webhooks::create(io, {{https_url("127.0.0.1", rx.port(), "/")}, 2000, 1, 10, ""});
  wh->post(event(1));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->failed() == 1; }, std::chrono::seconds(8)));
  EXPECT_EQ(wh->delivered(), 0u);
  EXPECT_TRUE(rx.seen.empty());
  EXPECT_EQ(rx.accepted, 2);  // the first attempt and one retry, both refused at the handshake
  const std::string log = logs.text();
  EXPECT_NE(log.find("webhook tls handshake failed receiver=https://127.0.0.1:"), std::string::npos)
      << log;
  EXPECT_NE(log.find("self-signed certificate"), std::string::npos) << log;
  EXPECT_EQ(log.find("quota_warned"), std::string::npos) << log;  // never the body
}

TEST(WebhooksTls, HostNameMismatchFails) {
  TempDir dir;
  // Trusted (it is the CA file) but issued for another name and no addresses.
  const TestCert cert = make_cert("other.example", "DNS:other.example");
  asio::io_context io;
  TlsReceiver rx(io, cert);
  LogCapture logs;
  WebhookOptions o{{https_url("localhost", rx.port(), "/"), https_url("127.0.0.1", rx.port(), "/")},
                   2000,
                   0,
                   10,
                   dir.write("ca.pem", cert.cert_pem)};
  auto wh = Webhooks::create(io, o);
  wh->post(event(1));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->failed() == 2; }, std::chrono::seconds(8)));
  EXPECT_EQ(wh->delivered(), 0u);
  EXPECT_TRUE(rx.seen.empty());
  EXPECT_NE(logs.text().find("hostname mismatch"), std::string::npos) << logs.text();
}

TEST(WebhooksTls, SilentServerTimesOutWithoutBlockingTheLoop) {
  const TestCert cert = make_cert("localhost", "DNS:localhost,IP:127.0.0.1");
  asio::io_context io;
  TlsReceiver rx(io, cert, /*handshake=*/false);
  auto wh = Webhooks::create(io, {{https_url("127.0.0.1", rx.port(), "/")}, 1000, 0, 10, ""});
  int ticks = 0;
  asio::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(std::chrono::milliseconds(20));
    tick.async_wait([&](boost::system::error_code ec) {
      if (!ec) {
        ++ticks;
        arm();
      }
    });
  };
  arm();
  const auto start = Clock::now();
  wh->post(event(1));
  ASSERT_TRUE(run_until(
      io, [&] { return wh->failed() == 1; }, std::chrono::seconds(5)));
  const auto took = Clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(950));
  EXPECT_LT(took, std::chrono::seconds(4));
  EXPECT_GE(ticks, 10);  // ~50 expected at 20 ms; the margin absorbs a loaded machine
  EXPECT_EQ(rx.accepted, 1);
  EXPECT_EQ(wh->delivered(), 0u);
  tick.cancel();
}

}  // namespace
}  // namespace mtw::api
