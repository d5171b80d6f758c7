#include "netns/counters.h"

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include <netlink/socket.h>

namespace mtw::netns {

namespace {

constexpr int kDumpAttempts = 3;

std::uint64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

void fill(LinkCounters& c, const void* stats64, std::size_t len) {
  rtnl_link_stats64 st{};
  std::memcpy(&st, stats64, std::min(sizeof st, len));  // attribute may be 4-byte aligned only
  c.rx_bytes = st.rx_bytes;
  c.tx_bytes = st.tx_bytes;
  c.rx_packets = st.rx_packets;
  c.tx_packets = st.tx_packets;
  c.rx_dropped = st.rx_dropped;
  c.tx_dropped = st.tx_dropped;
}

template <class Body>
struct Request {
  nlmsghdr hdr;
  Body body;
};

}  // namespace

base::Result<CounterReader> CounterReader::open() {
  auto sk = NlSocket::connect();
  if (!sk) return tl::unexpected(sk.error());
  return CounterReader(std::move(*sk));
}

base::Result<void> CounterReader::dump_once(void* req, std::size_t len, bool* interrupted,
                                            const std::function<void(const nlmsghdr*)>& on_msg) {
  int fd = nl_socket_get_fd(sk_.get());
  auto* hdr = static_cast<nlmsghdr*>(req);
  hdr->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(fd, req, len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    return base::fail_errno("netlink dump send");
  }
  *interrupted = false;
  for (;;) {
    ssize_t n = ::recv(fd, buf_.data(), buf_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::fail_errno("netlink dump recv");
    }
    int left = static_cast<int>(n);
    for (auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data()); NLMSG_OK(h, left);
         h = NLMSG_NEXT(h, left)) {
      if (h->nlmsg_seq != seq_) continue;  // tail of an older, abandoned dump
      if ((h->nlmsg_flags & NLM_F_DUMP_INTR) != 0) *interrupted = true;
      if (h->nlmsg_type == NLMSG_DONE) return {};
      if (h->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        int err = -e->error;
        return tl::unexpected(
            base::Error{err == EPERM ? base::Errc::kPermission : base::Errc::kNetlink, err,
                        "netlink dump type=" + std::to_string(hdr->nlmsg_type)});
      }
      on_msg(h);
    }
  }
}

base::Result<void> CounterReader::sweep(std::string_view prefix,
                                        const std::function<void(const LinkCounters&)>& fn) {
  auto on_msg = [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return;
    const auto* ifi = static_cast<const ifinfomsg*>(NLMSG_DATA(h));
    int left = static_cast<int>(IFLA_PAYLOAD(h));
    const rtattr* stats = nullptr;
    bool named = false;
    // IFLA_IFNAME comes first in the kernel's layout: a foreign link is
    // rejected after one attribute, ours after the stats.
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, left) && !(named && stats); a = RTA_NEXT(a, left)) {
      if (a->rta_type == IFLA_IFNAME) {
        const char* name = static_cast<const char*>(RTA_DATA(a));
        std::string_view nv(name, strnlen(name, RTA_PAYLOAD(a)));
        if (nv.substr(0, prefix.size()) != prefix) return;
        scratch_.name.assign(nv);
        named = true;
      } else if (a->rta_type == IFLA_STATS64) {
        stats = a;
      }
    }
    if (!named || stats == nullptr) return;
    scratch_.ifindex = ifi->ifi_index;
    fill(scratch_, RTA_DATA(stats), RTA_PAYLOAD(stats));
    fn(scratch_);
  };
  for (int attempt = 0;; ++attempt) {
    Request<ifinfomsg> req{};
    req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof req.body);
    req.hdr.nlmsg_type = RTM_GETLINK;
    req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.body.ifi_family = AF_UNSPEC;
    bool intr = false;
    if (auto r = dump_once(&req, sizeof req, &intr, on_msg); !r) return r;
    if (!intr || attempt + 1 == kDumpAttempts) return {};
  }
}

base::Result<void> CounterReader::stats_once(bool* interrupted,
                                             const std::function<void(const LinkCounters&)>& fn) {
  scratch_.name.clear();
  auto on_msg = [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWSTATS || h->nlmsg_len < NLMSG_LENGTH(sizeof(if_stats_msg))) return;
    const auto* ism = static_cast<const if_stats_msg*>(NLMSG_DATA(h));
    int left = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(if_stats_msg)));
    auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(ism) +
                                              NLMSG_ALIGN(sizeof(if_stats_msg)));
    for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
      if (a->rta_type != IFLA_STATS_LINK_64) continue;  // skips the 64-bit alignment pad
      scratch_.ifindex = static_cast<int>(ism->ifindex);
      fill(scratch_, RTA_DATA(a), RTA_PAYLOAD(a));
      fn(scratch_);
      return;
    }
  };
  Request<if_stats_msg> req{};
  req.hdr.nlmsg_len = NLMSG_LENGTH(sizeof req.body);
  req.hdr.nlmsg_type = RTM_GETSTATS;
  req.hdr.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.body.family = AF_UNSPEC;
  req.body.filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64);
  return dump_once(&req, sizeof req, interrupted, on_msg);
}

base::Result<void> CounterReader::sweep_stats(const std::function<void(const LinkCounters&)>& fn) {
  for (int attempt = 0;; ++attempt) {
    bool intr = false;
    if (auto r = stats_once(&intr, fn); !r) return r;
    if (!intr || attempt + 1 == kDumpAttempts) return {};
  }
}

base::Result<void> CounterReader::snapshot(CounterSnapshot& out) {
  const std::uint64_t cpu0 = thread_cpu_ns();
  out.started = std::chrono::steady_clock::now();
  out.complete = false;
  auto keep = [&](const LinkCounters& c) { out.links.push_back(c); };
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    out.links.clear();
    bool intr = false;
    if (auto r = stats_once(&intr, keep); !r) return r;
    if (!intr) {
      out.complete = true;
      break;
    }
  }
  out.wall = std::chrono::steady_clock::now() - out.started;
  out.cpu = std::chrono::nanoseconds(thread_cpu_ns() - cpu0);
  return {};
}

}  // namespace mtw::netns
