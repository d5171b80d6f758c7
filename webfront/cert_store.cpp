#include "webfront/cert_store.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <boost/asio/ssl/context.hpp>

#include "proto/openssl_error.h"

namespace mtw::webfront {
namespace {

using base::Errc;
using base::fail;

// `what`, and OpenSSL's reason when it queued one.
std::string openssl_error(std::string what) {
  const std::string reason = proto::openssl_reason("");
  if (!reason.empty()) what += ": " + reason;
  return what;
}

// Offers only HTTP/1.1, as a plain HTTPS site without HTTP/2 does; a client
// that offers no ALPN gets none.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Result<CertStore> CertStore::open(std::string cert_file, std::string key_file) {
  CertStore s;
  s.cert_file_ = std::move(cert_file);
  s.key_file_ = std::move(key_file);
  auto stamps = s.stat_files();
  if (!stamps) return tl::unexpected(stamps.error());
  auto ctx = s.build();
  if (!ctx) return tl::unexpected(ctx.error());
  s.ctx_ = std::move(*ctx);
  s.loaded_ = *stamps;
  return s;
}

Result<CertStore::Stamps> CertStore::stat_files() const {
  Stamps out;
  auto one = [](const std::string& path, Stamp& st) -> Result<void> {
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0) {
      auto e = base::fail_errno("stat " + path);
      if (e.value().sys_errno == ENOENT) e.value().code = Errc::kNotFound;
      return e;
    }
    st = Stamp{sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim};
    return {};
  };
  if (auto r = one(cert_file_, out.cert); !r) return tl::unexpected(r.error());
  if (auto r = one(key_file_, out.key); !r) return tl::unexpected(r.error());
  return out;
}

Result<std::shared_ptr<boost::asio::ssl::context>> CertStore::build() const {
  auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
  SSL_CTX* c = ctx->native_handle();
  ERR_clear_error();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  if (SSL_CTX_use_certificate_chain_file(c, cert_file_.c_str()) != 1) {
    return fail(Errc::kCrypto, openssl_error("certificate " + cert_file_));
  }
  if (SSL_CTX_use_PrivateKey_file(c, key_file_.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(Errc::kCrypto, openssl_error("private key " + key_file_));
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return fail(Errc::kCrypto, openssl_error("private key does not match the certificate"));
  }
  SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
  return ctx;
}

CertStore::Check CertStore::check() {
  auto stamps = stat_files();
  if (stamps && *stamps == loaded_) {
    have_failed_ = false;
    return Check::kUnchanged;
  }
  Result<std::shared_ptr<boost::asio::ssl::context>> ctx =
      stamps ? build() : tl::unexpected(stamps.error());
  if (ctx) {
    ctx_ = std::move(*ctx);
    loaded_ = *stamps;
    have_failed_ = false;
    ++reloads_;
    return Check::kReloaded;
  }
  // Report a given broken state once; a further change is reported again.
  Stamps seen = stamps ? *stamps : Stamps{};
  if (have_failed_ && seen == failed_) return Check::kUnchanged;
  have_failed_ = true;
  failed_ = seen;
  error_ = ctx.error();
  ++failures_;
  return Check::kFailed;
}

}  // namespace mtw::webfront
