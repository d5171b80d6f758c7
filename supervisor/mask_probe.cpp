// The mask prober (see mask_probe.h): OpenSSL over memory BIOs, so the raw
// server bytes pass through our hands before OpenSSL sees them.
#include "supervisor/mask_probe.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <vector>

#include "base/unique_fd.h"
#include "proto/openssl_error.h"

namespace mtw::supervisor {
namespace {

using base::Errc;
using base::fail;
using base::Result;
using Clock = std::chrono::steady_clock;

// A browser's offer (Chrome's order for the suites it shares with OpenSSL).
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr std::size_t kMaxCapture = 256 * 1024;  // a first flight is a few KB

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

std::string openssl_reason() { return proto::openssl_reason("no OpenSSL error queued"); }

Result<std::unique_ptr<SSL_CTX, SslCtxFree>> make_ctx() {
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return fail(Errc::kCrypto, "mask probe tls setup: " + openssl_reason());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  // Every handshake a full one: no resumption from an earlier probe.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_ciphersuites(ctx.get(), kTls13Suites) != 1 ||
      SSL_CTX_set_cipher_list(ctx.get(), kTls12Ciphers) != 1 ||
      SSL_CTX_set1_groups_list(ctx.get(), "X25519:P-256") != 1 ||
      SSL_CTX_set_alpn_protos(ctx.get(), kAlpn, sizeof kAlpn) != 0) {
    return fail(Errc::kCrypto, "mask probe tls setup: " + openssl_reason());
  }
  return ctx;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// poll() for `events` until the deadline. kTimeout names the step.
Result<void> wait_for(int fd, short events, Clock::time_point deadline, const char* step) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return {};
    if (r == 0) return fail(Errc::kTimeout, std::string("mask probe ") + step + ": timed out");
    if (errno != EINTR) return base::fail_errno(std::string("mask probe ") + step + ": poll");
  }
}

Result<base::UniqueFd> connect_to(const MaskProbeOptions& o, Clock::time_point deadline) {
  const std::string where = o.host + ":" + std::to_string(o.port);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &res);
  if (gai != 0) {
    return fail(Errc::kNotFound, "mask probe resolve " + where + ": " + ::gai_strerror(gai));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  base::UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return base::fail_errno("mask probe connect " + where + ": socket");
  const int one = 1;
  // Small writes (the Finished, the GET) leave at once, as a browser's do.
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    return base::fail_errno("mask probe connect " + where);
  }
  if (auto w = wait_for(fd.get(), POLLOUT, deadline, "connect"); !w) {
    return tl::unexpected(w.error());
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return base::fail_errno("mask probe connect " + where, err);
  return fd;
}

// One TLS connection whose wire bytes we see.
class Probe {
 public:
  Probe(base::UniqueFd fd, SSL* ssl) : fd_(std::move(fd)), ssl_(ssl) {}

  // Sends whatever OpenSSL has written to its output BIO.
  Result<void> flush(Clock::time_point deadline, const char* step) {
    char buf[16384];
    for (;;) {
      const int n = BIO_read(SSL_get_wbio(ssl_.get()), buf, sizeof buf);
      if (n <= 0) return {};
      if (sent_.empty()) hello_sent_ = Clock::now();
      if (sent_.size() < 4096) sent_.insert(sent_.end(), buf, buf + n);
      for (int off = 0; off < n;) {
        const ssize_t w = ::send(fd_.get(), buf + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
          off += static_cast<int>(w);
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
          if (auto r = wait_for(fd_.get(), POLLOUT, deadline, step); !r) return r;
        } else {
          return base::fail_errno(std::string("mask probe ") + step + ": send");
        }
      }
    }
  }

  // Reads what has arrived (waiting until the deadline for something) into
  // the capture; false on EOF.
  Result<bool> receive(Clock::time_point deadline, const char* step) {
    if (auto r = wait_for(fd_.get(), POLLIN, deadline, step); !r) return tl::unexpected(r.error());
    char buf[16384];
    const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (n < 0) return base::fail_errno(std::string("mask probe ") + step + ": recv");
    if (n == 0) return false;
    if (captured_.empty()) first_byte_ = Clock::now();
    if (captured_.size() + n > kMaxCapture) {
      return fail(Errc::kTooLarge,
                  std::string("mask probe ") + step + ": server sent over 256 KiB");
    }
    captured_.insert(captured_.end(), reinterpret_cast<std::byte*>(buf),
                     reinterpret_cast<std::byte*>(buf) + n);
    if (BIO_write(SSL_get_rbio(ssl_.get()), buf, static_cast<int>(n)) != n) {
      return fail(Errc::kCrypto, std::string("mask probe ") + step + ": BIO_write");
    }
    return true;
  }

