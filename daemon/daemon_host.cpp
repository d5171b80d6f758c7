// The start's checks against the host that the configuration file alone
// cannot show (Daemon::start runs them before anything is created).
#include <arpa/inet.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/resource.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "daemon/daemon_impl.h"
#include "netns/reconcile.h"

namespace mtw::daemon {
namespace {

bool in_cidr(const Cidr& c, const sockaddr* sa) {
  const std::uint8_t* a = nullptr;
  if (!c.v6 && sa->sa_family == AF_INET) {
    a = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
  } else if (c.v6 && sa->sa_family == AF_INET6) {
    a = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr.s6_addr;
  } else {
    return false;
  }
  for (int bit = 0; bit < c.prefix; ++bit) {
    const int byte = bit / 8, mask = 0x80 >> (bit % 8);
    if ((a[byte] & mask) != (c.addr[byte] & mask)) return false;
  }
  return true;
}

}  // namespace

// Clashes with the host that the file alone cannot show: a cell pool that
// overlaps an address already on this host, and a uid/gid range that holds
// existing accounts (their files would become the workers').
base::Result<void> check_host_clashes(const CellsConfig& c) {
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return base::fail_errno("cells: getifaddrs");
  {
    std::string clash;
    for (ifaddrs* i = ifs; i && clash.empty(); i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      const std::string name = i->ifa_name ? i->ifa_name : "?";
      if (netns::is_cell_name(c.name_prefix, name)) continue;  // a leftover cell: reconciled later
      for (const Cidr* pool : {&c.ipv4_pool, c.ipv6_prefix ? &*c.ipv6_prefix : nullptr}) {
        if (pool && in_cidr(*pool, i->ifa_addr)) {
          char buf[INET6_ADDRSTRLEN] = {};
          const void* a =
              i->ifa_addr->sa_family == AF_INET
                  ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr)
                  : static_cast<const void*>(
                        &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr);
          ::inet_ntop(i->ifa_addr->sa_family, a, buf, sizeof buf);
          clash = "cells pool " + format_cidr(*pool) + " overlaps address " + buf + " on " + name +
                  " (choose another [cells] ipv4_pool / ipv6_prefix)";
        }
      }
    }
    ::freeifaddrs(ifs);
    if (!clash.empty()) return base::fail(base::Errc::kExists, clash);
  }
  const std::uint64_t first = c.uid_first, last = first + c.uid_count - 1;
  ::setpwent();
  std::string clash;
  while (passwd* pw = ::getpwent()) {
    if (pw->pw_uid >= first && pw->pw_uid <= last) {
      clash = "cells uid range " + std::to_string(first) + ".." + std::to_string(last) +
              " holds uid " + std::to_string(pw->pw_uid) + " of account \"" + pw->pw_name +
              "\" (choose another [cells] uid_first)";
      break;
    }
  }
  ::endpwent();
  if (!clash.empty()) return base::fail(base::Errc::kExists, clash);
  const std::uint64_t gfirst = c.gid_first, glast = gfirst + c.uid_count - 1;
  ::setgrent();
  while (group* gr = ::getgrent()) {
    if (gr->gr_gid >= gfirst && gr->gr_gid <= glast) {
      clash = "cells gid range " + std::to_string(gfirst) + ".." + std::to_string(glast) +
              " holds gid " + std::to_string(gr->gr_gid) + " of group \"" + gr->gr_name +
              "\" (choose another [cells] gid_first)";
      break;
    }
  }
  ::endgrent();
  if (!clash.empty()) return base::fail(base::Errc::kExists, clash);
  return {};
}

void raise_nofile_soft_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  const rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    log()->warn("descriptor limit not raised soft={} hard={} errno={}", was, rl.rlim_max, errno);
    return;
  }
  log()->debug("descriptor limit raised soft={} to={}", was, rl.rlim_max);
}

}  // namespace mtw::daemon
