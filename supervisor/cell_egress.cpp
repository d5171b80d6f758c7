#include "supervisor/cell_egress.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <set>

#include "supervisor/mask_schedule.h"

namespace mtw::supervisor {

namespace {

bool is_literal(const std::string& host) {
  unsigned char bin[16];
  return ::inet_pton(AF_INET, host.c_str(), bin) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), bin) == 1;
}

constexpr std::uint16_t kDnsPort = 53;

}  // namespace

std::vector<proto::Endpoint> dc_table_endpoints(const std::vector<DcOverride>& overrides) {
  proto::DcTable table;
  // As the worker does (worker/runtime.cpp): each override replaces the
  // index's addresses, in order.
  for (const auto& o : overrides) table.set(o.dc, o.endpoints);
  // A client may ask for any int16 index. One that is not overridden itself
  // answers as its plain DC (|dc|, test indices mod 10000) or, unknown, as
  // the default DC (proto/dc_table.h): so the overridden indices and the
  // plain ones 0..10000 give every address a worker can be made to use.
  std::vector<int> indices;
  for (int dc = 0; dc <= 10'000; ++dc) indices.push_back(dc);
  for (const auto& o : overrides) indices.push_back(o.dc);
  std::set<std::pair<std::string, std::uint16_t>> seen;
  std::vector<proto::Endpoint> out;
  for (int dc : indices) {
    for (const auto& e : table.lookup(static_cast<std::int16_t>(dc), false)) {
      if (seen.emplace(e.host, e.port).second) out.push_back(e);
    }
  }
  return out;
}

CellEgress cell_egress(const Config& cfg, const EgressInputs& in) {
  CellEgress e;
  e.dcs = dc_table_endpoints(cfg.telegram.dc);
  std::set<std::pair<std::string, std::uint16_t>> seen;
  auto add_mask = [&](const proto::Endpoint& ep) {
    if (seen.emplace(ep.host, ep.port).second) e.mask.push_back(ep);
  };
  if (cfg.mask.address) add_mask(*cfg.mask.address);
  if (cfg.mask.enabled)
    for (const auto& t : mask_probe_targets(mask_routes(cfg), in.fake_tls_domains))
      add_mask(t.endpoint);
  e.middle_proxies = in.middle_proxies;
  // SOCKS upstreams are dialled from the cells; a direct upstream is the DC
  // table above. The sets are shared by every cell, so each proxy is
  // reachable from every cell, whichever users name it.
  for (const auto& u : cfg.upstreams)
    if (u.type != proto::UpstreamType::kDirect) e.upstreams.push_back(u.address);
  return e;
}

base::Result<std::vector<std::string>> resolve_host(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
    return base::fail(base::Errc::kNotFound, std::string("getaddrinfo: ") + ::gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  std::vector<std::string> out;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* bin =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(
                  &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
        ::inet_ntop(a->ai_family, bin, buf, sizeof buf) != nullptr) {
      out.emplace_back(buf);
    }
  }
  if (out.empty()) return base::fail(base::Errc::kNotFound, "no IPv4/IPv6 address");
  return out;
}

EgressPlan plan_egress(const CellEgress& e, const Resolver& resolve,
                       const std::vector<std::string>& nameservers) {
  EgressPlan plan;
  std::vector<netns::EgressRule> rules;
  for (const auto* list : {&e.dcs, &e.mask, &e.middle_proxies, &e.upstreams}) {
    for (const auto& ep : *list) {
      if (is_literal(ep.host)) {
        rules.push_back({ep.host, netns::L4::kTcp, ep.port});
        continue;
      }
      plan.dns = true;
      auto addrs = resolve(ep.host);
      if (!addrs) {
        plan.unresolved.push_back(ep.host + ": " + addrs.error().context);
        continue;
      }
      for (const auto& a : *addrs) rules.push_back({a, netns::L4::kTcp, ep.port});
    }
  }
  if (plan.dns) {
    for (const auto& ns : nameservers) {
      rules.push_back({ns, netns::L4::kUdp, kDnsPort});
      rules.push_back({ns, netns::L4::kTcp, kDnsPort});
    }
  }
  // Drop what is not a literal address rather than fail the whole plan (a
  // resolver that answered garbage, a scoped "fe80::1%eth0" name server).
  std::vector<netns::EgressRule> kept;
  for (auto& r : rules) {
    if (netns::normalize_egress({r})) kept.push_back(std::move(r));
  }
  plan.rules = *netns::normalize_egress(std::move(kept));
  return plan;
}

std::vector<std::string> resolv_conf_nameservers(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto skip_ws = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      return s;
    };
    line = skip_ws(line);
    constexpr std::string_view kKey = "nameserver";
    if (line.substr(0, kKey.size()) != kKey) continue;
    line.remove_prefix(kKey.size());
    if (line.empty() || (line.front() != ' ' && line.front() != '\t')) continue;
    line = skip_ws(line);
    const auto end = line.find_first_of(" \t\r#;");
    if (auto a = line.substr(0, end); !a.empty()) out.emplace_back(a);
  }
  return out;
}

