// Private to api/: the pure request -> response function behind the HTTP
// server (no sockets): routing, authorization, validation, Service calls and
// rendering. Tested directly and through server.cpp.
// Not thread-safe: used on the io_context thread like the Service.
// `service` and `token` are borrowed and must outlive the Handler.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.h"
#include "api/metrics.h"
#include "api/service.h"

namespace mtw::api::detail {

// The bearer token's state: the file it lives in and the hash now in force
// ("" = no token: every TCP request is refused).
struct TokenState {
  std::string path;
  std::string hash_hex;
};

class Handler {
 public:
  Handler(Service& service, std::uint32_t secret_grace_s, TokenState& token)
      : service_(service), secret_grace_s_(secret_grace_s), token_(token) {}

  // Checked as soon as the header is in, before the body is read: 401 for
  // TCP without the right bearer token; nullopt when the request may go on.
  std::optional<HttpResponse> authorize(Transport transport, std::string_view authorization) const;
  // The full answer; never throws (500 on an unexpected exception).
  HttpResponse handle(const HttpRequest& request);
  // The server's counters, shown on /metrics; server.cpp counts into them.
  ApiCounters& counters() { return counters_; }

 private:
  ApiResult<HttpResponse> route(const HttpRequest& request);

  Service& service_;
  std::uint32_t secret_grace_s_;
  TokenState& token_;
  ApiCounters counters_;
};

// The path of `target` without its query (what the access log shows: query
// values are never logged).
std::string_view target_path(std::string_view target) noexcept;

}  // namespace mtw::api::detail
