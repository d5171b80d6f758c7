// What a user's cell may reach, and keeping the kernel's egress sets
// (netns/egress.h) in step with it.
//
// cell_egress() is the one list of destinations a worker needs: every
// address the DC table can answer (production plus [telegram] dc
// overrides), the mask host, the middle proxies and the upstreams. A new
// kind of destination is one more field filled there. plan_egress() turns
// it into nft rules: literal addresses as they are; a host name is resolved
// now (and again every few minutes, EgressControl::refresh) and, since the
// worker then resolves it too, DNS to the resolv.conf name servers is
// allowed as well (only then).
//
// EgressControl applies the plan and follows the workers' generations: a
// worker keeps the argv (DC table, mask) it was started with, so after a
// reload the sets hold what the new configuration needs plus what workers
// started before still use, until the last of them is gone. It also reads
// the per-cell drop counters and logs drops per user, rate-limited.
// Thread-safety: one thread (the supervisor's loop). The nft calls block
// for a few milliseconds; name resolution (plan_egress with names) blocks
// for as long as the resolver takes, and runs only at start and reload.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/error.h"
#include "netns/egress.h"
#include "proto/dc_table.h"
#include "supervisor/config.h"

namespace mtw::supervisor {

// Everything a cell may connect to (TCP unless said otherwise).
struct CellEgress {
  std::vector<proto::Endpoint> dcs;             // every address the workers' DC table holds
  std::vector<proto::Endpoint> mask;            // the mask host (workers mask some clients too)
  std::vector<proto::Endpoint> middle_proxies;  // middle-proxy mode: the proxies of the list
  std::vector<proto::Endpoint> upstreams;       // configured upstream proxies
};

// What cell_egress needs besides the configuration: it changes with the
// users (their fake-TLS domains are mask targets by default) and with the
// middle-proxy material.
struct EgressInputs {
  std::vector<std::string> fake_tls_domains;    // of every user's secrets
  std::vector<proto::Endpoint> middle_proxies;  // of the middle-proxy lists in force
};

// The destinations for `cfg`: the only place that decides what cells reach.
// The mask targets are every target a worker may mask to: [mask] address,
// and each fake-TLS domain's route ([mask.domains] or DOMAIN:443).
CellEgress cell_egress(const Config& cfg, const EgressInputs& in = {});

// Every endpoint the DC table can return for any DC index, built from
// `overrides` as the worker builds its table (in order, "N=HOST:PORT").
std::vector<proto::Endpoint> dc_table_endpoints(const std::vector<DcOverride>& overrides);

// Addresses of a host name (literal IPv4/IPv6 text); an error when none.
using Resolver = std::function<base::Result<std::vector<std::string>>(const std::string& host)>;
// getaddrinfo (blocking).
base::Result<std::vector<std::string>> resolve_host(const std::string& host);

struct EgressPlan {
  std::vector<netns::EgressRule> rules;  // normalized (netns::normalize_egress)
  bool dns = false;                      // a name was among the destinations
  std::vector<std::string> unresolved;   // "host: reason" for names that did not resolve
};

// The rules for `e`. Names are resolved with `resolve`; when there is any,
// UDP and TCP port 53 of every `nameservers` address are allowed too.
EgressPlan plan_egress(const CellEgress& e, const Resolver& resolve,
                       const std::vector<std::string>& nameservers);

// The "nameserver ADDR" entries of a resolv.conf text, in order.
std::vector<std::string> resolv_conf_nameservers(std::string_view text);

// Folds drop counter readings into per-cell increments. Counters restart
// when the kernel drops an idle element or the table is replaced: a
// reading below the last one counts from zero. Pure.
class DropTally {
 public:
  struct Increment {
    std::string host_if;
    std::uint64_t packets = 0;
  };
  std::vector<Increment> update(const std::vector<netns::EgressDrops>& readings);

 private:
  std::unordered_map<std::string, std::uint64_t> last_;
};

// Applies plans through `apply` (the nft transaction; a seam for tests).
class EgressControl {
 public:
  using Apply = std::function<base::Result<void>(const std::vector<netns::EgressRule>&)>;
  explicit EgressControl(Apply apply) : apply_(std::move(apply)) {}

  // Makes `plan` the current generation and applies the union of it and
  // every generation a live worker still holds. On failure the kernel keeps
  // the previous sets and the plan stays pending (retried by the next
  // acquire/release/set).
  [[nodiscard]] base::Result<void> set(EgressPlan plan);
  // The current generation's names looked up again (same destinations,
  // new addresses): replaces its plan without a new generation, since the
  // workers resolve names themselves. Errors as set().
  [[nodiscard]] base::Result<void> refresh(EgressPlan plan);
  // A worker started now: it holds the current generation until release().
  std::uint64_t acquire();
  // That worker is gone; a generation no worker holds any more (and not the
  // current one) leaves the sets.
  [[nodiscard]] base::Result<void> release(std::uint64_t generation);

  // What the sets hold now (the last successful apply).
  const std::vector<netns::EgressRule>& applied() const noexcept { return applied_; }
  std::uint64_t generation() const noexcept { return current_; }

 private:
  base::Result<void> reapply();

  Apply apply_;
  std::uint64_t current_ = 0;
  std::map<std::uint64_t, EgressPlan> plans_;    // current and held ones
  std::map<std::uint64_t, std::uint32_t> held_;  // generation -> live workers
  std::vector<netns::EgressRule> applied_;
  bool pending_ = false;  // the last apply failed
};

// Rate-limits the "egress dropped" warning per user: the first drop is
// logged at once, further ones at most once per `every` as a sum. Pure.
class DropLogLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DropLogLimiter(Clock::duration every) : every_(every) {}
  // Counts `packets` for `user`; returns the sum to log now (0: not yet).
  std::uint64_t add(const std::string& user, std::uint64_t packets, Clock::time_point now);
  // Sums whose quiet time is over (for the periodic poll): user -> packets.
  std::vector<std::pair<std::string, std::uint64_t>> due(Clock::time_point now);

 private:
  struct Entry {
    Clock::time_point last_logged;
    std::uint64_t pending = 0;
  };
  Clock::duration every_;
  std::unordered_map<std::string, Entry> users_;
};

}  // namespace mtw::supervisor
