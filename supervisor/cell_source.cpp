#include "supervisor/cell_source.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

namespace mtw::supervisor {

using base::Errc;

namespace {

struct IfaddrsFree {
  void operator()(ifaddrs* p) const noexcept { ::freeifaddrs(p); }
};

bool is_v4(const std::string& a) {
  in_addr bin{};
  return ::inet_pton(AF_INET, a.c_str(), &bin) == 1;
}

// Whether `addr` (a literal of family `af`) is among `host`'s, compared as
// bytes: the configuration may spell an IPv6 address differently.
bool among(const std::string& addr, int af, const std::vector<std::string>& host) {
  unsigned char want[16], got[16];
  if (::inet_pton(af, addr.c_str(), want) != 1) return false;
  const std::size_t n = af == AF_INET ? 4 : 16;
  for (const auto& h : host)
    if (::inet_pton(af, h.c_str(), got) == 1 && std::memcmp(want, got, n) == 0) return true;
  return false;
}

bool is_v6_link_local(const std::string& a) {
  in6_addr bin{};
  return ::inet_pton(AF_INET6, a.c_str(), &bin) == 1 && IN6_IS_ADDR_LINKLOCAL(&bin);
}

}  // namespace

base::Result<std::vector<std::string>> interface_addresses(const std::string& ifname) {
  // getifaddrs lists addresses only: an interface without any would look
  // like a missing one, so the name is checked on its own.
  if (!ifname.empty() && ::if_nametoindex(ifname.c_str()) == 0)
    return base::fail(Errc::kNotFound, "interface " + ifname + " does not exist");
  ifaddrs* raw = nullptr;
  if (::getifaddrs(&raw) != 0)
    return tl::unexpected(base::Error{Errc::kSyscall, errno, "getifaddrs"});
  std::unique_ptr<ifaddrs, IfaddrsFree> list(raw);
  std::vector<std::string> out;
  for (const ifaddrs* i = list.get(); i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || (!ifname.empty() && ifname != i->ifa_name)) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    const int af = i->ifa_addr->sa_family;
    const void* bin = nullptr;
    if (af == AF_INET)
      bin = &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr;
    else if (af == AF_INET6)
      bin = &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr;
    if (bin != nullptr && ::inet_ntop(af, bin, buf, sizeof buf) != nullptr) out.emplace_back(buf);
  }
  return out;
}

base::Result<CellSource> resolve_cell_source(const EgressSource& src, bool ipv6_cells,
                                             const InterfaceAddresses& lookup) {
  if (src.interface.empty()) {
    CellSource out{src.source4, ipv6_cells ? src.source6 : ""};
    auto host = lookup("");
    if (!host) return tl::unexpected(host.error());
    for (auto [addr, af] : {std::pair{&out.addr4, AF_INET}, {&out.addr6, AF_INET6}}) {
      if (!addr->empty() && !among(*addr, af, *host))
        return base::fail(Errc::kBadInput, "source " + *addr + " is not an address of this host");
    }
    return out;
  }
  auto addrs = lookup(src.interface);
  if (!addrs) return tl::unexpected(addrs.error());
  CellSource out;
  for (const auto& a : *addrs) {
    if (is_v4(a)) {
      if (out.addr4.empty()) out.addr4 = a;
    } else if (ipv6_cells && out.addr6.empty() && !is_v6_link_local(a)) {
      out.addr6 = a;
    }
  }
  if (out.addr4.empty())
    return base::fail(Errc::kBadInput, "interface " + src.interface + " has no IPv4 address");
  if (ipv6_cells && out.addr6.empty()) {
    return base::fail(Errc::kBadInput, "interface " + src.interface +
                                           " has no IPv6 address outside fe80::/10 (the cells "
                                           "send IPv6: [cells] ipv6_prefix)");
  }
  return out;
}

}  // namespace mtw::supervisor
