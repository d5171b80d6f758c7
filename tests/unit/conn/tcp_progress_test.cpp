#include "conn/tcp_progress.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/unique_fd.h"

namespace mtw::conn {
namespace {

// A connected loopback pair: {client, accepted}.
std::pair<base::UniqueFd, base::UniqueFd> tcp_pair() {
  base::UniqueFd listener(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(listener.get(), 1), 0);
  EXPECT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  base::UniqueFd client(::socket(AF_INET, SOCK_STREAM, 0));
  EXPECT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  base::UniqueFd server(::accept(listener.get(), nullptr, nullptr));
  return {std::move(client), std::move(server)};
}

TEST(TcpBytesAcked, GrowsByWhatThePeerTook) {
  auto [client, server] = tcp_pair();
  auto before = tcp_bytes_acked(client.get());
  ASSERT_TRUE(before) << before.error().to_string();
  std::vector<char> data(100'000, 'x');
  std::size_t sent = 0;
  while (sent < data.size()) {
    const auto n = ::send(client.get(), data.data() + sent, data.size() - sent, 0);
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  // Loopback acknowledges within microseconds; allow a loaded host a second.
  std::uint64_t acked = 0;
  for (int i = 0; i < 100; ++i) {
    auto now = tcp_bytes_acked(client.get());
    ASSERT_TRUE(now);
    acked = *now - *before;
    if (acked >= data.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(acked, data.size());
}

TEST(TcpBytesAcked, NotATcpSocketIsAnError) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  base::UniqueFd a(sv[0]), b(sv[1]);
  EXPECT_FALSE(tcp_bytes_acked(a.get()));
  EXPECT_FALSE(tcp_bytes_acked(-1));
}

}  // namespace
}  // namespace mtw::conn
