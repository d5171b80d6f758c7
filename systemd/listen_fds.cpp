#include "systemd/listen_fds.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include <systemd/sd-daemon.h>

#include "base/log.h"

namespace mtw::systemd {
namespace {

const std::shared_ptr<spdlog::logger>& log() {
  static const auto l = base::logger("systemd");
  return l;
}

bool local_address(int fd, sockaddr_storage& ss) {
  socklen_t len = sizeof ss;
  std::memset(&ss, 0, sizeof ss);
  return ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
}

// Whether the socket's local address is exactly ep (family, address, port).
bool bound_to(const sockaddr_storage& ss, int family, const void* addr, std::uint16_t port) {
  if (ss.ss_family != family) return false;
  if (family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    return ntohs(a.sin_port) == port && std::memcmp(&a.sin_addr, addr, sizeof a.sin_addr) == 0;
  }
  const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
  return ntohs(a.sin6_port) == port && std::memcmp(&a.sin6_addr, addr, sizeof a.sin6_addr) == 0;
}

std::string describe(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return "fd " + std::to_string(fd);
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(ss);
    ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(ss);
    ::inet_ntop(AF_INET6, &a.sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(a.sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    const auto& a = reinterpret_cast<const sockaddr_un&>(ss);
    const std::size_t n =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    if (n == 0) return "unix:(unnamed)";
    if (a.sun_path[0] == '\0') return "unix:@" + std::string(a.sun_path + 1, n - 1);
    return "unix:" + std::string(a.sun_path, ::strnlen(a.sun_path, n));
  }
  return "fd " + std::to_string(fd);
}

}  // namespace

ListenFds ListenFds::take() {
  const int n = ::sd_listen_fds(1);  // also sets FD_CLOEXEC on them
  if (n < 0) {
    log()->warn("socket activation variables not understood, ignoring them errno={} ({})", -n,
                std::strerror(-n));
    return {};
  }
  std::vector<base::UniqueFd> fds;
  for (int i = 0; i < n; ++i) fds.emplace_back(SD_LISTEN_FDS_START + i);
  if (n > 0) log()->info("socket activation sockets={}", n);
  return ListenFds(std::move(fds));
}

base::Result<std::optional<base::UniqueFd>> ListenFds::claim(const proto::Endpoint& ep) {
  in6_addr a6{};
  in_addr a4{};
  int family = 0;
  const void* addr = nullptr;
  if (::inet_pton(AF_INET, ep.host.c_str(), &a4) == 1) {
    family = AF_INET;
    addr = &a4;
  } else if (::inet_pton(AF_INET6, ep.host.c_str(), &a6) == 1) {
    family = AF_INET6;
    addr = &a6;
  } else {
    return std::optional<base::UniqueFd>();  // a name: only literal addresses match
  }
  std::string bad;
  for (auto it = fds_.begin(); it != fds_.end(); ++it) {
    sockaddr_storage ss{};
    if (!local_address(it->get(), ss) || !bound_to(ss, family, addr, ep.port)) continue;
    // The same port may be passed twice (ListenStream= and ListenDatagram=):
    // take the listening stream, complain only when there is none.
    if (::sd_is_socket_inet(it->get(), family, SOCK_STREAM, 1, ep.port) > 0) {
      base::UniqueFd fd = std::move(*it);
      fds_.erase(it);
      return std::optional<base::UniqueFd>(std::move(fd));
    }
    if (bad.empty()) bad = "fd " + std::to_string(it->get());
  }
  if (!bad.empty()) {
    return base::fail(base::Errc::kBadInput, "passed socket " + bad + " bound to " +
                                                 proto::format_endpoint(ep) +
                                                 " is not a listening TCP socket");
  }
  return std::optional<base::UniqueFd>();
}

std::vector<std::string> ListenFds::release_unclaimed() {
  std::vector<std::string> out;
  out.reserve(fds_.size());
  for (auto& fd : fds_) out.push_back(describe(fd.get()));
  fds_.clear();
  return out;
}

}  // namespace mtw::systemd
