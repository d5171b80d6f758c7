#include "netns/shaper.h"

#include <linux/pkt_sched.h>

#include <memory>
#include <string>

#include <netlink/route/class.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/fifo.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>

namespace mtw::netns {

using base::Errc;

namespace {

constexpr std::uint32_t kRootHandle = TC_HANDLE(1, 0);
constexpr std::uint32_t kClassHandle = TC_HANDLE(1, 1);
constexpr std::uint32_t kLeafHandle = TC_HANDLE(0x10, 0);

struct QdiscPut {
  void operator()(rtnl_qdisc* q) const noexcept { rtnl_qdisc_put(q); }
};
struct ClassPut {
  void operator()(rtnl_class* c) const noexcept { rtnl_class_put(c); }
};
struct CachePut {
  void operator()(nl_cache* c) const noexcept { nl_cache_free(c); }
};

// Sends RTM_NEWTCLASS for 1:1: NLM_F_CREATE|NLM_F_EXCL on install; 0 on
// change, so changing a missing class fails (ENOENT) instead of creating it.
base::Result<void> put_class(NlSocket& sk, int ifindex, const Rate& rate, int flags) {
  auto burst = effective_burst(rate);
  if (!burst) return tl::unexpected(burst.error());
  std::unique_ptr<rtnl_class, ClassPut> cls(rtnl_class_alloc());
  if (!cls) return base::fail(Errc::kInternal, "rtnl_class_alloc");
  rtnl_tc* tc = TC_CAST(cls.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, kRootHandle);
  rtnl_tc_set_handle(tc, kClassHandle);
  if (int err = rtnl_tc_set_kind(tc, "htb"); err < 0)
    return tl::unexpected(nl_error(err, "htb kind"));
  // The class runs at the wire rate that carries the payload rate (rate.h);
  // burst, quantum and queue stay sized from the payload rate (4.6 % apart).
  std::uint64_t bytes_per_sec = wire_bps(rate.bits_per_sec) / 8;
  rtnl_htb_set_rate64(cls.get(), bytes_per_sec);
  rtnl_htb_set_ceil64(cls.get(), bytes_per_sec);
  rtnl_htb_set_rbuffer(cls.get(), *burst);
  rtnl_htb_set_cbuffer(cls.get(), *burst);
  rtnl_htb_set_quantum(cls.get(), quantum_for_rate(rate.bits_per_sec));
  if (int err = rtnl_class_add(sk.get(), cls.get(), flags); err < 0) {
    return tl::unexpected(nl_error(err, "htb class ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

// Sends RTM_NEWQDISC for bfifo 10: under class 1:1. On install
// (NLM_F_CREATE|NLM_F_EXCL) it replaces htb's default pfifo leaf, which is
// still empty then; on change (flags 0) the kernel only updates the limit
// (bfifo's change op), so queued packets stay.
base::Result<void> put_leaf(NlSocket& sk, int ifindex, const Rate& rate, int flags) {
  auto limit = effective_queue(rate);
  if (!limit) return tl::unexpected(limit.error());
  std::unique_ptr<rtnl_qdisc, QdiscPut> q(rtnl_qdisc_alloc());
  if (!q) return base::fail(Errc::kInternal, "rtnl_qdisc_alloc");
  rtnl_tc* tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, kClassHandle);
  rtnl_tc_set_handle(tc, kLeafHandle);
  if (int err = rtnl_tc_set_kind(tc, "bfifo"); err < 0)
    return tl::unexpected(nl_error(err, "bfifo kind"));
  if (int err = rtnl_qdisc_fifo_set_limit(q.get(), static_cast<int>(*limit)); err < 0) {
    return tl::unexpected(nl_error(err, "bfifo limit"));
  }
  if (int err = rtnl_qdisc_add(sk.get(), q.get(), flags); err < 0) {
    return tl::unexpected(nl_error(err, "bfifo leaf ifindex=" + std::to_string(ifindex)));
  }
  return {};
}

}  // namespace

base::Result<void> shaper_install(NlSocket& sk, int ifindex, const Rate& rate) {
  // Validate before touching the kernel so a bad rate leaves no half shaper.
  if (auto b = effective_queue(rate); !b) return tl::unexpected(b.error());
  std::unique_ptr<rtnl_qdisc, QdiscPut> q(rtnl_qdisc_alloc());
  if (!q) return base::fail(Errc::kInternal, "rtnl_qdisc_alloc");
  rtnl_tc* tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, TC_H_ROOT);
  rtnl_tc_set_handle(tc, kRootHandle);
  if (int err = rtnl_tc_set_kind(tc, "htb"); err < 0)
    return tl::unexpected(nl_error(err, "htb kind"));
  rtnl_htb_set_defcls(q.get(), TC_H_MIN(kClassHandle));  // unclassified traffic -> 1:1
  if (int err = rtnl_qdisc_add(sk.get(), q.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
    return tl::unexpected(nl_error(err, "htb qdisc ifindex=" + std::to_string(ifindex)));
  }
  if (auto r = put_class(sk, ifindex, rate, NLM_F_CREATE | NLM_F_EXCL); !r) return r;
  return put_leaf(sk, ifindex, rate, NLM_F_CREATE | NLM_F_EXCL);
}

base::Result<void> shaper_change(NlSocket& sk, int ifindex, const Rate& rate) {
  if (auto b = effective_queue(rate); !b) return tl::unexpected(b.error());
  if (auto r = put_class(sk, ifindex, rate, 0); !r) return r;
  return put_leaf(sk, ifindex, rate, 0);
}

base::Result<std::uint32_t> shaper_queue_limit(NlSocket& sk, int ifindex) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_qdisc_alloc_cache(sk.get(), &raw); err < 0) {
    return tl::unexpected(nl_error(err, "qdisc dump"));
  }
  std::unique_ptr<nl_cache, CachePut> cache(raw);
  std::unique_ptr<rtnl_qdisc, QdiscPut> q(
      rtnl_qdisc_get_by_parent(cache.get(), ifindex, kClassHandle));
  if (!q)
    return base::fail(Errc::kNotFound,
                      "no leaf qdisc under 1:1 ifindex=" + std::to_string(ifindex));
  const char* kind = rtnl_tc_get_kind(TC_CAST(q.get()));
  if (kind == nullptr || std::string(kind) != "bfifo") {
    return base::fail(Errc::kNotFound,
                      std::string("leaf is not bfifo kind=") + (kind ? kind : "?"));
  }
  int limit = rtnl_qdisc_fifo_get_limit(q.get());
  if (limit < 0) return tl::unexpected(nl_error(limit, "bfifo limit"));
  return static_cast<std::uint32_t>(limit);
}

}  // namespace mtw::netns
