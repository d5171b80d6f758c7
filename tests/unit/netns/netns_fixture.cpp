#include "tests/unit/netns/netns_fixture.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "netns/link.h"
#include "netns/netns.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace mtw::netns::testing {

in_addr ip4(const char* text) {
  in_addr a{};
  inet_pton(AF_INET, text, &a);
  return a;
}

int dc_netns_fd() {
  static int fd = [] {
    // Leaked on purpose: the DC lives as long as the test process.
    static NamedNetns ns;
    static NlSocket inside;
    static auto host = NlSocket::connect();
    static Veth veth;
    auto n = NamedNetns::create(kRunDir, "dc", &inside);
    if (!n) {
      ADD_FAILURE() << n.error().to_string();
      return -1;
    }
    ns = std::move(*n);
    auto nsfd = ns.open();
    auto v = Veth::create(*host, "dcr", "dc0", nsfd->get());
    if (!v) {
      ADD_FAILURE() << v.error().to_string();
      return -1;
    }
    veth = std::move(*v);
    auto dc0 = link_index(inside, "dc0");
    bool ok =
        addr_add(*host, veth.ifindex(), ip4(kTransitRoot), 30).has_value() &&
        addr_add(inside, *dc0, ip4("192.0.2.2"), 30).has_value() &&
        link_set_up(inside, *dc0).has_value() &&
        link_set_up(inside, kLoopbackIfindex).has_value() &&
        addr_add(inside, kLoopbackIfindex, ip4(kDcAddr), 32).has_value() &&
        route_add(*host, veth.ifindex(), ip4("203.0.113.0"), 24, ip4("192.0.2.2")).has_value();
    if (!ok) ADD_FAILURE() << "DC addressing failed";
    return nsfd->release();
  }();
  return fd;
}

static base::UniqueFd bound(int netns_fd, int type, const char* ip, int port) {
  base::UniqueFd fd;
  if (netns_fd >= 0) {
    auto s = socket_in(netns_fd, AF_INET, type);
    if (!s) return fd;
    fd = std::move(*s);
  } else {
    fd.reset(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  }
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr = ip4(ip);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return base::UniqueFd();
  if (type == SOCK_STREAM && ::listen(fd.get(), 16) != 0) return base::UniqueFd();
  return fd;
}

base::UniqueFd listen_tcp(int netns_fd, const char* ip, int port) {
  return bound(netns_fd, SOCK_STREAM, ip, port);
}

base::UniqueFd bind_udp(int netns_fd, const char* ip, int port) {
  return bound(netns_fd, SOCK_DGRAM, ip, port);
}

int connect_from(const Cell& cell, const std::string& ip, int port, int timeout_ms) {
  auto child = cell.run(
      {self_exe(), "--helper", "connect", ip, std::to_string(port), std::to_string(timeout_ms)});
  if (!child) {
    ADD_FAILURE() << child.error().to_string();
    return -1;
  }
  auto rc = child->wait(timeout_ms + 5000);
  if (!rc) {
    ADD_FAILURE() << rc.error().to_string();
    return -1;
  }
  return *rc;
}

CellHostConfig test_config(const std::string& prefix, const std::string& pool4) {
  CellHostConfig cfg;
  cfg.prefix = prefix;
  cfg.run_dir = kRunDir;
  cfg.nft_table = prefix + "_t";
  static int calls = 0;
  const int n = calls++;
  cfg.pool.v4 = pool4.empty() ? "10." + std::to_string(100 + n % 100) + ".0.0/16" : pool4;
  cfg.pool.v6 = "fd6d:7477:" + std::to_string(1000 + n) + "::/48";
  cfg.ipv6_forwarding = true;  // sandbox only: no RA-learned routes to lose here
  return cfg;
}

std::vector<std::string> leftover_netns(const std::string& prefix) {
  std::vector<std::string> out;
  if (auto l = list_netns(kRunDir)) {
    for (auto& n : *l) {
      if (is_cell_name(prefix, n)) out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> leftover_links(const std::string& prefix) {
  std::vector<std::string> out;
  auto sk = NlSocket::connect();
  if (!sk) return {"<netlink error>"};
  if (auto l = list_links(*sk)) {
    for (auto& i : *l) {
      if (is_cell_name(prefix, i.name)) out.push_back(i.name);
    }
  }
  return out;
}

std::vector<std::string> leftover_links_after(const std::string& prefix, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = leftover_links(prefix);
  while (!left.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    left = leftover_links(prefix);
  }
  return left;
}

}  // namespace mtw::netns::testing