  Result<void> handshake(Clock::time_point deadline) {
    for (;;) {
      ERR_clear_error();
      const int r = SSL_do_handshake(ssl_.get());
      if (auto f = flush(deadline, "handshake"); !f) return f;
      if (r == 1) return {};
      const int e = SSL_get_error(ssl_.get(), r);
      if (e != SSL_ERROR_WANT_READ) {
        return fail(Errc::kCrypto, "mask probe handshake: " + openssl_reason());
      }
      auto more = receive(deadline, "handshake");
      if (!more) return tl::unexpected(more.error());
      if (!*more) return fail(Errc::kBadInput, "mask probe handshake: server closed");
    }
  }

  // GET `path`, then the raw bytes until the server closes, the deadline
  // passes or the capture cap: the records after the handshake.
  Result<std::vector<std::size_t>> fetch(const MaskProbeOptions& o, Clock::time_point deadline) {
    const std::string req = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.sni +
                            "\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n"
                            "Connection: close\r\n\r\n";
    if (SSL_write(ssl_.get(), req.data(), static_cast<int>(req.size())) <= 0) {
      return fail(Errc::kCrypto, "mask probe request: " + openssl_reason());
    }
    if (auto f = flush(deadline, "request"); !f) return tl::unexpected(f.error());
    const std::size_t start = captured_.size();
    for (;;) {
      auto more = receive(deadline, "response");
      if (!more && more.error().code == Errc::kTimeout && captured_.size() > start) break;
      if (!more) return tl::unexpected(more.error());
      if (!*more) break;
    }
    std::vector<std::size_t> records;
    const proto::ByteSpan rest = proto::ByteSpan(captured_).subspan(start);
    for (std::size_t p = 0;
         rest.size() - p >= proto::kTlsHeaderSize && records.size() < proto::kMaxProfileRecords;) {
      const std::size_t n = proto::load_be16(rest.data() + p + 3);
      if (rest.size() - p - proto::kTlsHeaderSize < n) break;
      if (rest[p] == std::byte{0x17}) records.push_back(n);
      p += proto::kTlsHeaderSize + n;
    }
    return records;
  }

  const proto::Bytes& captured() const { return captured_; }
  // ClientHello written -> the server's first byte read (0: not seen);
  // the time an answer takes from here, think time included.
  std::uint32_t answer_us() const {
    if (captured_.empty() || sent_.empty()) return 0;
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(first_byte_ - hello_sent_);
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(us.count(), 1, 60'000'000));
  }
  // The ClientHello's legacy_session_id (record offsets 43, 44..).
  proto::Bytes client_session_id() const {
    if (sent_.size() < 44) return {};
    const std::size_t n = static_cast<unsigned char>(sent_[43]);
    if (n > 32 || sent_.size() < 44 + n) return {};
    return proto::Bytes(reinterpret_cast<const std::byte*>(sent_.data()) + 44,
                        reinterpret_cast<const std::byte*>(sent_.data()) + 44 + n);
  }

 private:
  base::UniqueFd fd_;
  std::unique_ptr<SSL, SslFree> ssl_;
  std::vector<char> sent_;  // the first bytes written (the ClientHello)
  proto::Bytes captured_;   // every byte the server sent
  Clock::time_point hello_sent_{}, first_byte_{};
};

struct Outcome {
  proto::FlightSample sample;
  std::vector<std::size_t> response_records;
};

Result<Outcome> run_one(SSL_CTX* ctx, const MaskProbeOptions& o, bool fetch) {
  const auto timeout = std::chrono::milliseconds(o.step_timeout_ms);
  const auto start = Clock::now();
  auto fd = connect_to(o, start + timeout);
  if (!fd) return tl::unexpected(fd.error());
  SSL* raw = SSL_new(ctx);
  if (raw == nullptr) return fail(Errc::kCrypto, "mask probe tls setup: " + openssl_reason());
  Probe probe(std::move(*fd), raw);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    return fail(Errc::kCrypto, "mask probe tls setup: BIO_new");
  }
  BIO_set_mem_eof_return(rbio, -1);  // empty = "want read", not EOF
  SSL_set_bio(raw, rbio, wbio);      // the SSL owns both now
  if (!o.sni.empty() && SSL_set_tlsext_host_name(raw, o.sni.c_str()) != 1) {
    return fail(Errc::kCrypto, "mask probe tls setup: SNI " + openssl_reason());
  }
  SSL_set_connect_state(raw);

  if (auto h = probe.handshake(Clock::now() + timeout); !h) return tl::unexpected(h.error());
  const auto done = Clock::now();
  auto flight = proto::parse_server_flight(probe.captured());
  if (!flight) {
    return fail(flight.error().code, "mask probe handshake: " + flight.error().context);
  }
  Outcome out;
  out.sample.flight = std::move(*flight);
  out.sample.client_session_id = probe.client_session_id();
  out.sample.answer_us = probe.answer_us();
  out.sample.latency_ms = static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(done - start).count());
  if (fetch) {
    auto records = probe.fetch(o, Clock::now() + timeout);
    if (!records) return tl::unexpected(records.error());
    out.response_records = std::move(*records);
  }
  return out;
}

}  // namespace

