#include "ipc/name_cache.h"

#include <gtest/gtest.h>

#include <boost/asio/detached.hpp>

namespace mtw::ipc {
namespace {

using Resolved = std::pair<error_code, std::vector<tcp::endpoint>>;

// Runs one resolve to completion (and whatever it spawned).
Resolved run_resolve(asio::io_context& io, NameCache& names, const std::string& host,
                     std::uint16_t port) {
  Resolved out;
  asio::co_spawn(
      io, [&]() -> awaitable<void> { out = co_await names.resolve(io.get_executor(), host, port); },
      asio::detached);
  io.restart();
  io.run();
  return out;
}

TEST(NameCache, AnAddressLiteralNeedsNoLookup) {
  asio::io_context io;
  NameCache names;
  auto r = run_resolve(io, names, "127.0.0.1", 443);
  ASSERT_FALSE(r.first) << r.first.message();
  ASSERT_EQ(r.second.size(), 1u);
  EXPECT_EQ(r.second[0], tcp::endpoint(asio::ip::make_address("127.0.0.1"), 443));
  r = run_resolve(io, names, "::1", 8443);
  ASSERT_FALSE(r.first);
  EXPECT_EQ(r.second[0].port(), 8443);
  EXPECT_EQ(names.lookups(), 0u);
  EXPECT_EQ(names.size(), 0u);
}

// "localhost" comes from /etc/hosts (nss files), on every Debian machine
// and inside the test sandboxes, without a network.
TEST(NameCache, ANameIsLookedUpOnceWhileFresh) {
  asio::io_context io;
  NameCache names;
  auto first = run_resolve(io, names, "localhost", 443);
  ASSERT_FALSE(first.first) << first.first.message();
  ASSERT_FALSE(first.second.empty());
  for (const auto& ep : first.second) {
    EXPECT_TRUE(ep.address().is_loopback());
    EXPECT_EQ(ep.port(), 443);
  }
  for (int i = 0; i < 5; ++i) {
    auto again = run_resolve(io, names, "localhost", 443);
    ASSERT_FALSE(again.first);
    EXPECT_EQ(again.second, first.second);
  }
  EXPECT_EQ(names.lookups(), 1u);
  // Another port is another entry.
  auto other = run_resolve(io, names, "localhost", 80);
  ASSERT_FALSE(other.first);
  EXPECT_EQ(other.second[0].port(), 80);
  EXPECT_EQ(names.lookups(), 2u);
  EXPECT_EQ(names.size(), 2u);
}

TEST(NameCache, AStaleEntryAnswersAtOnceAndIsRefreshedBehind) {
  asio::io_context io;
  NameCache names(NameCache::Options{std::chrono::seconds(0), std::chrono::seconds(600), 256});
  auto first = run_resolve(io, names, "localhost", 443);
  ASSERT_FALSE(first.first);
  EXPECT_EQ(names.lookups(), 1u);
  // ttl 0: stale at once. The answer is the old one; one refresh ran
  // (io.run() returns once it is done).
  auto stale = run_resolve(io, names, "localhost", 443);
  ASSERT_FALSE(stale.first);
  EXPECT_EQ(stale.second, first.second);
  EXPECT_EQ(names.lookups(), 2u);
  EXPECT_EQ(names.size(), 1u);
}

TEST(NameCache, EntriesExpireAfterMaxStale) {
  asio::io_context io;
  NameCache names(NameCache::Options{std::chrono::seconds(0), std::chrono::seconds(0), 256});
  ASSERT_FALSE(run_resolve(io, names, "localhost", 443).first);
  ASSERT_FALSE(run_resolve(io, names, "localhost", 443).first);
  // Too old to serve: each call is an inline lookup, never a background one.
  EXPECT_EQ(names.lookups(), 2u);
}

TEST(NameCache, KeepsAtMostMaxEntries) {
  asio::io_context io;
  NameCache names(NameCache::Options{std::chrono::seconds(60), std::chrono::seconds(600), 1});
  ASSERT_FALSE(run_resolve(io, names, "localhost", 443).first);
  ASSERT_FALSE(run_resolve(io, names, "localhost", 444).first);
  EXPECT_EQ(names.size(), 1u);
  ASSERT_FALSE(run_resolve(io, names, "localhost", 444).first);
  EXPECT_EQ(names.lookups(), 3u);  // the one not kept resolves each time
}

}  // namespace
}  // namespace mtw::ipc
