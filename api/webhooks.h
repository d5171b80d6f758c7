// Optional webhooks: every LiveEvent is POSTed as JSON to each configured
// http:// or https:// URL (base/url.h: the config loader rejects bad ones; one
// that still fails to parse here is logged and skipped), with a per-attempt
// timeout that covers name resolution too and a bounded number of retries
// (exponential backoff), from coroutines on the supervisor's io_context:
// never blocking it. A bounded queue per URL drops the oldest events when a
// receiver is down for long (counted). https verifies the receiver's
// certificate (system CA store plus an optional PEM bundle, host name, TLS
// 1.2 minimum); a failed verification is a failed attempt. Not thread-safe:
// one io_context.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "api/service.h"

namespace mtw::api {

struct WebhookOptions {
  std::vector<std::string> urls;     // http(s)://host[:port]/path (see base::parse_http_url)
  std::uint32_t timeout_ms = 5'000;  // per attempt: resolve, connect, TLS handshake, write, read
  std::uint32_t retries = 3;
  std::size_t queue_limit = 1'000;
  std::string ca_file;  // PEM bundle trusted besides the system store; "" = system store only
};

class Webhooks {
 public:
  static std::unique_ptr<Webhooks> create(boost::asio::io_context& io, WebhookOptions opts);
  virtual ~Webhooks() = default;
  virtual void post(const LiveEvent& e) = 0;
  virtual std::uint64_t delivered() const = 0;
  virtual std::uint64_t failed() const = 0;           // gave up after the retries
  virtual std::uint64_t dropped() const = 0;          // queue full
  virtual std::uint64_t failed_attempts() const = 0;  // attempts that failed (retried or not)
  virtual void stop() = 0;
};

}  // namespace mtw::api