std::vector<DropTally::Increment> DropTally::update(
    const std::vector<netns::EgressDrops>& readings) {
  std::vector<Increment> out;
  for (const auto& r : readings) {
    std::uint64_t& last = last_[r.host_if];
    const std::uint64_t inc = r.packets >= last ? r.packets - last : r.packets;
    last = r.packets;
    if (inc > 0) out.push_back({r.host_if, inc});
  }
  return out;
}

base::Result<void> EgressControl::set(EgressPlan plan) {
  ++current_;
  plans_[current_] = std::move(plan);
  // Generations nobody holds, other than the new one, are done with.
  for (auto it = plans_.begin(); it != plans_.end();) {
    if (it->first != current_ && !held_.count(it->first))
      it = plans_.erase(it);
    else
      ++it;
  }
  return reapply();
}

base::Result<void> EgressControl::refresh(EgressPlan plan) {
  plans_[current_] = std::move(plan);
  return reapply();
}

std::uint64_t EgressControl::acquire() {
  ++held_[current_];
  return current_;
}

base::Result<void> EgressControl::release(std::uint64_t generation) {
  auto it = held_.find(generation);
  if (it == held_.end()) return {};
  if (--it->second > 0) return pending_ ? reapply() : base::Result<void>{};
  held_.erase(it);
  if (generation == current_) return pending_ ? reapply() : base::Result<void>{};
  plans_.erase(generation);
  return reapply();
}

base::Result<void> EgressControl::reapply() {
  std::vector<netns::EgressRule> all;
  for (const auto& [gen, plan] : plans_)
    all.insert(all.end(), plan.rules.begin(), plan.rules.end());
  auto norm = netns::normalize_egress(std::move(all));
  if (!norm) return tl::unexpected(norm.error());
  if (!pending_ && *norm == applied_) return {};
  if (auto r = apply_(*norm); !r) {
    pending_ = true;
    return r;
  }
  pending_ = false;
  applied_ = std::move(*norm);
  return {};
}

std::uint64_t DropLogLimiter::add(const std::string& user, std::uint64_t packets,
                                  Clock::time_point now) {
  auto [it, fresh] = users_.try_emplace(user);
  Entry& e = it->second;
  e.pending += packets;
  if (!fresh && now - e.last_logged < every_) return 0;
  e.last_logged = now;
  return std::exchange(e.pending, 0);
}

std::vector<std::pair<std::string, std::uint64_t>> DropLogLimiter::due(Clock::time_point now) {
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (auto& [user, e] : users_) {
    if (e.pending == 0 || now - e.last_logged < every_) continue;
    e.last_logged = now;
    out.emplace_back(user, std::exchange(e.pending, 0));
  }
  return out;
}

}  // namespace mtw::supervisor
