// Optional webhooks: every LiveEvent is POSTed as JSON to each configured
// http:// URL, with a per-attempt timeout and a bounded number of retries
// (exponential backoff), from coroutines on the supervisor's io_context:
// never blocking it. A bounded queue per URL drops the oldest events when a
// receiver is down for long (counted). Not thread-safe: one io_context.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "api/service.h"

namespace mtw::api {

struct WebhookOptions {
  std::vector<std::string> urls;  // http://host[:port]/path (validated by the config loader)
  std::uint32_t timeout_ms = 5'000;
  std::uint32_t retries = 3;
  std::size_t queue_limit = 1'000;
};

class Webhooks {
 public:
  static std::unique_ptr<Webhooks> create(boost::asio::io_context& io, WebhookOptions opts);
  virtual ~Webhooks() = default;
  virtual void post(const LiveEvent& e) = 0;
  virtual std::uint64_t delivered() const = 0;
  virtual std::uint64_t failed() const = 0;   // gave up after the retries
  virtual std::uint64_t dropped() const = 0;  // queue full
  virtual void stop() = 0;
};

// "http://host:port/path" -> parts; kBadInput for anything else (https is
// not supported: point it at a local relay).
struct HttpUrl {
  std::string host;
  std::uint16_t port = 80;
  std::string target = "/";
};
[[nodiscard]] base::Result<HttpUrl> parse_http_url(std::string_view url);

}  // namespace mtw::api
