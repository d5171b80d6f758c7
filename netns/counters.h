// Kernel byte/packet counters of the cells' host-end veths, read with ONE
// netlink dump per sweep, so a sweep over 1,000 cells is one request, not
// 1,000 round trips. Counters are the kernel's: a worker cannot under-report.
// The dump is read straight off the socket into one reused 64 KiB buffer and
// parsed in place (no libnl message or object per link, no MSG_PEEK).
// Thread-safety: one CounterReader per thread.
#pragma once

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

 private:
  explicit CounterReader(NlSocket sk) : sk_(std::move(sk)), buf_(64 * 1024) {}
  // Sends `req` (a complete netlink request) and hands every reply message of
  // this dump to `on_msg`; returns true in *interrupted when the kernel
  // flagged the dump inconsistent.
  base::Result<void> dump_once(void* req, std::size_t len, bool* interrupted,
                               const std::function<void(const nlmsghdr*)>& on_msg);
  NlSocket sk_;
  std::vector<char> buf_;  // reused receive buffer; netlink dump skbs are <= 32 KiB
  std::uint32_t seq_ = 0;
  LinkCounters scratch_;  // reused per link: no allocation per link
};

}  // namespace mtw::netns
