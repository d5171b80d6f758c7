// Links, addresses and routes over rtnetlink (libnl-route). Every call acts
// in the namespace its NlSocket is bound to.
// Thread-safety: as the NlSocket passed in (one thread at a time).
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "netns/nl.h"

namespace mtw::netns {

// Loopback is ifindex 1 in every network namespace (LOOPBACK_IFINDEX).
inline constexpr int kLoopbackIfindex = 1;

struct LinkInfo {
  std::string name;
  int ifindex = 0;
  std::string kind;  // "veth", "ifb", "" for physical/loopback
};

// ifindex of `name`; kNotFound when absent.
[[nodiscard]] base::Result<int> link_index(NlSocket& sk, const std::string& name);
// Sets IFF_UP on `ifindex`.
[[nodiscard]] base::Result<void> link_set_up(NlSocket& sk, int ifindex);
// Deletes link `name`; already gone is success. Deleting one end of a veth
// deletes its peer, wherever it lives.
[[nodiscard]] base::Result<void> link_delete(NlSocket& sk, const std::string& name);
// Same by ifindex (never hits a newer link that reused the name). Note the
// kernel answers only after an RCU grace period (tens of ms on a busy host).
[[nodiscard]] base::Result<void> link_delete(NlSocket& sk, int ifindex);
// All links of the socket's namespace (one dump).
[[nodiscard]] base::Result<std::vector<LinkInfo>> list_links(NlSocket& sk);
// IPv4 addresses configured on `ifindex`.
[[nodiscard]] base::Result<std::vector<in_addr>> link_addrs4(NlSocket& sk, int ifindex);

// Adds an address; IPv6 ones skip DAD (a fresh point-to-point link has no
// one to collide with, and DAD would hold the address tentative for ~1 s).
[[nodiscard]] base::Result<void> addr_add(NlSocket& sk, int ifindex, const in_addr& a,
                                          int prefix_len);
[[nodiscard]] base::Result<void> addr_add(NlSocket& sk, int ifindex, const in6_addr& a,
                                          int prefix_len);

// Adds a route to dst/prefix_len (prefix_len 0 = default route) via `gw` on `ifindex`.
[[nodiscard]] base::Result<void> route_add(NlSocket& sk, int ifindex, const in_addr& dst,
                                           int prefix_len, const in_addr& gw);
[[nodiscard]] base::Result<void> route_add(NlSocket& sk, int ifindex, const in6_addr& dst,
                                           int prefix_len, const in6_addr& gw);

using MacAddr = std::array<std::uint8_t, 6>;

// Hardware (MAC) address of `ifindex`; kNotFound when the link is absent,
// kNetlink when it has no 6-byte address.
[[nodiscard]] base::Result<MacAddr> link_mac(NlSocket& sk, int ifindex);

// Adds (or replaces: NLM_F_CREATE|NLM_F_REPLACE, so repeating it is
// harmless) a NUD_PERMANENT neighbour entry dst -> mac on `ifindex`. Since
// Linux 4.20 permanent entries are exempt from neighbour gc and do not count
// against gc_thresh3, and no ARP/ND is ever sent for dst on that link.
[[nodiscard]] base::Result<void> neigh_add_permanent(NlSocket& sk, int ifindex, const in_addr& dst,
                                                     const MacAddr& mac);
[[nodiscard]] base::Result<void> neigh_add_permanent(NlSocket& sk, int ifindex, const in6_addr& dst,
                                                     const MacAddr& mac);

struct NeighInfo {
  int ifindex = 0;
  std::string dst;  // text form ("10.200.0.2", "fd6d::2")
  int state = 0;    // NUD_* bits (linux/neighbour.h)
  bool has_mac = false;
  MacAddr mac{};
};
// Every IPv4 and IPv6 neighbour entry of the socket's namespace (one dump).
[[nodiscard]] base::Result<std::vector<NeighInfo>> list_neighs(NlSocket& sk);

// Owns the host end of a veth pair whose other end was created directly in
// another namespace. The destructor deletes the host end (the peer goes with
// it). `sk` is borrowed and must outlive the object. Move-only.
class Veth {
 public:
  Veth() = default;
  Veth(Veth&& o) noexcept;
  Veth& operator=(Veth&& o) noexcept;
  Veth(const Veth&) = delete;
  ~Veth();

  // Creates host_if here (up) and peer_if inside `peer_netns_fd` (down:
  // bring it up through a socket in that namespace).
  // kExists when host_if (or peer_if in the peer namespace) exists;
  // kPermission without CAP_NET_ADMIN; kBadInput for a bad name.
  [[nodiscard]] static base::Result<Veth> create(NlSocket& sk, const std::string& host_if,
                                                 const std::string& peer_if, int peer_netns_fd);
  // Takes ownership of an existing host end (reconciliation).
  [[nodiscard]] static Veth adopt(NlSocket& sk, std::string host_if, int ifindex) noexcept;

  [[nodiscard]] base::Result<void> remove();
  void release() noexcept { sk_ = nullptr; }
  const std::string& name() const noexcept { return name_; }
  int ifindex() const noexcept { return ifindex_; }
  bool valid() const noexcept { return sk_ != nullptr; }

 private:
  NlSocket* sk_ = nullptr;
  std::string name_;
  int ifindex_ = 0;
};

}  // namespace mtw::netns
