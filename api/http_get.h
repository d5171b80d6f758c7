// Plain HTTP GET for the supervisor's own downloads: the public address
// lookup and the middle proxies' material (supervisor/middle_material.h).
// http:// and https:// (TLS 1.2+, the peer verified against the system CA
// store and the URL's host name); one deadline covers resolve, connect,
// handshake, request and answer; only a 200 with a complete body within
// `max_bytes` counts.
//
// http_get blocks the calling thread (its own io_context): call it at start
// or from a thread of its own. HttpFetcher runs each fetch on a thread and
// posts the result to the given io_context; its destructor waits for the
// threads (each bounded by its deadline, name resolution aside).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/error.h"
#include "supervisor/middle_material.h"

namespace mtw::api {

// Errors: kBadInput (bad URL, non-200 answer), kTooLarge (body over
// max_bytes), kTimeout, kSyscall (resolve, connect, TLS, a cut answer).
[[nodiscard]] base::Result<std::string> http_get(std::string_view url,
                                                 std::chrono::milliseconds timeout,
                                                 std::size_t max_bytes);

class HttpFetcher final : public supervisor::MaterialFetcher {
 public:
  HttpFetcher(boost::asio::io_context& io, std::chrono::milliseconds timeout)
      : io_(io), timeout_(timeout) {}
  ~HttpFetcher() override;
  void fetch(const std::string& url, std::size_t max_bytes, Done done) override;

 private:
  boost::asio::io_context& io_;
  std::chrono::milliseconds timeout_;
  struct Job {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;  // set by the thread as its last step
  };
  std::vector<Job> jobs_;  // joined in the destructor (fetch() is called on io_'s thread only)
};

}  // namespace mtw::api
