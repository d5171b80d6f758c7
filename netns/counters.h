// Kernel byte/packet counters of the cells' host-end veths, read with ONE
// netlink dump per sweep, so a sweep over 1,000 cells is one request, not
// 1,000 round trips. Counters are the kernel's: a worker cannot under-report.
// The dump is read straight off the socket into one reused 64 KiB buffer and
// parsed in place (no libnl message or object per link, no MSG_PEEK).
// Thread-safety: one CounterReader per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "netns/nl.h"

struct nlmsghdr;

namespace mtw::netns {

// Counters of one link as the kernel reports them (from the link's own view).
struct LinkCounters {
  int ifindex = 0;
  std::string name;  // <= 15 chars: fits std::string's inline buffer, no allocation
  std::uint64_t rx_bytes = 0, tx_bytes = 0, rx_packets = 0, tx_packets = 0;
  std::uint64_t rx_dropped = 0, tx_dropped = 0;
};

// A cell's traffic, seen from the host end of its veth: what the host end
// receives came from the cell (upload), what it sends goes to the cell
// (download). Bytes are link-layer (Ethernet header included).
struct CellCounters {
  std::uint64_t upload_bytes = 0, download_bytes = 0;
  std::uint64_t upload_packets = 0, download_packets = 0;
};

inline CellCounters cell_view(const LinkCounters& host_end) noexcept {
  return CellCounters{host_end.rx_bytes, host_end.tx_bytes, host_end.rx_packets,
                      host_end.tx_packets};
}

// One RTM_GETSTATS dump as plain data, so it can be taken on one thread and
// used on another (see CounterPoller and CellHost::apply).
struct CounterSnapshot {
  std::vector<LinkCounters> links;  // `name` empty: keyed by ifindex
  // Taken before the request was sent: a link created later may be missing.
  std::chrono::steady_clock::time_point started;
  // False when the kernel flagged every attempt inconsistent (links added or
  // removed mid-dump): a link may then be missing or listed twice.
  bool complete = false;
  std::chrono::nanoseconds wall{0}, cpu{0};  // the dump's duration and its thread's CPU time
};

class CounterReader {
 public:
  // A reader bound to the calling thread's namespace (the host's).
  [[nodiscard]] static base::Result<CounterReader> open();

  // RTM_GETLINK dump: calls `fn` for each link whose name starts with
  // `prefix` (empty = all). Each link costs the kernel a full ~1.5 KB
  // description (stats, inet6 conf, ...); only the name and IFLA_STATS64 are
  // read. Retries a dump the kernel marks interrupted (a link added or
  // removed mid-dump); callers may then see a link twice.
  [[nodiscard]] base::Result<void> sweep(std::string_view prefix,
                                         const std::function<void(const LinkCounters&)>& fn);

  // RTM_GETSTATS dump filtered to IFLA_STATS_LINK_64: ~0.2 KB per link and
  // no per-link attribute building in the kernel, so several times cheaper
  // than sweep(). Links carry no name here (`name` is empty): the caller maps
  // ifindex to its own objects. Same retry rule as sweep().
  [[nodiscard]] base::Result<void> sweep_stats(const std::function<void(const LinkCounters&)>& fn);

  // sweep_stats() into `out` (cleared first; its capacity is reused). Unlike
  // sweep_stats(), an interrupted attempt's links are dropped before the
  // retry, so each link appears once unless out.complete is false.
  [[nodiscard]] base::Result<void> snapshot(CounterSnapshot& out);

 private:
  explicit CounterReader(NlSocket sk) : sk_(std::move(sk)), buf_(64 * 1024) {}
  // Sends `req` (a complete netlink request) and hands every reply message of
  // this dump to `on_msg`; returns true in *interrupted when the kernel
  // flagged the dump inconsistent.
  base::Result<void> dump_once(void* req, std::size_t len, bool* interrupted,
                               const std::function<void(const nlmsghdr*)>& on_msg);
  // One RTM_GETSTATS request; *interrupted as dump_once.
  base::Result<void> stats_once(bool* interrupted,
                                const std::function<void(const LinkCounters&)>& fn);
  NlSocket sk_;
  std::vector<char> buf_;  // reused receive buffer; netlink dump skbs are <= 32 KiB
  std::uint32_t seq_ = 0;
  LinkCounters scratch_;  // reused per link: no allocation per link
};

}  // namespace mtw::netns
