// Shaping accuracy, live rate change and kernel counters, measured in the
// sandbox between a cell and the DC namespace. Rates are TCP payload rates
// (netns/rate.h: htb runs at wire_bps() of them), so the TCP goodput the
// receiver sees is compared with the rate +-5 % as it is.
#include <linux/tcp.h>  // tcp_info with tcpi_bytes_received (glibc's copy lacks it)
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "netns/cell.h"
#include "tests/unit/netns/netns_fixture.h"

namespace mtw::netns::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t k20Mbit = 20'000'000;
constexpr std::uint64_t k5Mbit = 5'000'000;

std::unique_ptr<CellHost> open_host(const CellHostConfig& cfg) {
  (void)reconcile(cfg);
  auto host = CellHost::open(cfg);
  EXPECT_TRUE(host.has_value()) << host.error().to_string();
  return host ? std::move(*host) : nullptr;
}

// Bytes the kernel has received on `fd` (acked, whether or not read yet).
std::uint64_t kernel_bytes_received(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return 0;
  return ti.tcpi_bytes_received;
}

// Deep socket buffers let the kernel keep the shaper's queue full and the
// window open while a starved test thread (CI: 2 cores, ASan, parallel jobs)
// is off-CPU: the measurement then tracks the shaper, not the scheduler.
void deepen_buffers(int fd) {
  int big = 8 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
}

// Cumulative bytes received over time, sampled from TCP_INFO by a thread
// that also drains the socket. Each sample pairs the kernel's count with the
// time it was read, so a late sample is still an exact point on the curve.
class Receiver {
 public:
  Receiver(int fd, Clock::time_point t0) : fd_(fd), t0_(t0), th_([this] { run(); }) {}
  ~Receiver() { stop(); }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }
  // Bytes received in [a, b) seconds since t0, in bits per second.
  double rate_bps(double a, double b) const {
    std::lock_guard<std::mutex> g(mu_);
    return (bytes_at(a) - bytes_at(b)) * -8.0 / (b - a);
  }
  bool saw_error() const { return error_; }

 private:
  void run() {
    std::vector<char> buf(256 * 1024);
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
          error_ = true;  // EOF or reset before we asked to stop
          return;
        }
      }
      std::uint64_t total = kernel_bytes_received(fd_);
      double t = std::chrono::duration<double>(Clock::now() - t0_).count();
      std::lock_guard<std::mutex> g(mu_);
      samples_.emplace_back(t, total);
    }
  }
  // Linear interpolation between the samples around t: a thread that was
  // off-CPU leaves a gap in the samples, not a step in the curve.
  double bytes_at(double t) const {
    auto it =
        std::upper_bound(samples_.begin(), samples_.end(), std::make_pair(t, ~std::uint64_t{0}));
    if (it == samples_.begin()) return 0.0;
    auto lo = std::prev(it);
    if (it == samples_.end() || it->first <= lo->first) return static_cast<double>(lo->second);
    double f = (t - lo->first) / (it->first - lo->first);
    return static_cast<double>(lo->second) + f * static_cast<double>(it->second - lo->second);
  }
  int fd_;
  Clock::time_point t0_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> error_{false};
  mutable std::mutex mu_;
  std::vector<std::pair<double, std::uint64_t>> samples_;
  std::thread th_;
};

// Writes until told to stop; records whether any write failed.
class Sender {
 public:
  explicit Sender(int fd) : fd_(fd), th_([this] { run(); }) {}
  ~Sender() { stop(); }
  void stop() {
    stop_ = true;
    if (th_.joinable()) th_.join();
  }
  bool saw_error() const { return error_; }

 private:
  void run() {
    std::vector<char> buf(16 * 1024, 'x');
    while (!stop_) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      if (::send(fd_, buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN) {
        error_ = true;
        return;
      }
    }
  }
  int fd_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> error_{false};
  std::thread th_;
};

