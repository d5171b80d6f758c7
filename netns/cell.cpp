#include "netns/cell.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

#include "base/log.h"

namespace mtw::netns {

using base::Errc;

namespace {

base::Result<void> write_sysctl(const char* path, const char* value) {
  base::UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return base::fail_errno(std::string("open ") + path);
  std::size_t len = std::char_traits<char>::length(value);
  if (::write(fd.get(), value, len) != static_cast<ssize_t>(len)) {
    int err = errno;
    return tl::unexpected(
        base::Error{err == EPERM || err == EACCES ? Errc::kPermission : Errc::kSyscall, err,
                    std::string("write ") + path});
  }
  return {};
}

// Addresses and routes on both ends, loopback up inside. `inside` is bound
// in the cell's namespace.
base::Result<void> configure_addresses(NlSocket& host, int host_ifindex, NlSocket& inside,
                                       int cell_ifindex, const CellAddrs& a) {
  if (auto r = addr_add(host, host_ifindex, a.host4, a.prefix4); !r) return r;
  if (auto r = link_set_up(inside, kLoopbackIfindex); !r) return r;
  if (auto r = addr_add(inside, cell_ifindex, a.cell4, a.prefix4); !r) return r;
  if (auto r = route_add(inside, cell_ifindex, in_addr{}, 0, a.host4); !r) return r;
  if (!a.has_v6) return {};
  if (auto r = addr_add(host, host_ifindex, a.host6, a.prefix6); !r) return r;
  if (auto r = addr_add(inside, cell_ifindex, a.cell6, a.prefix6); !r) return r;
  return route_add(inside, cell_ifindex, in6_addr{}, 0, a.host6);
}

// Prefixes an error's context with the interface it concerns.
base::Error on_if(base::Error e, const std::string& ifname) {
  e.context = "ifname=" + ifname + " " + e.context;
  return e;
}

// Permanent neighbour entries for both ends: host end -> cell address(es)
// with the cell end's MAC, and inside, gateway -> the host end's MAC. Every
// active cell would otherwise hold two learned ARP entries in the kernel's
// one neighbour table (shared by all namespaces): past gc_thresh3 (default
// 1,024, i.e. ~510 active cells) new entries fail and first packets wait
// for a TCP retransmit. Permanent entries are exempt from that limit (Linux
// 4.20+) and need no ARP/ND exchange at all.
base::Result<void> add_neighbours(NlSocket& host, int host_ifindex, const std::string& host_if,
                                  NlSocket& inside, int cell_ifindex, const std::string& cell_if,
                                  const CellAddrs& a) {
  auto host_mac = link_mac(host, host_ifindex);
  if (!host_mac) return tl::unexpected(on_if(host_mac.error(), host_if));
  auto cell_mac = link_mac(inside, cell_ifindex);
  if (!cell_mac) return tl::unexpected(on_if(cell_mac.error(), cell_if));
  if (auto r = neigh_add_permanent(host, host_ifindex, a.cell4, *cell_mac); !r) {
    return tl::unexpected(on_if(r.error(), host_if));
  }
  if (auto r = neigh_add_permanent(inside, cell_ifindex, a.host4, *host_mac); !r) {
    return tl::unexpected(on_if(r.error(), cell_if));
  }
  if (!a.has_v6) return {};
  if (auto r = neigh_add_permanent(host, host_ifindex, a.cell6, *cell_mac); !r) {
    return tl::unexpected(on_if(r.error(), host_if));
  }
  if (auto r = neigh_add_permanent(inside, cell_ifindex, a.host6, *host_mac); !r) {
    return tl::unexpected(on_if(r.error(), cell_if));
  }
  return {};
}

}  // namespace

base::Result<std::unique_ptr<CellHost>> CellHost::open(const CellHostConfig& cfg) {
  if (auto n = make_names(cfg.prefix, "0", cfg.cell_if); !n) return tl::unexpected(n.error());
  if (auto r = prepare_run_dir(cfg.run_dir); !r) return tl::unexpected(r.error());
  auto pool = AddrPool::create(cfg.pool);
  if (!pool) return tl::unexpected(pool.error());
  auto nl = NlSocket::connect();
  if (!nl) return tl::unexpected(nl.error());
  auto counters = CounterReader::open();
  if (!counters) return tl::unexpected(counters.error());
  std::unique_ptr<CellHost> host(
      new CellHost(cfg, std::move(*pool), std::move(*nl), std::move(*counters)));
  if (cfg.manage_nft) {
    NftConfig nc{cfg.nft_family,        cfg.nft_table,  cfg.prefix,         host->pool_.v4_cidr(),
                 host->pool_.v6_cidr(), cfg.masquerade, cfg.restrict_egress};
    auto t = NftTable::create(nc);
    if (!t) return tl::unexpected(t.error());
    host->nft_ = std::move(*t);
  }
  // /proc/sys/net/* belongs to the namespace of the process that opens it.
  if (cfg.ipv4_forwarding) {
    if (auto r = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1"); !r)
      return tl::unexpected(r.error());
  }
  if (cfg.ipv6_forwarding) {
    if (auto r = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"); !r) {
      return tl::unexpected(r.error());
    }
  }
  return host;
}

base::Result<void> CellHost::set_egress(const std::vector<EgressRule>& rules) {
  if (!cfg_.manage_nft || !cfg_.restrict_egress)
    return base::fail(Errc::kBadInput, "cell egress is not restricted on this host");
  auto text = egress_commands(cfg_.nft_family, cfg_.nft_table, rules);
  if (!text) return tl::unexpected(text.error());
  return nft_run(*text);
}

base::Result<void> CellHost::set_source_nat(const std::vector<SourceNat>& entries) {
  if (!cfg_.manage_nft) return base::fail(Errc::kBadInput, "the nft table is not managed here");
  auto text = source_nat_commands(cfg_.nft_family, cfg_.nft_table, entries);
  if (!text) return tl::unexpected(text.error());
  return nft_run(*text);
}

base::Result<std::vector<EgressDrops>> CellHost::egress_drops() {
  if (!cfg_.manage_nft || !cfg_.restrict_egress)
    return base::fail(Errc::kBadInput, "cell egress is not restricted on this host");
  return read_egress_drops(cfg_.nft_family, cfg_.nft_table);
}

base::Result<void> CellHost::sweep(const CounterFn& fn) { return dump(&fn); }

base::Result<void> CellHost::reap() { return dump(nullptr); }

base::Result<void> CellHost::dump(const CounterFn* fn) {
  // On error nothing is applied: seen flags would be incomplete, so every
  // retired slot stays.
  if (auto r = counters_.snapshot(snap_); !r) return r;
  apply(snap_, fn);
  return {};
}

void CellHost::apply(const CounterSnapshot& snap, const CounterFn* fn) {
  // An entry the snapshot cannot judge counts as seen (kept): a cell
  // retired after the dump began may have been created after it too.
  for (auto& [ifindex, r] : retired_) r.seen = !snap.complete || r.retired_at >= snap.started;
  for (const LinkCounters& c : snap.links) {
    if (auto it = live_.find(c.ifindex); it != live_.end()) {
      // A cell younger than the dump: its ifindex may have meant another
      // link when the kernel wrote this entry.
      if (fn != nullptr && it->second.created < snap.started) (*fn)(it->second.name, cell_view(c));
    } else if (auto rt = retired_.find(c.ifindex); rt != retired_.end()) {
      rt->second.seen = true;
    }
  }
  finish_reap();
}

void CellHost::retire(int ifindex, std::string name, AddrLease lease) {
  live_.erase(ifindex);
  const auto now = std::chrono::steady_clock::now();
  retired_.insert_or_assign(ifindex, Retired{std::move(name), std::move(lease), now, now, true});
}

void CellHost::finish_reap() {
  const auto now = std::chrono::steady_clock::now();
  const auto timeout = std::chrono::milliseconds(cfg_.retire_timeout_ms);
  for (auto it = retired_.begin(); it != retired_.end();) {
    Retired& r = it->second;
    if (!r.seen) {
      it = retired_.erase(it);  // host end gone: the slot is free again
      continue;
    }
    if (now - r.since >= timeout) {
      // Something still holds the namespace. By ifindex, so a newer link
      // that took the name is never hit.
      auto del = link_delete(nl_, it->first);
      if (!del) {
        base::logger("netns")->warn("retired veth delete failed ifname={} err={}", r.name,
                                    del.error().to_string());
        r.since = now;  // retry after another timeout, don't spin
        ++it;
        continue;
      }
      base::logger("netns")->info("deleted retired veth still held ifname={}", r.name);
      it = retired_.erase(it);
      continue;
    }
    ++it;
  }
}

bool CellHost::remove_retired(const std::string& name) {
  if (retired_.empty()) return false;
  auto idx = link_index(nl_, name);
  if (!idx) return idx.error().code == Errc::kNotFound;  // vanished meanwhile: retry
  auto it = retired_.find(*idx);
  if (it == retired_.end()) return false;  // not ours: leave it alone
  if (auto r = link_delete(nl_, *idx); !r) return false;
  retired_.erase(it);
  return true;
}

base::Result<Cell> Cell::create(CellHost& host, std::string_view id, const ShaperRates& rates) {
  const CellHostConfig& cfg = host.config();
  Cell c;
  c.host_ = &host;
  auto names = make_names(cfg.prefix, id, cfg.cell_if);
  if (!names) return tl::unexpected(names.error());
  c.names_ = std::move(*names);
  // Validate rates before creating anything: nothing to roll back then.
  if (auto b = effective_queue(rates.download); !b) return tl::unexpected(b.error());
  if (auto b = effective_queue(rates.upload); !b) return tl::unexpected(b.error());
  c.rates_ = rates;
  auto slot = host.pool().allocate();
  if (!slot && slot.error().code == Errc::kExhausted && host.retiring() > 0) {
    // Slots of destroyed cells may be free by now: one dump to find out.
    if (host.reap()) slot = host.pool().allocate();
  }
  if (!slot) return tl::unexpected(slot.error());
  c.lease_ = AddrLease(&host.pool(), *slot);
  c.addrs_ = host.pool().addrs(*slot);
  if (auto r = c.build(rates); !r) {
    c.rollback();
    return tl::unexpected(r.error());
  }
  host.live_.insert_or_assign(c.veth_.ifindex(),
                              CellHost::Live{c.names_.host_if, std::chrono::steady_clock::now()});
  return c;
}

base::Result<void> Cell::build(const ShaperRates& rates) {
  CellHost& host = *host_;
  // Kept for set_rates (the cell-side shaper) so that a rate change needs no
  // thread entering the namespace; destroy() closes it first, since an open
  // socket would hold the namespace alive.
  NlSocket& inside = inside_nl_;
  auto ns = NamedNetns::create(host.config().run_dir, names_.netns, &inside);
  if (!ns) return tl::unexpected(ns.error());
  ns_ = std::move(*ns);
  auto nsfd = ns_.open();
  if (!nsfd) return tl::unexpected(nsfd.error());
  auto veth = Veth::create(host.nl(), names_.host_if, names_.cell_if, nsfd->get());
  if (!veth && veth.error().code == Errc::kExists && host.remove_retired(names_.host_if)) {
    veth = Veth::create(host.nl(), names_.host_if, names_.cell_if, nsfd->get());
  }
  if (!veth) return tl::unexpected(veth.error());
  veth_ = std::move(*veth);
  auto cell_idx = link_index(inside, names_.cell_if);
  if (!cell_idx) return tl::unexpected(cell_idx.error());
  cell_ifindex_ = *cell_idx;
  if (auto r = link_set_up(inside, cell_ifindex_); !r) return r;
  if (auto r = configure_addresses(host.nl(), veth_.ifindex(), inside, cell_ifindex_, addrs_); !r)
    return r;
  if (auto r = add_neighbours(host.nl(), veth_.ifindex(), names_.host_if, inside, cell_ifindex_,
                              names_.cell_if, addrs_);
      !r) {
    return r;
  }
  if (auto r = shaper_install(host.nl(), veth_.ifindex(), rates.download); !r) return r;
  return shaper_install(inside, cell_ifindex_, rates.upload);
}

void Cell::rollback() noexcept {
  inside_nl_ = NlSocket();
  (void)veth_.remove();  // synchronous: the name is free when create() returns
  (void)ns_.remove();
  lease_.reset();
}

Cell& Cell::operator=(Cell&& o) noexcept {
  if (this != &o) {
    (void)destroy();
    host_ = o.host_;
    names_ = std::move(o.names_);
    addrs_ = o.addrs_;
    rates_ = o.rates_;
    cell_ifindex_ = o.cell_ifindex_;
    inside_nl_ = std::move(o.inside_nl_);
    lease_ = std::move(o.lease_);
    ns_ = std::move(o.ns_);
    veth_ = std::move(o.veth_);
  }
  return *this;
}

base::Result<void> Cell::set_rates(const ShaperRates& rates) {
  if (!veth_.valid()) return base::fail(Errc::kNotFound, "cell destroyed");
  if (auto b = effective_queue(rates.download); !b) return tl::unexpected(b.error());
  if (auto b = effective_queue(rates.upload); !b) return tl::unexpected(b.error());
  if (!same_rate(rates.download, rates_.download)) {
    if (auto r = shaper_change(host_->nl(), veth_.ifindex(), rates.download); !r) return r;
    rates_.download = rates.download;
  }
  if (!same_rate(rates.upload, rates_.upload)) {
    if (inside_nl_.get() == nullptr) {  // a moved-from or half-built cell
      auto nsfd = ns_.open();
      if (!nsfd) return tl::unexpected(nsfd.error());
      auto inside = NlSocket::connect_in(nsfd->get());
      if (!inside) return tl::unexpected(inside.error());
      inside_nl_ = std::move(*inside);
    }
    if (auto r = shaper_change(inside_nl_, cell_ifindex_, rates.upload); !r) return r;
    rates_.upload = rates.upload;
  }
  return {};
}

base::Result<void> Cell::destroy() {
  inside_nl_ = NlSocket();  // it holds the namespace: close it before unmounting
  // Unmounting is all it takes: once nothing holds the namespace, the
  // kernel's netns cleanup deletes eth0 and its peer, the host end. An
  // explicit RTM_DELLINK would block ~20-40 ms for an RCU grace period.
  if (auto r = ns_.remove(); !r) return r;
  if (veth_.valid()) {
    host_->retire(veth_.ifindex(), veth_.name(), std::move(lease_));
    veth_.release();
  }
  lease_.reset();
  return {};
}

base::Result<Child> Cell::run(const std::vector<std::string>& argv,
                              const SpawnOptions& opts) const {
  auto nsfd = ns_.open();
  if (!nsfd) return tl::unexpected(nsfd.error());
  return run_in_netns(nsfd->get(), argv, opts);
}

base::Result<base::UniqueFd> Cell::socket(int domain, int type, int proto) const {
  auto nsfd = ns_.open();
  if (!nsfd) return tl::unexpected(nsfd.error());
  return socket_in(nsfd->get(), domain, type, proto);
}

}  // namespace mtw::netns
