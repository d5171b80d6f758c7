#include "netns/link.h"

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include <cstring>

#include <memory>
#include <utility>

#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "netns/names.h"

namespace mtw::netns {

using base::Errc;

namespace {

struct LinkPut {
  void operator()(rtnl_link* l) const noexcept { rtnl_link_put(l); }
};
struct AddrPut {
  void operator()(rtnl_addr* a) const noexcept { rtnl_addr_put(a); }
};
struct NlAddrPut {
  void operator()(nl_addr* a) const noexcept { nl_addr_put(a); }
};
struct RoutePut {
  void operator()(rtnl_route* r) const noexcept { rtnl_route_put(r); }
};
struct NeighPut {
  void operator()(rtnl_neigh* n) const noexcept { rtnl_neigh_put(n); }
};
struct CachePut {
  void operator()(nl_cache* c) const noexcept { nl_cache_free(c); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrPut>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighPut>;
using CachePtr = std::unique_ptr<nl_cache, CachePut>;

std::string addr_text(int family, const void* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes, buf, sizeof buf) == nullptr) return "?";
  return buf;
}

base::Result<void> do_neigh_add(NlSocket& sk, int ifindex, int family, const void* dst,
                                std::size_t len, const MacAddr& mac) {
  const std::string what =
      "neighbour add ifindex=" + std::to_string(ifindex) + " dst=" + addr_text(family, dst);
  NeighPtr neigh(rtnl_neigh_alloc());
  NlAddrPtr d(nl_addr_build(family, dst, len));
  NlAddrPtr ll(nl_addr_build(AF_LLC, mac.data(), mac.size()));
  if (!neigh || !d || !ll) return base::fail(Errc::kInternal, "out of memory building " + what);
  rtnl_neigh_set_ifindex(neigh.get(), ifindex);
  rtnl_neigh_set_family(neigh.get(), family);
  if (int err = rtnl_neigh_set_dst(neigh.get(), d.get()); err < 0) {
    return tl::unexpected(nl_error(err, what));
  }
  rtnl_neigh_set_lladdr(neigh.get(), ll.get());
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  // REPLACE: an entry the kernel learned meanwhile (or ours from before)
  // becomes the permanent one instead of failing with EEXIST.
  if (int err = rtnl_neigh_add(sk.get(), neigh.get(), NLM_F_CREATE | NLM_F_REPLACE); err < 0) {
    return tl::unexpected(nl_error(err, what));
  }
  return {};
}

base::Result<void> do_addr_add(NlSocket& sk, int ifindex, int family, const void* bytes,
                               std::size_t len, int prefix_len) {
  AddrPtr addr(rtnl_addr_alloc());
  NlAddrPtr local(nl_addr_build(family, bytes, len));
  if (!addr || !local) return base::fail(Errc::kInternal, "out of memory building address");
  nl_addr_set_prefixlen(local.get(), prefix_len);
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0)
    return tl::unexpected(nl_error(err, "addr set"));
  if (family == AF_INET6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  if (int err = rtnl_addr_add(sk.get(), addr.get(), 0); err < 0) {
    return tl::unexpected(nl_error(err, "addr add ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

base::Result<void> do_route_add(NlSocket& sk, int ifindex, int family, const void* dst,
                                const void* gw, std::size_t len, int prefix_len) {
  RoutePtr route(rtnl_route_alloc());
  NlAddrPtr d(nl_addr_build(family, dst, len));
  NlAddrPtr g(nl_addr_build(family, gw, len));
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!route || !d || !g || nh == nullptr) {
    if (nh != nullptr) rtnl_route_nh_free(nh);
    return base::fail(Errc::kInternal, "out of memory building route");
  }
  nl_addr_set_prefixlen(d.get(), prefix_len);
  rtnl_route_set_family(route.get(), static_cast<std::uint8_t>(family));
  rtnl_route_set_dst(route.get(), d.get());
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_nh_set_ifindex(nh, ifindex);
  rtnl_route_nh_set_gateway(nh, g.get());
  rtnl_route_add_nexthop(route.get(), nh);  // route owns nh now
  if (int err = rtnl_route_add(sk.get(), route.get(), NLM_F_EXCL); err < 0) {
    return tl::unexpected(nl_error(err, "route add ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

}  // namespace

base::Result<int> link_index(NlSocket& sk, const std::string& name) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sk.get(), 0, name.c_str(), &raw); err < 0) {
    return tl::unexpected(nl_error(err, "link lookup name=" + name));
  }
  LinkPtr link(raw);
  return rtnl_link_get_ifindex(link.get());
}

base::Result<void> link_set_up(NlSocket& sk, int ifindex) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return base::fail(Errc::kInternal, "rtnl_link_alloc");
  rtnl_link_set_ifindex(link.get(), ifindex);
  rtnl_link_set_flags(link.get(), IFF_UP);
  // RTM_NEWLINK without NLM_F_EXCL on an existing ifindex = "ip link set up".
  if (int err = rtnl_link_add(sk.get(), link.get(), 0); err < 0) {
    return tl::unexpected(nl_error(err, "link up ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

base::Result<void> link_delete(NlSocket& sk, const std::string& name) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return base::fail(Errc::kInternal, "rtnl_link_alloc");
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sk.get(), link.get());
  if (err < 0 && !nl_is_gone(err)) return tl::unexpected(nl_error(err, "link delete name=" + name));
  return {};
}

base::Result<void> link_delete(NlSocket& sk, int ifindex) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return base::fail(Errc::kInternal, "rtnl_link_alloc");
  rtnl_link_set_ifindex(link.get(), ifindex);
  int err = rtnl_link_delete(sk.get(), link.get());
  if (err < 0 && !nl_is_gone(err)) {
    return tl::unexpected(nl_error(err, "link delete ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

base::Result<std::vector<LinkInfo>> list_links(NlSocket& sk) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sk.get(), AF_UNSPEC, &raw); err < 0) {
    return tl::unexpected(nl_error(err, "link dump"));
  }
  CachePtr cache(raw);
  std::vector<LinkInfo> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* l = reinterpret_cast<rtnl_link*>(o);
    const char* kind = rtnl_link_get_type(l);
    out.push_back(LinkInfo{rtnl_link_get_name(l), rtnl_link_get_ifindex(l), kind ? kind : ""});
  }
  return out;
}

base::Result<std::vector<in_addr>> link_addrs4(NlSocket& sk, int ifindex) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sk.get(), &raw); err < 0) {
    return tl::unexpected(nl_error(err, "addr dump"));
  }
  CachePtr cache(raw);
  std::vector<in_addr> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_family(a) != AF_INET) continue;
    nl_addr* local = rtnl_addr_get_local(a);
    if (local == nullptr || nl_addr_get_len(local) != sizeof(in_addr)) continue;
    in_addr v{};
    std::memcpy(&v, nl_addr_get_binary_addr(local), sizeof v);
    out.push_back(v);
  }
  return out;
}