// Smoothed RTT the kernel measured on `fd`, in ms: with a saturated shaper
// it is mostly the time a packet waits in the shaper's queue.
double srtt_ms(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1;
  return ti.tcpi_rtt / 1000.0;
}

// A loss-based sender, as most Internet servers run: it fills whatever queue
// the shaper has, so the measured RTT shows the queue's depth. (The sandbox
// default is BBR, which keeps queues near empty and would hide it.)
bool use_loss_based_cc(int fd) {
  for (const char* cc : {"cubic", "reno"}) {
    if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cc, std::strlen(cc)) == 0) return true;
  }
  return false;
}

int mss_of(int fd) {
  int mss = 0;
  socklen_t len = sizeof mss;
  ::getsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, &len);
  return mss > 0 ? mss : 1448;
}

void sleep_until(Clock::time_point t0, double sec) {
  std::this_thread::sleep_until(
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(sec)));
}

// A TCP connection between `cell` and the DC, with deep buffers.
struct CellDcConn {
  base::UniqueFd lst, cell, dc;
};

CellDcConn connect_cell_to_dc(const Cell& cell, int port) {
  CellDcConn c;
  c.lst = listen_tcp(dc_netns_fd(), kDcAddr, port);
  auto cs = cell.socket(AF_INET, SOCK_STREAM);
  if (!c.lst.valid() || !cs) return c;
  c.cell = std::move(*cs);
  deepen_buffers(c.lst.get());  // inherited by the accepted socket
  deepen_buffers(c.cell.get());
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr = ip4(kDcAddr);
  if (::connect(c.cell.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return c;
  c.dc.reset(::accept4(c.lst.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return c;
}

// One TCP connection cell <-> DC shaped at 20 Mbit/s, switched to 5 Mbit/s
// at t=3 s. `download` picks the direction (DC sends to the cell).
void run_shaping(bool download) {
  auto host = open_host(test_config(download ? "mtwd" : "mtwu"));
  ASSERT_TRUE(host);
  auto cell = Cell::create(*host, "1", ShaperRates{{k20Mbit, 0}, {k20Mbit, 0}});
  ASSERT_TRUE(cell.has_value()) << cell.error().to_string();
  CellDcConn conn = connect_cell_to_dc(*cell, download ? 7101 : 7102);
  ASSERT_TRUE(conn.dc.valid()) << errno;
  int send_fd = download ? conn.dc.get() : conn.cell.get();
  int recv_fd = download ? conn.cell.get() : conn.dc.get();

  auto t0 = Clock::now();
  Receiver rx(recv_fd, t0);
  Sender tx(send_fd);
  sleep_until(t0, 2.9);
  const double rtt_fast = srtt_ms(send_fd);
  sleep_until(t0, 3.0);
  ShaperRates slow = cell->rates();
  (download ? slow.download : slow.upload) = Rate{k5Mbit, 0};
  ASSERT_TRUE(cell->set_rates(slow).has_value());
  sleep_until(t0, 6.4);
  const double rtt_slow = srtt_ms(send_fd);
  sleep_until(t0, 6.5);
  tx.stop();
  rx.stop();
  const int mss = mss_of(send_fd);

  const double fast = rx.rate_bps(1.0, 3.0);
  const double slow_rate = rx.rate_bps(4.0, 6.5);
  std::printf("%s: 20 Mbit/s -> goodput %.2f Mbit/s, 5 Mbit/s -> goodput %.2f (mss %d)\n",
              download ? "download" : "upload", fast / 1e6, slow_rate / 1e6, mss);
  // Informational: the sandbox's default congestion control (BBR) keeps the
  // queue short by itself; LossBasedDownloadSeesBoundedQueueingDelay checks
  // the queue bound.
  std::printf("%s: srtt under load %.0f ms at 20 Mbit/s, %.0f ms at 5 Mbit/s\n",
              download ? "download" : "upload", rtt_fast, rtt_slow);
  EXPECT_NEAR(fast, k20Mbit, 0.05 * k20Mbit);
  EXPECT_NEAR(slow_rate, k5Mbit, 0.05 * k5Mbit);
  // The curve, not just the means: no stall at either rate, and the new
  // rate holds within 1 s of the change. Sliding 1 s windows (every 0.5 s):
  // 0.5 s bins swing by more than 15 % when other work loads both cores,
  // because the rate-sized queue drains and refills in bursts.
  for (double t = 1.0; t + 1.0 <= 3.0; t += 0.5) {
    EXPECT_NEAR(rx.rate_bps(t, t + 1.0), k20Mbit, 0.15 * k20Mbit) << "t=" << t;
  }
  for (double t = 3.5; t + 1.0 <= 6.5; t += 0.5) {
    EXPECT_NEAR(rx.rate_bps(t, t + 1.0), k5Mbit, 0.15 * k5Mbit) << "t=" << t;
  }
  // Same connection throughout: neither side saw an error or EOF.
  EXPECT_FALSE(tx.saw_error());
  EXPECT_FALSE(rx.saw_error());
}

TEST(ShapingPrivileged, DownloadHoldsRateAndChangesLive) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  run_shaping(true);
}

TEST(ShapingPrivileged, UploadHoldsRateAndChangesLive) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  run_shaping(false);
}

CellCounters counters_of(CellHost& host, const std::string& name);

// A loss-based sender fills whatever queue the shaper has. The leaf bfifo
// holds ~100 ms at the rate, at least one 64 KiB GSO packet (~110 ms at
// 5 Mbit/s); htb's default 1000-packet pfifo let it queue 2.7 s here.
// The limit must still keep the link busy: the rate read at the shaper's
// output from the kernel counters stays above 90 % of the class's wire rate
// (measured 92-96 %: after each drop a loss-based sender lets this short
// drop-tail queue run dry briefly; BBR, in the tests above, holds +-5 %).
// The counters bill a GSO packet's headers once, htb once per segment, so
// they read up to 4.4 % under the class rate. TCP's in-order goodput is
// bursty under loss recovery, so it is not the gauge.
TEST(ShapingPrivileged, LossBasedDownloadSeesBoundedQueueingDelay) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto host = open_host(test_config("mtwy"));
  ASSERT_TRUE(host);
  auto cell = Cell::create(*host, "1", ShaperRates{{k5Mbit, 0}, {k5Mbit, 0}});
  ASSERT_TRUE(cell.has_value()) << cell.error().to_string();
  CellDcConn conn = connect_cell_to_dc(*cell, 7103);
  ASSERT_TRUE(conn.dc.valid()) << errno;
  ASSERT_TRUE(use_loss_based_cc(conn.dc.get())) << errno;
  const std::string name = cell->names().host_if;

  auto t0 = Clock::now();
  Receiver rx(conn.cell.get(), t0);
  Sender tx(conn.dc.get());
  sleep_until(t0, 1.5);
  CellCounters c1 = counters_of(*host, name);
  auto ta = Clock::now();
  sleep_until(t0, 4.0);
  CellCounters c2 = counters_of(*host, name);
  auto tb = Clock::now();
  const double rtt = srtt_ms(conn.dc.get());
  tx.stop();
  rx.stop();
  const double wire = static_cast<double>(c2.download_bytes - c1.download_bytes) * 8.0 /
                      std::chrono::duration<double>(tb - ta).count();
  std::printf("loss-based download at 5 Mbit/s: wire %.2f Mbit/s, srtt %.0f ms\n", wire / 1e6, rtt);
  const auto cls = static_cast<double>(wire_bps(k5Mbit));
  EXPECT_GT(wire, 0.90 * cls);
  EXPECT_LT(wire, 1.02 * cls);
  EXPECT_GT(rtt, 0.0);
  EXPECT_LT(rtt, 300.0);
  EXPECT_FALSE(tx.saw_error());
  EXPECT_FALSE(rx.saw_error());
}

CellCounters counters_of(CellHost& host, const std::string& name) {
  CellCounters out;
  auto r = host.sweep([&](const std::string& n, const CellCounters& c) {
    if (n == name) out = c;
  });
  EXPECT_TRUE(r.has_value());
  return out;
}

// Sends `count` datagrams of `size` bytes, pacing so no queue overflows.
void send_datagrams(int fd, const sockaddr_in* to, int count, std::size_t size) {
  std::vector<char> buf(size, 'c');
  for (int i = 0; i < count; ++i) {
    ssize_t n =
        to ? ::sendto(fd, buf.data(), size, 0, reinterpret_cast<const sockaddr*>(to), sizeof *to)
           : ::send(fd, buf.data(), size, 0);
    ASSERT_EQ(n, static_cast<ssize_t>(size));
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

int drain(int fd, int expect) {
  char buf[2048];
  int got = 0;
  while (got < expect) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    if (::recv(fd, buf, sizeof buf, 0) > 0) ++got;
  }
  return got;
}

TEST(CountersPrivileged, AgreeWithBytesSentWithinOnePercent) {
  MTW_REQUIRE_SANDBOX();
  ASSERT_GE(dc_netns_fd(), 0);
  auto host = open_host(test_config("mtwk"));
  ASSERT_TRUE(host);
  auto cell = Cell::create(*host, "1", ShaperRates{{1'000'000'000, 0}, {1'000'000'000, 0}});
  ASSERT_TRUE(cell.has_value());
  base::UniqueFd dc = bind_udp(dc_netns_fd(), kDcAddr, 7201);
  auto cs = cell->socket(AF_INET, SOCK_DGRAM);
  ASSERT_TRUE(dc.valid() && cs.has_value());
  int big = 16 << 20;
  ::setsockopt(dc.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  ::setsockopt(cs->get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(7201);
  sa.sin_addr = ip4(kDcAddr);
  ASSERT_EQ(::connect(cs->get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);

  constexpr int kCount = 3000;
  constexpr std::size_t kPayload = 1000;
  constexpr std::uint64_t kFrame = kPayload + 8 + 20 + 14;  // UDP + IPv4 + Ethernet
  const std::string name = cell->names().host_if;

  CellCounters before = counters_of(*host, name);
  send_datagrams(cs->get(), nullptr, kCount, kPayload);
  ASSERT_EQ(drain(dc.get(), kCount), kCount);
  // Download: the DC answers the NATed source it saw.
  sockaddr_in peer{};
  socklen_t plen = sizeof peer;
  char one;
  ASSERT_EQ(::send(cs->get(), "?", 1, 0), 1);
  ASSERT_EQ(::recvfrom(dc.get(), &one, 1, 0, reinterpret_cast<sockaddr*>(&peer), &plen), 1);
  send_datagrams(dc.get(), &peer, kCount, kPayload);
  ASSERT_EQ(drain(cs->get(), kCount), kCount);
  CellCounters after = counters_of(*host, name);

  const double up = static_cast<double>(after.upload_bytes - before.upload_bytes);
  const double down = static_cast<double>(after.download_bytes - before.download_bytes);
  const double expect_up = static_cast<double>(kCount * kFrame + (1 + 8 + 20 + 14));
  const double expect_down = static_cast<double>(kCount * kFrame);
  std::printf("counters: upload %.0f B (expected %.0f), download %.0f B (expected %.0f)\n", up,
              expect_up, down, expect_down);
  EXPECT_NEAR(up, expect_up, 0.01 * expect_up);
  EXPECT_NEAR(down, expect_down, 0.01 * expect_down);
  EXPECT_NEAR(static_cast<double>(after.upload_packets - before.upload_packets), kCount + 1,
              0.01 * kCount);
  EXPECT_NEAR(static_cast<double>(after.download_packets - before.download_packets), kCount,
              0.01 * kCount);
}

}  // namespace
}  // namespace mtw::netns::testing
