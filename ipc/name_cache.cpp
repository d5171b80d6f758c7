#include "ipc/name_cache.h"

namespace mtw::ipc {
namespace {

awaitable<std::pair<error_code, std::vector<tcp::endpoint>>> lookup(asio::any_io_executor ex,
                                                                    const std::string& host,
                                                                    std::uint16_t port) {
  tcp::resolver resolver(ex);
  auto [ec, results] = co_await resolver.async_resolve(host, std::to_string(port), use_nothrow);
  std::vector<tcp::endpoint> out;
  if (!ec) {
    for (const auto& r : results) out.push_back(r.endpoint());
    if (out.empty()) ec = asio::error::host_not_found;
  }
  co_return std::pair{ec, std::move(out)};
}

}  // namespace

NameCache::NameCache(Options o) : st_(std::make_shared<State>()) { st_->opts = o; }

std::size_t NameCache::size() const noexcept { return st_->entries.size(); }

std::uint64_t NameCache::lookups() const noexcept { return st_->lookups; }

awaitable<std::pair<error_code, std::vector<tcp::endpoint>>> NameCache::resolve(
    asio::any_io_executor ex, const std::string& host, std::uint16_t port) {
  error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (!ec) co_return std::pair{error_code{}, std::vector<tcp::endpoint>{{addr, port}}};

  std::string key = host + ":" + std::to_string(port);
  const auto now = Clock::now();
  if (auto it = st_->entries.find(key); it != st_->entries.end()) {
    Entry& e = it->second;
    const auto age = now - e.resolved_at;
    if (age <= st_->opts.ttl) co_return std::pair{error_code{}, e.addrs};
    if (age <= st_->opts.max_stale) {
      if (!e.refreshing) {
        e.refreshing = true;
        asio::co_spawn(ex, refresh(st_, ex, key, host, port), LogExceptions{"name refresh"});
      }
      co_return std::pair{error_code{}, e.addrs};
    }
    st_->entries.erase(it);  // too old to trust: resolve as if new
  }
  ++st_->lookups;
  auto [lec, addrs] = co_await lookup(ex, host, port);
  if (!lec && (st_->entries.size() < st_->opts.max_entries || st_->entries.count(key) != 0)) {
    st_->entries[key] = Entry{addrs, Clock::now(), false};
  }
  co_return std::pair{lec, std::move(addrs)};
}

awaitable<void> NameCache::refresh(std::shared_ptr<State> st, asio::any_io_executor ex,
                                   std::string key, std::string host, std::uint16_t port) {
  ++st->lookups;
  auto [ec, addrs] = co_await lookup(ex, host, port);
  auto it = st->entries.find(key);
  if (it == st->entries.end()) co_return;  // expired meanwhile: the next caller resolves
  it->second.refreshing = false;
  if (ec) co_return;  // keep the old addresses until max_stale
  it->second.addrs = std::move(addrs);
  it->second.resolved_at = Clock::now();
}

// asio.h: without a cache (the DCs, the egress upstreams: address literals
// mostly, resolved at most once per connection).
awaitable<error_code> connect_endpoint(tcp::socket& sock, const proto::Endpoint& ep) {
  error_code ec;
  const auto addr = asio::ip::make_address(ep.host, ec);
  std::vector<tcp::endpoint> targets;
  if (!ec) {
    targets.emplace_back(addr, ep.port);
  } else {
    auto [rec, found] = co_await lookup(sock.get_executor(), ep.host, ep.port);
    if (rec) co_return rec;
    targets = std::move(found);
  }
  co_return co_await connect_addresses(sock, targets);
}

awaitable<error_code> connect_endpoint(tcp::socket& sock, const proto::Endpoint& ep,
                                       NameCache& names) {
  auto [rec, targets] = co_await names.resolve(sock.get_executor(), ep.host, ep.port);
  if (rec) co_return rec;
  co_return co_await connect_addresses(sock, targets);
}

}  // namespace mtw::ipc