Result<proto::CloseBehaviour> observe_close(const MaskProbeOptions& opts, proto::ByteSpan payload,
                                            int wait_ms) {
  const auto timeout = std::chrono::milliseconds(opts.step_timeout_ms);
  auto fd = connect_to(opts, Clock::now() + timeout);
  if (!fd) return tl::unexpected(fd.error());
  for (std::size_t off = 0; off < payload.size();) {
    const ssize_t w = ::send(fd->get(), payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (auto r = wait_for(fd->get(), POLLOUT, Clock::now() + timeout, "close probe"); !r) {
        return tl::unexpected(r.error());
      }
    } else {
      return base::fail_errno("mask probe close probe: send");
    }
  }
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::milliseconds(wait_ms);
  proto::CloseBehaviour c;
  auto elapsed = [&] {
    return static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count());
  };
  for (;;) {
    if (auto r = wait_for(fd->get(), POLLIN, deadline, "close probe"); !r) {
      if (r.error().code != Errc::kTimeout) return tl::unexpected(r.error());
      c.kind = proto::CloseKind::kOpen;
      c.after_ms = elapsed();
      return c;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0 && errno != ECONNRESET) return base::fail_errno("mask probe close probe: recv");
    if (n <= 0) {
      c.kind = n == 0 ? proto::CloseKind::kFin : proto::CloseKind::kRst;
      c.after_ms = elapsed();
      return c;
    }
    const std::size_t keep = std::min<std::size_t>(proto::kMaxReplyHead - c.reply_head.size(), n);
    c.reply_head.insert(c.reply_head.end(), reinterpret_cast<std::byte*>(buf),
                        reinterpret_cast<std::byte*>(buf) + keep);
    c.reply_len += static_cast<std::size_t>(n);
  }
}

Result<proto::FlightSample> probe_handshake(const MaskProbeOptions& opts) {
  auto ctx = make_ctx();
  if (!ctx) return tl::unexpected(ctx.error());
  auto one = run_one(ctx->get(), opts, false);
  if (!one) return tl::unexpected(one.error());
  return std::move(one->sample);
}

Result<proto::TlsProfile> probe_mask(const MaskProbeOptions& opts, std::int64_t now_unix) {
  if (opts.handshakes < 1 || opts.handshakes > static_cast<int>(proto::kMaxProfileSamples)) {
    return fail(Errc::kBadInput, "mask probe: handshakes must be 1..64");
  }
  if (opts.step_timeout_ms < 1)
    return fail(Errc::kBadInput, "mask probe: step timeout must be > 0");
  auto ctx = make_ctx();
  if (!ctx) return tl::unexpected(ctx.error());
  std::vector<proto::FlightSample> samples;
  std::vector<std::size_t> response;
  for (int i = 0; i < opts.handshakes; ++i) {
    const bool last = i + 1 == opts.handshakes;
    auto one = run_one(ctx->get(), opts, last && opts.fetch_response);
    if (!one) return tl::unexpected(one.error());
    samples.push_back(std::move(one->sample));
    if (last) response = std::move(one->response_records);
  }
  auto profile = proto::profile_from_flights(samples, opts.sni, now_unix);
  if (!profile) return fail(profile.error().code, "mask probe: " + profile.error().context);
  profile->response_records = std::move(response);
  if (opts.idle_wait_ms > 0) {
    auto idle = observe_close(opts, {}, opts.idle_wait_ms);
    if (!idle) return tl::unexpected(idle.error());
    profile->idle_close = std::move(*idle);
  }
  if (opts.bad_wait_ms > 0) {
    auto bad = observe_close(opts, std::as_bytes(std::span(kBadClientHello)), opts.bad_wait_ms);
    if (!bad) return tl::unexpected(bad.error());
    profile->bad_close = std::move(*bad);
  }
  return profile;
}

}  // namespace mtw::supervisor
