// Egress: the worker's upstreams (direct, SOCKS4, SOCKS5) and their health.
// Decides which upstream a new DC connection tries first and where it fails
// over to; counts per upstream. Time and randomness come in as arguments, so
// the decisions are tested without sockets or clocks (egress_test.cpp); the
// dialing itself is in egress_dial.cpp.
//
// Health: `policy.failures` consecutive failures (connect, SOCKS handshake,
// or an active check) mark an upstream down until its retry time, which
// starts at retry_min_ms and doubles per failed retry up to retry_max_ms
// (a circuit breaker). A down upstream whose retry time has come is
// "half-open": it is tried again, after every up upstream. One success
// marks it up. Not thread-safe (the worker is single-threaded).
//
// Live changes: replace() swaps the spec for new connections. Upstreams are
// known by name across a replace (counters carry over, so totals never go
// backwards; health too, when the definition is unchanged), so callers that
// hold an upstream across an await keep its name, never its index.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "proto/egress.h"

namespace mtw::worker {

struct UpstreamCounters {
  std::uint64_t connects = 0;  // DC connections established through it
  std::uint64_t failures = 0;  // connect or handshake failures (client and health checks)
  std::uint64_t bytes_up = 0;  // payload client->DC of connections through it
  std::uint64_t bytes_down = 0;
  std::uint64_t health_ok = 0;
  std::uint64_t health_failed = 0;
  std::uint64_t marked_down = 0;  // times it went down (failover events)
};

class Egress {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr std::size_t kDirect = static_cast<std::size_t>(-1);

  Egress(proto::EgressSpec spec, std::uint64_t seed);

  const proto::EgressSpec& spec() const noexcept { return spec_; }
  // Makes `spec` the egress of new connections. An upstream of the same
  // name keeps its counters; its health too when its definition (type,
  // address, credentials) is unchanged, else it starts up. Upstreams no
  // longer named are forgotten (their connections in flight count nowhere).
  void replace(proto::EgressSpec spec);
  // The index of upstream `name` in the current spec.
  std::optional<std::size_t> find(std::string_view name) const;
  // No upstream configured: every connection goes direct as before.
  bool direct_only() const noexcept { return spec_.upstreams.empty(); }

  // Upstream indices in the order a new connection tries them: the up ones
  // in weighted random order (the first pick is weighted by `weight`, and
  // so on for the rest), then the half-open ones. kDirect at the end when
  // every upstream is down and policy.fallback_direct is set. Empty: no
  // upstream may be tried now (all down, no fallback).
  std::vector<std::size_t> plan(TimePoint now);

  // Outcome of one attempt through upstream `i`. on_failure returns true
  // when this failure marked it down.
  void on_success(std::size_t i);
  bool on_failure(std::size_t i, TimePoint now);
  void add_bytes(std::size_t i, std::uint64_t up, std::uint64_t down);
  void on_health(std::size_t i, bool ok, TimePoint now);

  bool is_up(std::size_t i) const { return state_.at(i).up; }
  const UpstreamCounters& counters(std::size_t i) const { return state_.at(i).counters; }
  std::optional<TimePoint> retry_at(std::size_t i) const;
  // "name=dante up=1 connects=3 failures=0 bytes_up=.. bytes_down=.." per upstream, ';'-separated.
  std::string summary() const;

 private:
  struct State {
    bool up = true;
    std::uint32_t consecutive_failures = 0;
    std::uint32_t retry_ms = 0;  // current back-off while down
    TimePoint retry_at{};
    UpstreamCounters counters;
  };
  // Weighted random order of `idx` (without replacement).
  std::vector<std::size_t> weighted_order(std::vector<std::size_t> idx);

  proto::EgressSpec spec_;
  std::vector<State> state_;
  std::mt19937_64 rng_;
};

}  // namespace mtw::worker
