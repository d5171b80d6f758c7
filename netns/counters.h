// Kernel byte/packet counters of the cells' host-end veths, read with ONE
// RTM_GETLINK dump per sweep (IFLA_STATS64), so a sweep over 1,000 cells is
// one request and a few hundred KB of replies, not 1,000 round trips.
// Counters are the kernel's: a worker cannot under-report them.
// Thread-safety: one CounterReader per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/error.h"
#include "netns/nl.h"

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

  // Dumps all links once and calls `fn` for each whose name starts with
  // `prefix` (empty = all). Retries a dump the kernel marks interrupted.
  [[nodiscard]] base::Result<void> sweep(std::string_view prefix,
                                         const std::function<void(const LinkCounters&)>& fn);

 private:
  explicit CounterReader(NlSocket sk) noexcept : sk_(std::move(sk)) {}
  NlSocket sk_;
};

}  // namespace mtw::netns
