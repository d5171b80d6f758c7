// NameCache: the addresses of names a process connects to again and again
// (a mask target such as the fake-TLS domain on port 443), resolved once and
// kept. Without it every masked connection paid a getaddrinfo on Asio's
// resolver thread before its connect (reading /etc/hosts, or a DNS round
// trip for a real domain): the masked answer came later than the site's own
// by that much, a difference a prober can time, and a probe flood became a
// DNS flood.
//
// A fresh entry is used as it is. A stale one (older than `ttl`) is still
// used, and one background lookup refreshes it: the connection that found
// it stale does not wait. A failed refresh keeps the old addresses until
// `max_stale`, then the entry goes and the next connection resolves
// inline. A failed inline lookup is not cached (the caller logs and
// counts it). Single-threaded, like the processes that own one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "ipc/asio.h"

namespace mtw::ipc {

class NameCache {
 public:
  struct Options {
    std::chrono::seconds ttl{60};
    std::chrono::seconds max_stale{600};
    std::size_t max_entries = 256;  // names beyond it resolve without being kept
  };
  NameCache() : NameCache(Options{}) {}
  explicit NameCache(Options o);

  // `host` an address literal: that address, no lookup. Else the cached
  // addresses, or a lookup now (the error when it fails).
  awaitable<std::pair<error_code, std::vector<tcp::endpoint>>> resolve(asio::any_io_executor ex,
                                                                       const std::string& host,
                                                                       std::uint16_t port);

  std::size_t size() const noexcept;
  // Lookups started (inline and background), for tests and diagnostics.
  std::uint64_t lookups() const noexcept;

 private:
  struct Entry {
    std::vector<tcp::endpoint> addrs;
    Clock::time_point resolved_at;
    bool refreshing = false;
  };
  struct State {
    Options opts;
    std::unordered_map<std::string, Entry> entries;  // key: host ":" port
    std::uint64_t lookups = 0;
  };
  static awaitable<void> refresh(std::shared_ptr<State> st, asio::any_io_executor ex,
                                 std::string key, std::string host, std::uint16_t port);
  // Shared with background refreshes, which may outlive a lookup's caller.
  std::shared_ptr<State> st_;
};

// connect_endpoint (asio.h) with the addresses from `names`.
awaitable<error_code> connect_endpoint(tcp::socket& sock, const proto::Endpoint& ep,
                                       NameCache& names);

}  // namespace mtw::ipc
