#include "worker/egress.h"

#include <algorithm>

namespace mtw::worker {

Egress::Egress(proto::EgressSpec spec, std::uint64_t seed)
    : spec_(std::move(spec)), state_(spec_.upstreams.size()), rng_(seed) {}

std::vector<std::size_t> Egress::weighted_order(std::vector<std::size_t> idx) {
  std::vector<std::size_t> out;
  while (!idx.empty()) {
    std::uint64_t total = 0;
    for (std::size_t i : idx) total += spec_.upstreams[i].weight;
    std::uint64_t x = std::uniform_int_distribution<std::uint64_t>(0, total - 1)(rng_);
    std::size_t k = 0;
    while (x >= spec_.upstreams[idx[k]].weight) x -= spec_.upstreams[idx[k++]].weight;
    out.push_back(idx[k]);
    idx.erase(idx.begin() + static_cast<std::ptrdiff_t>(k));
  }
  return out;
}

void Egress::replace(proto::EgressSpec spec) {
  std::vector<State> next(spec.upstreams.size());
  for (std::size_t i = 0; i < spec.upstreams.size(); ++i) {
    const auto old = find(spec.upstreams[i].name);
    if (!old) continue;
    if (spec.upstreams[i] == spec_.upstreams[*old]) {
      next[i] = state_[*old];
    } else {
      next[i].counters = state_[*old].counters;  // a new definition starts up
    }
  }
  spec_ = std::move(spec);
  state_ = std::move(next);
}

std::optional<std::size_t> Egress::find(std::string_view name) const {
  for (std::size_t i = 0; i < spec_.upstreams.size(); ++i)
    if (spec_.upstreams[i].name == name) return i;
  return std::nullopt;
}

std::vector<std::size_t> Egress::plan(TimePoint now) {
  std::vector<std::size_t> up, half_open;
  for (std::size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].up)
      up.push_back(i);
    else if (now >= state_[i].retry_at)
      half_open.push_back(i);
  }
  std::vector<std::size_t> out = weighted_order(std::move(up));
  for (std::size_t i : weighted_order(std::move(half_open))) out.push_back(i);
  if (spec_.policy.fallback_direct &&
      std::none_of(state_.begin(), state_.end(), [](const State& s) { return s.up; })) {
    out.push_back(kDirect);
  }
  return out;
}

namespace {

template <class S>
void mark_up(S& s) {
  s.up = true;
  s.consecutive_failures = 0;
  s.retry_ms = 0;
}

}  // namespace

void Egress::on_success(std::size_t i) {
  State& s = state_.at(i);
  ++s.counters.connects;
  mark_up(s);
}

bool Egress::on_failure(std::size_t i, TimePoint now) {
  State& s = state_.at(i);
  ++s.counters.failures;
  ++s.consecutive_failures;
  const auto& p = spec_.policy;
  if (!s.up) {
    // A failed retry while half-open: wait longer before the next one.
    s.retry_ms = std::min(p.retry_max_ms, std::max(p.retry_min_ms, s.retry_ms * 2));
    s.retry_at = now + std::chrono::milliseconds(s.retry_ms);
    return false;
  }
  if (s.consecutive_failures < p.failures) return false;
  s.up = false;
  s.retry_ms = p.retry_min_ms;
  s.retry_at = now + std::chrono::milliseconds(s.retry_ms);
  ++s.counters.marked_down;
  return true;
}

void Egress::add_bytes(std::size_t i, std::uint64_t up, std::uint64_t down) {
  State& s = state_.at(i);
  s.counters.bytes_up += up;
  s.counters.bytes_down += down;
}

void Egress::on_health(std::size_t i, bool ok, TimePoint now) {
  State& s = state_.at(i);
  if (ok) {
    ++s.counters.health_ok;
    mark_up(s);
  } else {
    ++s.counters.health_failed;
    on_failure(i, now);
  }
}

std::optional<Egress::TimePoint> Egress::retry_at(std::size_t i) const {
  const State& s = state_.at(i);
  if (s.up) return std::nullopt;
  return s.retry_at;
}

std::string Egress::summary() const {
  std::string out;
  for (std::size_t i = 0; i < state_.size(); ++i) {
    const auto& c = state_[i].counters;
    if (!out.empty()) out += "; ";
    out += "name=";
    out += spec_.upstreams[i].name;
    out += " up=";
    out += state_[i].up ? "1" : "0";
    out += " connects=" + std::to_string(c.connects);
    out += " failures=" + std::to_string(c.failures);
    out += " bytes_up=" + std::to_string(c.bytes_up);
    out += " bytes_down=" + std::to_string(c.bytes_down);
    out += " health_ok=" + std::to_string(c.health_ok);
    out += " health_failed=" + std::to_string(c.health_failed);
    out += " marked_down=" + std::to_string(c.marked_down);
  }
  return out;
}

}  // namespace mtw::worker
