#include "doctor/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "proto/socks.h"

namespace mtw::doctor {

namespace {

using base::Errc;
using base::fail;
using base::Result;
using Clock = std::chrono::steady_clock;

int left_ms(Clock::time_point deadline) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms <= 0 ? 0 : static_cast<int>(ms);
}

void set_blocking_timeouts(int fd, int timeout_ms) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Result<base::UniqueFd> connect_one(const addrinfo* a, Clock::time_point deadline,
                                   const std::string& where) {
  base::UniqueFd fd(::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return base::fail_errno("connect " + where + ": socket");
  const int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS)
    return base::fail_errno("connect " + where);
  for (;;) {
    pollfd p{fd.get(), POLLOUT, 0};
    const int r = ::poll(&p, 1, left_ms(deadline));
    if (r > 0) break;
    if (r == 0) return fail(Errc::kTimeout, "connect " + where + ": timed out");
    if (errno != EINTR) return base::fail_errno("connect " + where + ": poll");
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) return base::fail_errno("connect " + where, err);
  return fd;
}

}  // namespace

Result<base::UniqueFd> connect_tcp(const proto::Endpoint& ep, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  const std::string where = proto::format_endpoint(ep);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int gai = ::getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res);
  if (gai != 0) return fail(Errc::kNotFound, "resolve " + ep.host + ": " + ::gai_strerror(gai));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  Result<base::UniqueFd> last = fail(Errc::kNotFound, "resolve " + ep.host + ": no address");
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    last = connect_one(a, deadline, where);
    if (last) {
      set_blocking_timeouts(last->get(), std::max(1, left_ms(deadline)));
      return last;
    }
    if (left_ms(deadline) == 0) break;
  }
  return last;
}

Answer exchange(const proto::Endpoint& ep, proto::ByteSpan payload, const ExchangeOptions& o) {
  Answer a;
  auto fd = connect_tcp(ep, o.connect_timeout_ms);
  if (!fd) {
    a.end = EndKind::kNoConnect;
    a.error = fd.error().to_string();
    return a;
  }
  const int flags = ::fcntl(fd->get(), F_GETFL);
  (void)::fcntl(fd->get(), F_SETFL, flags | O_NONBLOCK);
  for (std::size_t off = 0; off < payload.size();) {
    const ssize_t w = ::send(fd->get(), payload.data() + off, payload.size() - off, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd->get(), POLLOUT, 0};
      (void)::poll(&p, 1, 100);
      continue;
    }
    if (errno == ECONNRESET || errno == EPIPE) {
      a.end = EndKind::kRst;
      return a;
    }
    a.end = EndKind::kNoConnect;
    a.error = std::string("send: ") + std::strerror(errno);
    return a;
  }
  const auto hard = Clock::now() + std::chrono::milliseconds(o.total_ms);
  auto quiet = Clock::now() + std::chrono::milliseconds(o.quiet_ms);
  for (;;) {
    const int wait = std::min(left_ms(hard), left_ms(quiet));
    if (wait == 0) {
      a.end = EndKind::kOpen;
      return a;
    }
    pollfd p{fd->get(), POLLIN, 0};
    const int r = ::poll(&p, 1, wait);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;  // the loop head sees the deadline
    char buf[16384];
    const ssize_t n = ::recv(fd->get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n < 0) {
      a.end = errno == ECONNRESET ? EndKind::kRst : EndKind::kFin;
      return a;
    }
    if (n == 0) {
      a.end = EndKind::kFin;
      return a;
    }
    if (a.data.size() < 256 * 1024)
      a.data.insert(a.data.end(), reinterpret_cast<std::byte*>(buf),
                    reinterpret_cast<std::byte*>(buf) + n);
    quiet = Clock::now() + std::chrono::milliseconds(o.quiet_ms);
  }
}

std::set<std::string> local_addresses() {
  std::set<std::string> out;
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return out;
  for (ifaddrs* i = ifs; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                  sizeof buf);
    } else {
      continue;
    }
    out.insert(buf);
  }
  ::freeifaddrs(ifs);
  return out;
}