base::Result<void> addr_add(NlSocket& sk, int ifindex, const in_addr& a, int prefix_len) {
  return do_addr_add(sk, ifindex, AF_INET, &a, sizeof a, prefix_len);
}

base::Result<void> addr_add(NlSocket& sk, int ifindex, const in6_addr& a, int prefix_len) {
  return do_addr_add(sk, ifindex, AF_INET6, &a, sizeof a, prefix_len);
}

base::Result<void> route_add(NlSocket& sk, int ifindex, const in_addr& dst, int prefix_len,
                             const in_addr& gw) {
  return do_route_add(sk, ifindex, AF_INET, &dst, &gw, sizeof dst, prefix_len);
}

base::Result<void> route_add(NlSocket& sk, int ifindex, const in6_addr& dst, int prefix_len,
                             const in6_addr& gw) {
  return do_route_add(sk, ifindex, AF_INET6, &dst, &gw, sizeof dst, prefix_len);
}

base::Result<MacAddr> link_mac(NlSocket& sk, int ifindex) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sk.get(), ifindex, nullptr, &raw); err < 0) {
    return tl::unexpected(nl_error(err, "link lookup ifindex=" + std::to_string(ifindex)));
  }
  LinkPtr link(raw);
  nl_addr* a = rtnl_link_get_addr(link.get());
  MacAddr mac{};
  if (a == nullptr || nl_addr_get_len(a) != mac.size()) {
    return base::fail(Errc::kNetlink, "link has no MAC address ifindex=" + std::to_string(ifindex));
  }
  std::memcpy(mac.data(), nl_addr_get_binary_addr(a), mac.size());
  return mac;
}

