// A cell: the kernel side of one user. A named network namespace, a veth
// pair (host end "<prefix><id>" on the host, "eth0" inside), a /30 (or /31)
// and optionally an IPv6 ULA /64 (or /127), a default route via the host
// end, permanent neighbour entries for both ends (no ARP/ND, exempt from
// gc_thresh3), and an htb shaper on each end. CellHost holds what all cells share:
// the address pool, the host netlink socket, the nftables table and the
// counter reader.
// Thread-safety: a CellHost and its Cells are used from one thread (the
// supervisor's); no call changes that thread's namespace.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "base/unique_fd.h"
#include "netns/addr_pool.h"
#include "netns/counters.h"
#include "netns/egress.h"
#include "netns/link.h"
#include "netns/names.h"
#include "netns/netns.h"
#include "netns/nft.h"
#include "netns/nl.h"
#include "netns/rate.h"
#include "netns/run_in_cell.h"
#include "netns/shaper.h"
#include "netns/snat.h"

namespace mtw::netns {

struct CellHostConfig {
  std::string prefix = "mtw";          // names of every cell object start with this
  std::string run_dir = "/run/netns";  // where namespaces are bind-mounted
  std::string cell_if = "eth0";        // veth name inside each cell
  PoolConfig pool;
  std::string nft_family = "inet";
  std::string nft_table = "mtwarden";
  bool manage_nft = true;        // install the NAT/forward table
  bool masquerade = true;        // in that table: NAT cell traffic leaving the host
  bool restrict_egress = false;  // in that table: cells reach only set_egress()'s destinations
  bool ipv4_forwarding = true;   // write net.ipv4.ip_forward=1 in the host namespace
  // net.ipv6.conf.all.forwarding=1 also turns off router-advertisement
  // learning on every host interface, which can drop a SLAAC host's own IPv6
  // default route: leave it to the operator unless they opt in.
  bool ipv6_forwarding = false;
  // A destroyed cell's host end vanishes with its namespace, normally within
  // milliseconds. If something still holds the namespace (a leftover process
  // or fd), sweep()/reap() delete the host end explicitly after this long.
  std::uint32_t retire_timeout_ms = 5000;
};

class CellHost {
 public:
  // Prepares the run dir, connects netlink, builds the pool, installs (or
  // replaces) the nft table. Run reconcile() first to clear a crashed run's
  // cells. kPermission without CAP_NET_ADMIN/CAP_SYS_ADMIN.
  [[nodiscard]] static base::Result<std::unique_ptr<CellHost>> open(const CellHostConfig& cfg);

  CellHost(const CellHost&) = delete;
  CellHost& operator=(const CellHost&) = delete;
  ~CellHost() = default;

  const CellHostConfig& config() const noexcept { return cfg_; }
  AddrPool& pool() noexcept { return pool_; }
  NlSocket& nl() noexcept { return nl_; }
  using CounterFn = std::function<void(const std::string& host_if, const CellCounters&)>;
  // One RTM_GETSTATS dump on this thread, then apply(): fn(host_if,
  // counters) for each live cell of this host. Also does reap()'s work from
  // the same dump.
  [[nodiscard]] base::Result<void> sweep(const CounterFn& fn);
  // The second half of sweep(), for a snapshot taken on another thread with
  // its own reader (CounterPoller). Maps ifindexes to cells as they are NOW:
  // fn runs for live cells created before snap.started only (a younger cell
  // is billed from its next snapshot, counters being cumulative), links of
  // cells destroyed meanwhile and foreign links are ignored. A retired host
  // end counts as gone only if the snapshot is complete, started after the
  // cell was retired, and lacks it. `fn` may be null (reap only).
  void apply(const CounterSnapshot& snap, const CounterFn* fn);

  // Destroyed cells hand their host end and address slot here ("retired")
  // until the kernel has removed the host end along with the namespace; the
  // slot is not reused before, so no two host links ever carry the same
  // addresses. reap() does one stats dump: it frees the slots of host ends
  // that are gone and deletes (synchronously) those still there after
  // cfg.retire_timeout_ms. sweep() does the same, so a supervisor that
  // sweeps every second needs no extra call.
  [[nodiscard]] base::Result<void> reap();
  // With restrict_egress: makes `rules` the only destinations cells may
  // start connections to, in one transaction (established ones stay).
  // kBadInput for a rule that is not a literal address; kNft, kPermission.
  // Without restrict_egress (or manage_nft): kBadInput.
  [[nodiscard]] base::Result<void> set_egress(const std::vector<EgressRule>& rules);
  // Makes `entries` the cells' source addresses (netns/snat.h), in one
  // transaction; new connections only. kBadInput as source_nat_commands or
  // without manage_nft; kNft, kPermission.
  [[nodiscard]] base::Result<void> set_source_nat(const std::vector<SourceNat>& entries);
  // The per-cell drop counters (cells that dropped something since their
  // element was made). Errors as set_egress.
  [[nodiscard]] base::Result<std::vector<EgressDrops>> egress_drops();