Result<NtpReading> sntp_query(const proto::Endpoint& server, int timeout_ms,
                              double (*now_unix_s)()) {
  constexpr double kNtpToUnix = 2208988800.0;  // seconds from 1900 to 1970
  const std::string where = proto::format_endpoint(server);
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const int gai =
      ::getaddrinfo(server.host.c_str(), std::to_string(server.port).c_str(), &hints, &res);
  if (gai != 0) return fail(Errc::kNotFound, "ntp " + where + ": " + ::gai_strerror(gai));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  base::UniqueFd fd(::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return base::fail_errno("ntp " + where + ": socket");
  if (::connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0)
    return base::fail_errno("ntp " + where + ": connect");
  unsigned char pkt[48] = {};
  pkt[0] = 0x23;  // LI 0, version 4, mode 3 (client)
  const double t1 = now_unix_s();
  const auto whole = static_cast<std::uint32_t>(static_cast<std::uint64_t>(t1 + kNtpToUnix));
  const auto frac = static_cast<std::uint32_t>(
      (t1 - static_cast<double>(static_cast<std::int64_t>(t1))) * 4294967296.0);
  for (int i = 0; i < 4; ++i) {
    pkt[40 + i] = static_cast<unsigned char>(whole >> (24 - 8 * i));
    pkt[44 + i] = static_cast<unsigned char>(frac >> (24 - 8 * i));
  }
  if (::send(fd.get(), pkt, sizeof pkt, 0) != static_cast<ssize_t>(sizeof pkt))
    return base::fail_errno("ntp " + where + ": send");
  pollfd p{fd.get(), POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return fail(Errc::kTimeout, "ntp " + where + ": no answer");
  unsigned char in[48];
  const ssize_t n = ::recv(fd.get(), in, sizeof in, 0);
  const double t4 = now_unix_s();
  if (n < 0) return base::fail_errno("ntp " + where + ": recv");
  // Our originate time echoed, server mode (4), a stratum that is synchronised.
  if (n != 48 || (in[0] & 7) != 4 || in[1] == 0 || in[1] > 15 ||
      std::memcmp(in + 24, pkt + 40, 8) != 0)
    return fail(Errc::kBadInput, "ntp " + where + ": not a valid server answer");
  auto stamp = [&](int at) {
    std::uint32_t s = 0, f = 0;
    for (int i = 0; i < 4; ++i) {
      s = (s << 8) | in[at + i];
      f = (f << 8) | in[at + 4 + i];
    }
    return static_cast<double>(s) - kNtpToUnix + static_cast<double>(f) / 4294967296.0;
  };
  const double t2 = stamp(32), t3 = stamp(40);
  NtpReading r;
  r.offset_s = ((t2 - t1) + (t3 - t4)) / 2;
  r.round_trip_s = (t4 - t1) - (t3 - t2);
  return r;
}

Result<void> socks_connect(const proto::UpstreamSpec& up, const proto::Endpoint& target,
                           int timeout_ms) {
  namespace socks = proto::socks;
  auto t = socks::make_target(target.host, target.port);
  if (!t) return tl::unexpected(t.error());
  const auto version =
      up.type == proto::UpstreamType::kSocks4 ? socks::Version::kSocks4 : socks::Version::kSocks5;
  auto hs = socks::ClientHandshake::start(version, *t, {up.username, up.password});
  if (!hs) return tl::unexpected(hs.error());
  auto fd = connect_tcp(up.address, timeout_ms);
  if (!fd) return tl::unexpected(fd.error());
  auto send_all = [&](const proto::Bytes& b) -> Result<void> {
    if (::send(fd->get(), b.data(), b.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(b.size()))
      return base::fail_errno("socks send");
    return {};
  };
  if (auto s = send_all(hs->first_request()); !s) return s;
  proto::Bytes buf;
  std::size_t need = hs->first_need();
  for (;;) {
    while (buf.size() < need) {
      std::byte tmp[512];
      const ssize_t n = ::recv(fd->get(), tmp, std::min(sizeof tmp, need - buf.size()), 0);
      if (n == 0) return fail(Errc::kBadHandshake, "socks: the proxy closed the connection");
      if (n < 0)
        return errno == EAGAIN ? fail(Errc::kTimeout, "socks: no answer in time")
                               : base::fail_errno("socks recv");
      buf.insert(buf.end(), tmp, tmp + n);
    }
    auto step = hs->feed(buf);
    if (!step) return tl::unexpected(step.error());
    buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(step->consumed));
    if (!step->send.empty())
      if (auto s = send_all(step->send); !s) return s;
    if (step->done) return {};
    need = step->need;
  }
}

}  // namespace mtw::doctor
