// A minimal synchronous HTTP/1.1 client (Boost.Beast) for mtwardenctl: one
// request per connection, over the API's Unix socket or TCP, with one
// deadline covering connect, write and read. Not thread-safe; one object
// per request is fine.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "base/error.h"
#include "ctl/args.h"

namespace mtw::ctl {

struct HttpResponse {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

// The seam unit tests replace with a canned server.
class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `method target` with `body` (Content-Type application/json when
  // non-empty). Errors: before the request was written (cannot reach the
  // API): kNotFound (no socket file), kPermission (EACCES/EPERM), kSyscall
  // with sys_errno (ECONNREFUSED, ...), kTimeout; after it: kBadInput (not
  // HTTP, or over the size limit), kTimeout, kSyscall (connection lost)
  // with context starting "response: ".
  [[nodiscard]] virtual base::Result<HttpResponse> send(const std::string& method,
                                                        const std::string& target,
                                                        const std::string& body) = 0;
};

// `endpoint` is copied. Response bodies over 32 MiB are refused.
std::unique_ptr<Transport> make_http_transport(const Endpoint& endpoint,
                                               std::chrono::milliseconds timeout);

}  // namespace mtw::ctl
