#include "netns/cell.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace mtw::netns {

using base::Errc;

namespace {

base::Result<void> write_sysctl(const char* path, const char* value) {
  base::UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd) return base::fail_errno(std::string("open ") + path);
  std::size_t len = std::char_traits<char>::length(value);
  if (::write(fd.get(), value, len) != static_cast<ssize_t>(len)) {
    int err = errno;
    return tl::unexpected(base::Error{err == EPERM || err == EACCES ? Errc::kPermission : Errc::kSyscall,
                                      err, std::string("write ") + path});
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
    NftConfig nc{cfg.nft_family, cfg.nft_table, cfg.prefix, host->pool_.v4_cidr(), host->pool_.v6_cidr()};
    auto t = NftTable::create(nc);
    if (!t) return tl::unexpected(t.error());
    host->nft_ = std::move(*t);
  }
  // /proc/sys/net/* belongs to the namespace of the process that opens it.
  if (cfg.ipv4_forwarding) {
    if (auto r = write_sysctl("/proc/sys/net/ipv4/ip_forward", "1"); !r) return tl::unexpected(r.error());
  }
  if (cfg.ipv6_forwarding) {
    if (auto r = write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"); !r) {
      return tl::unexpected(r.error());
    }
  }
  return host;
}

base::Result<void> CellHost::sweep(
    const std::function<void(const std::string& host_if, const CellCounters&)>& fn) {
  const std::string& prefix = cfg_.prefix;
  return counters_.sweep(prefix, [&](const LinkCounters& c) {
    if (is_cell_name(prefix, c.name)) fn(c.name, cell_view(c));
  });
}

base::Result<Cell> Cell::create(CellHost& host, std::string_view id, const ShaperRates& rates) {
  const CellHostConfig& cfg = host.config();
  Cell c;
  c.host_ = &host;
  auto names = make_names(cfg.prefix, id, cfg.cell_if);
  if (!names) return tl::unexpected(names.error());
  c.names_ = std::move(*names);
  // Validate rates before creating anything: nothing to roll back then.
  if (auto b = effective_burst(rates.download); !b) return tl::unexpected(b.error());
  if (auto b = effective_burst(rates.upload); !b) return tl::unexpected(b.error());
  c.rates_ = rates;
  auto slot = host.pool().allocate();
  if (!slot) return tl::unexpected(slot.error());
  c.lease_ = AddrLease(&host.pool(), *slot);
  c.addrs_ = host.pool().addrs(*slot);

  // From here each step's RAII owner undoes it if a later step fails.
  NlSocket inside;
  auto ns = NamedNetns::create(cfg.run_dir, c.names_.netns, &inside);
  if (!ns) return tl::unexpected(ns.error());
  c.ns_ = std::move(*ns);
  auto nsfd = c.ns_.open();
  if (!nsfd) return tl::unexpected(nsfd.error());
  auto veth = Veth::create(host.nl(), c.names_.host_if, c.names_.cell_if, nsfd->get());
  if (!veth) return tl::unexpected(veth.error());
  c.veth_ = std::move(*veth);
  auto cell_idx = link_index(inside, c.names_.cell_if);
  if (!cell_idx) return tl::unexpected(cell_idx.error());
  c.cell_ifindex_ = *cell_idx;
  if (auto r = link_set_up(inside, c.cell_ifindex_); !r) return tl::unexpected(r.error());
  if (auto r = configure_addresses(host.nl(), c.veth_.ifindex(), inside, c.cell_ifindex_, c.addrs_); !r) {
    return tl::unexpected(r.error());
  }
  if (auto r = shaper_install(host.nl(), c.veth_.ifindex(), rates.download); !r) return tl::unexpected(r.error());
  if (auto r = shaper_install(inside, c.cell_ifindex_, rates.upload); !r) return tl::unexpected(r.error());
  return c;
}

base::Result<void> Cell::set_rates(const ShaperRates& rates) {
  if (!veth_.valid()) return base::fail(Errc::kNotFound, "cell destroyed");
  if (auto b = effective_burst(rates.download); !b) return tl::unexpected(b.error());
  if (auto b = effective_burst(rates.upload); !b) return tl::unexpected(b.error());
  if (rates.download.bits_per_sec != rates_.download.bits_per_sec ||
      rates.download.burst_bytes != rates_.download.burst_bytes) {
    if (auto r = shaper_change(host_->nl(), veth_.ifindex(), rates.download); !r) return r;
    rates_.download = rates.download;
  }
  if (rates.upload.bits_per_sec != rates_.upload.bits_per_sec ||
      rates.upload.burst_bytes != rates_.upload.burst_bytes) {
    auto nsfd = ns_.open();
    if (!nsfd) return tl::unexpected(nsfd.error());
    auto inside = NlSocket::connect_in(nsfd->get());
    if (!inside) return tl::unexpected(inside.error());
    if (auto r = shaper_change(*inside, cell_ifindex_, rates.upload); !r) return r;
    rates_.upload = rates.upload;
  }
  return {};
}

base::Result<void> Cell::destroy() {
  if (auto r = veth_.remove(); !r) return r;
  if (auto r = ns_.remove(); !r) return r;
  lease_.reset();
  return {};
}

base::Result<Child> Cell::run(const std::vector<std::string>& argv, const SpawnOptions& opts) const {
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