  // Destroyed cells whose host end has not yet been seen gone.
  std::size_t retiring() const noexcept { return retired_.size(); }

 private:
  friend class Cell;
  struct Live {
    std::string name;
    std::chrono::steady_clock::time_point created;
  };
  struct Retired {
    std::string name;
    AddrLease lease;
    std::chrono::steady_clock::time_point retired_at;
    std::chrono::steady_clock::time_point since;  // retire timeout runs from here
    bool seen = false;  // present in the current dump (or not judged by it)
  };
  CellHost(CellHostConfig cfg, AddrPool pool, NlSocket nl, CounterReader counters)
      : cfg_(std::move(cfg)),
        pool_(std::move(pool)),
        nl_(std::move(nl)),
        counters_(std::move(counters)) {}
  void retire(int ifindex, std::string name, AddrLease lease);
  // Called when creating host end `name` hit EEXIST: if that link is a host
  // end we retired, delete it now and return true (the caller retries once).
  bool remove_retired(const std::string& name);
  // After a dump that set Retired::seen: release what is gone, delete what
  // is overdue.
  void finish_reap();
  base::Result<void> dump(const CounterFn* fn);

  CellHostConfig cfg_;
  AddrPool pool_;
  NlSocket nl_;
  CounterReader counters_;
  NftTable nft_;
  CounterSnapshot snap_;                      // reused by sweep()/reap()
  std::unordered_map<int, Live> live_;        // host-end ifindex -> live cell
  std::unordered_map<int, Retired> retired_;  // after pool_: leases go back first
};

class Cell {
 public:
  Cell() = default;
  Cell(Cell&&) noexcept = default;
  Cell& operator=(Cell&& o) noexcept;
  // Tears the cell down as destroy() does.
  ~Cell() { (void)destroy(); }

  // Builds cell `id` ([0-9a-z]+) on `host`, which must outlive the cell.
  // Errors: kBadInput (bad id, name over IFNAMSIZ, bad rate), kExhausted
  // (pool), kExists (netns or veth name taken; the existing one is left
  // alone), kPermission (no CAP_NET_ADMIN/CAP_SYS_ADMIN). A failure rolls
  // back whatever this call created.
  [[nodiscard]] static base::Result<Cell> create(CellHost& host, std::string_view id,
                                                 const ShaperRates& rates);

  // Changes both shapers live; established connections stay.
  [[nodiscard]] base::Result<void> set_rates(const ShaperRates& rates);
  // Tears down now; idempotent. Unmounts the namespace and hands the host
  // end and address slot to the CellHost: the kernel deletes the veth pair
  // when the namespace dies (asynchronously, batched across namespaces; no
  // ~20-40 ms RTM_DELLINK wait here), and the slot is reused only once the
  // host end is gone (see CellHost::reap). Processes still inside keep the
  // namespace alive until reap's timeout deletes the veth. On error the
  // remaining parts stay owned.
  [[nodiscard]] base::Result<void> destroy();

  // Runs argv inside the cell (see run_in_netns).
  [[nodiscard]] base::Result<Child> run(const std::vector<std::string>& argv,
                                        const SpawnOptions& opts = {}) const;
  // A socket created inside the cell (e.g. to connect out as the cell would).
  [[nodiscard]] base::Result<base::UniqueFd> socket(int domain, int type, int proto = 0) const;
  // The namespace, for callers that spawn workers themselves.
  [[nodiscard]] base::Result<base::UniqueFd> open_netns() const { return ns_.open(); }

  const CellNames& names() const noexcept { return names_; }
  const CellAddrs& addrs() const noexcept { return addrs_; }
  const ShaperRates& rates() const noexcept { return rates_; }
  int host_ifindex() const noexcept { return veth_.ifindex(); }
  bool valid() const noexcept { return ns_.valid() || veth_.valid(); }

 private:
  CellHost* host_ = nullptr;
  CellNames names_;
  CellAddrs addrs_;
  ShaperRates rates_;
  int cell_ifindex_ = 0;
  // Netlink inside the namespace, for the cell-side shaper: rate changes
  // then need no thread that enters the namespace (in_netns). One
  // descriptor per cell; closed by destroy() before the namespace goes.
  NlSocket inside_nl_;
  // Steps of create() after the slot is taken.
  base::Result<void> build(const ShaperRates& rates);
  // Synchronous undo of a failed create: veth, namespace, slot.
  void rollback() noexcept;
  // Destroyed bottom-up if destroy() failed: veth, namespace, then the slot.
  AddrLease lease_;
  NamedNetns ns_;
  Veth veth_;
};

}  // namespace mtw::netns