base::Result<void> neigh_add_permanent(NlSocket& sk, int ifindex, const in_addr& dst,
                                       const MacAddr& mac) {
  return do_neigh_add(sk, ifindex, AF_INET, &dst, sizeof dst, mac);
}

base::Result<void> neigh_add_permanent(NlSocket& sk, int ifindex, const in6_addr& dst,
                                       const MacAddr& mac) {
  return do_neigh_add(sk, ifindex, AF_INET6, &dst, sizeof dst, mac);
}

base::Result<std::vector<NeighInfo>> list_neighs(NlSocket& sk) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_neigh_alloc_cache(sk.get(), &raw); err < 0) {
    return tl::unexpected(nl_error(err, "neighbour dump"));
  }
  CachePtr cache(raw);
  std::vector<NeighInfo> out;
  for (nl_object* o = nl_cache_get_first(cache.get()); o != nullptr; o = nl_cache_get_next(o)) {
    auto* n = reinterpret_cast<rtnl_neigh*>(o);
    const int family = rtnl_neigh_get_family(n);
    nl_addr* dst = rtnl_neigh_get_dst(n);
    if ((family != AF_INET && family != AF_INET6) || dst == nullptr) continue;
    if (nl_addr_get_len(dst) != (family == AF_INET ? sizeof(in_addr) : sizeof(in6_addr))) continue;
    NeighInfo info;
    info.ifindex = rtnl_neigh_get_ifindex(n);
    info.dst = addr_text(family, nl_addr_get_binary_addr(dst));
    info.state = rtnl_neigh_get_state(n);
    nl_addr* ll = rtnl_neigh_get_lladdr(n);
    if (ll != nullptr && nl_addr_get_len(ll) == info.mac.size()) {
      info.has_mac = true;
      std::memcpy(info.mac.data(), nl_addr_get_binary_addr(ll), info.mac.size());
    }
    out.push_back(std::move(info));
  }
  return out;
}

Veth::Veth(Veth&& o) noexcept
    : sk_(std::exchange(o.sk_, nullptr)), name_(std::move(o.name_)), ifindex_(o.ifindex_) {}

Veth& Veth::operator=(Veth&& o) noexcept {
  if (this != &o) {
    (void)remove();
    sk_ = std::exchange(o.sk_, nullptr);
    name_ = std::move(o.name_);
    ifindex_ = o.ifindex_;
  }
  return *this;
}

Veth::~Veth() { (void)remove(); }

base::Result<Veth> Veth::create(NlSocket& sk, const std::string& host_if,
                                const std::string& peer_if, int peer_netns_fd) {
  if (!valid_ifname(host_if) || !valid_ifname(peer_if)) {
    return base::fail(Errc::kBadInput, "bad interface name host=" + host_if + " peer=" + peer_if);
  }
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) return base::fail(Errc::kInternal, "rtnl_link_veth_alloc");
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));  // a counted reference
  // No IFF_UP here: veth_open() fails with ENOTCONN while the pair is still
  // being registered, so the caller brings both ends up afterwards.
  rtnl_link_set_name(link.get(), host_if.c_str());
  rtnl_link_set_name(peer.get(), peer_if.c_str());
  // Creating the peer straight inside the cell saves a move and means the
  // peer name never has to be unique on the host.
  rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
  if (int err = rtnl_link_add(sk.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return tl::unexpected(nl_error(err, "veth create host=" + host_if));
  }
  Veth v;
  v.sk_ = &sk;
  v.name_ = host_if;
  // The create reply carries no ifindex; if_nametoindex would use this
  // thread's namespace, which may differ from the socket's, so ask the socket.
  auto idx = link_index(sk, host_if);
  if (!idx) return tl::unexpected(idx.error());  // ~Veth deletes the pair
  v.ifindex_ = *idx;
  if (auto r = link_set_up(sk, v.ifindex_); !r) return tl::unexpected(r.error());
  return v;
}

Veth Veth::adopt(NlSocket& sk, std::string host_if, int ifindex) noexcept {
  Veth v;
  v.sk_ = &sk;
  v.name_ = std::move(host_if);
  v.ifindex_ = ifindex;
  return v;
}

base::Result<void> Veth::remove() {
  if (sk_ == nullptr) return {};
  auto r = link_delete(*sk_, name_);
  if (r) sk_ = nullptr;
  return r;
}

}  // namespace mtw::netns
