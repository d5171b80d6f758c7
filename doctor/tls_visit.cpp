#include "doctor/tls_visit.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <strings.h>
#include <array>
#include <cstring>
#include <ctime>
#include <memory>

#include "doctor/net.h"
#include "proto/openssl_error.h"

namespace mtw::doctor {

namespace {

// A failed TLS call with no OpenSSL error queued: the server closed or the
// socket's timeout passed.
std::string openssl_reason() { return proto::openssl_reason("connection closed or timed out"); }

std::int64_t asn1_unix(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::vector<std::string> cert_names(X509* x) {
  std::vector<std::string> out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans) && out.size() < 8; ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const unsigned char* s = ASN1_STRING_get0_data(n->d.dNSName);
      out.emplace_back(reinterpret_cast<const char*>(s),
                       static_cast<std::size_t>(ASN1_STRING_length(n->d.dNSName)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0)
      out.emplace_back(cn);
  }
  return out;
}

}  // namespace

std::optional<std::int64_t> parse_http_date(std::string_view text) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (text.size() < 29 || text[3] != ',' || text.substr(26, 3) != "GMT") return std::nullopt;
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto num = [&](std::size_t at, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = at; i < at + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_mday = num(5, 2);
  tm.tm_mon = -1;
  for (std::size_t m = 0; m < kMonths.size(); ++m)
    if (text.substr(8, 3) == kMonths[m]) tm.tm_mon = static_cast<int>(m);
  tm.tm_year = num(12, 4) - 1900;
  tm.tm_hour = num(17, 2);
  tm.tm_min = num(20, 2);
  tm.tm_sec = num(23, 2);
  if (tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_mon < 0 || tm.tm_year < 70 || tm.tm_hour < 0 ||
      tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60 ||
      text[16] != ' ' || text[19] != ':' || text[22] != ':')
    return std::nullopt;
  return static_cast<std::int64_t>(::timegm(&tm));
}

TlsVisit visit_mask(const proto::Endpoint& target, const std::string& sni,
                    const std::string& ca_file, int timeout_ms, double (*now_unix_s)()) {
  TlsVisit v;
  auto fd = connect_tcp(target, timeout_ms);
  if (!fd) {
    v.cert.error = fd.error().to_string();
    v.http_error = v.cert.error;
    return v;
  }
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1) {
    v.cert.error = "tls setup: " + openssl_reason();
    return v;
  }
  if (ca_file.empty()) {
    SSL_CTX_set_default_verify_paths(ctx.get());
  } else if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    v.cert.error = "cannot load --ca-file " + ca_file + ": " + openssl_reason();
    return v;
  }
  // Verified below, after the handshake: the verdict wants to know what is
  // wrong, not only that something is.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, void (*)(SSL*)> ssl(SSL_new(ctx.get()), SSL_free);
  if (!ssl || SSL_set_fd(ssl.get(), fd->get()) != 1 ||
      SSL_set_tlsext_host_name(ssl.get(), sni.c_str()) != 1) {
    v.cert.error = "tls setup: " + openssl_reason();
    return v;
  }
  ERR_clear_error();
  if (SSL_connect(ssl.get()) != 1) {
    v.cert.error = "TLS 1.3 handshake: " + openssl_reason();
    v.http_error = v.cert.error;
    return v;
  }
  v.cert.connected = true;
  X509* peer = SSL_get0_peer_certificate(ssl.get());
  if (peer == nullptr) {
    v.cert.connected = false;
    v.cert.error = "the server sent no certificate";
    return v;
  }
  v.cert.names = cert_names(peer);
  v.cert.name_matches = X509_check_host(peer, sni.data(), sni.size(), 0, nullptr) == 1;
  v.cert.not_before = asn1_unix(X509_get0_notBefore(peer));
  v.cert.not_after = asn1_unix(X509_get0_notAfter(peer));
  const long vr = SSL_get_verify_result(ssl.get());
  // Dates are judged against doctor's own clock in the rule; the chain
  // alone decides trust here.
  v.cert.chain_trusted =
      vr == X509_V_OK || vr == X509_V_ERR_CERT_HAS_EXPIRED || vr == X509_V_ERR_CERT_NOT_YET_VALID;
  if (!v.cert.chain_trusted) v.cert.verify_error = X509_verify_cert_error_string(vr);

  const std::string req = "GET / HTTP/1.1\r\nHost: " + sni +
                          "\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  const double t1 = now_unix_s();
  if (SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())) <= 0) {
    v.http_error = "request: " + openssl_reason();
    return v;
  }
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536) {
    const int n = SSL_read(ssl.get(), buf, sizeof buf);
    if (n <= 0) break;
    head.append(buf, static_cast<std::size_t>(n));
  }
  const double t2 = now_unix_s();
  v.round_trip_s = t2 - t1;
  v.local_at = (t1 + t2) / 2;
  const std::size_t end = head.find("\r\n\r\n");
  if (end == std::string::npos) {
    v.http_error = "no complete HTTP answer to GET /";
    return v;
  }
  head.resize(end + 2);
  for (std::size_t at = head.find("\r\n"); at != std::string::npos;
       at = head.find("\r\n", at + 2)) {
    const std::size_t line_end = head.find("\r\n", at + 2);
    if (line_end == std::string::npos) break;
    std::string_view line(head.data() + at + 2, line_end - at - 2);
    if (line.size() > 5 && strncasecmp(line.data(), "date:", 5) == 0) {
      line.remove_prefix(5);
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      v.http_date = parse_http_date(line);
      if (!v.http_date) v.http_error = "a Date header that does not parse";
      return v;
    }
  }
  v.http_error = "no Date header in the answer to GET /";
  return v;
}

}  // namespace mtw::doctor
