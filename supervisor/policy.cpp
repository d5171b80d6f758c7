#include "supervisor/policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <numeric>

namespace mtw::supervisor {
namespace {

using std::chrono::days;
using std::chrono::sys_days;

UnixSeconds to_unix(sys_days d) { return std::chrono::sys_seconds(d).time_since_epoch().count(); }

// Day `anchor` of month `ym`, or its last day when the month is shorter.
sys_days anchored_day(std::chrono::year_month ym, int anchor) {
  const unsigned last = static_cast<unsigned>((ym / std::chrono::last).day());
  const unsigned d = std::min(static_cast<unsigned>(anchor), last);
  return sys_days(ym / std::chrono::day(d));
}

// min over "0 = unlimited" rates.
std::uint64_t min_rate(std::uint64_t a, std::uint64_t b) {
  if (a == 0) return b;
  if (b == 0) return a;
  return std::min(a, b);
}

}  // namespace

PeriodBounds period_bounds(Period period, int anchor_day, UnixSeconds now) {
  const auto today = std::chrono::floor<days>(std::chrono::sys_seconds(std::chrono::seconds(now)));
  switch (period) {
    case Period::kDaily:
      return {to_unix(today), to_unix(today + days(1))};
    case Period::kWeekly: {
      const int anchor = std::clamp(anchor_day, 1, 7);
      const int iso = static_cast<int>(std::chrono::weekday(today).iso_encoding());
      const sys_days start = today - days((iso - anchor + 7) % 7);
      return {to_unix(start), to_unix(start + days(7))};
    }
    case Period::kMonthly: {
      const int anchor = std::clamp(anchor_day, 1, 31);
      const std::chrono::year_month_day ymd(today);
      const auto ym = ymd.year() / ymd.month();
      const sys_days this_month = anchored_day(ym, anchor);
      if (today >= this_month)
        return {to_unix(this_month), to_unix(anchored_day(ym + std::chrono::months(1), anchor))};
      return {to_unix(anchored_day(ym - std::chrono::months(1), anchor)), to_unix(this_month)};
    }
    case Period::kLifetime:
      break;
  }
  return {0, kForever};
}

std::string_view quota_state_name(QuotaState s) noexcept {
  switch (s) {
    case QuotaState::kNormal:
      return "normal";
    case QuotaState::kWarned:
      return "warned";
    case QuotaState::kThrottled:
      return "throttled";
  }
  return "unknown";
}

QuotaStatus quota_status(const Limits& limits, std::uint64_t used_bytes, UnixSeconds now) {
  QuotaStatus s;
  s.used_bytes = used_bytes;
  s.quota_bytes = limits.quota_bytes;
  s.period = period_bounds(limits.period, limits.anchor_day, now);
  if (limits.quota_bytes == 0) return s;
  s.remaining_bytes = used_bytes < limits.quota_bytes ? limits.quota_bytes - used_bytes : 0;
  // 128-bit products: quotas up to 2^63 times a percentage must not overflow.
  __extension__ using U128 = unsigned __int128;
  const U128 used_pct = static_cast<U128>(used_bytes) * 100;
  const U128 warn_at =
      static_cast<U128>(limits.quota_bytes) * static_cast<unsigned>(limits.warn_percent);
  if (used_bytes >= limits.quota_bytes) {
    s.state = QuotaState::kThrottled;
    s.resets_at = s.period.end;
  } else if (used_pct >= warn_at) {
    s.state = QuotaState::kWarned;
  }
  return s;
}

EffectiveRate effective_rate(const Limits& limits, QuotaState quota, std::uint32_t unique_ips) {
  EffectiveRate r;
  r.up_bps = limits.rate_up_bps;
  r.down_bps = limits.rate_down_bps;
  r.reasons.quota = quota == QuotaState::kThrottled;
  r.reasons.unique_ips = limits.max_unique_ips != 0 && unique_ips > limits.max_unique_ips;
  if (r.reasons.quota) r.reason_text = "quota used up";
  if (r.reasons.unique_ips) {
    if (!r.reason_text.empty()) r.reason_text += "; ";
    r.reason_text +=
        std::to_string(unique_ips) + " unique IPs > limit " + std::to_string(limits.max_unique_ips);
  }
  if (r.reasons.any()) {
    r.up_bps = min_rate(r.up_bps, limits.throttle_bps);
    r.down_bps = min_rate(r.down_bps, limits.throttle_bps);
  }
  return r;
}

std::vector<std::uint32_t> fair_share(std::uint64_t budget,
                                      std::span<const ConnectionDemand> users) {
  std::vector<std::uint32_t> want(users.size());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < users.size(); ++i) {
    want[i] = users[i].cap == 0 ? users[i].demand : std::min(users[i].demand, users[i].cap);
    total += want[i];
  }
  if (total <= budget) return want;

  // Water-filling: serve the smallest wants first; once a want exceeds the
  // equal share of what is left, every remaining user gets that share.
  std::vector<std::size_t> order(users.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return want[a] < want[b]; });
  std::vector<std::uint32_t> out(users.size(), 0);
  std::uint64_t left = budget;
  for (std::size_t p = 0; p < order.size(); ++p) {
    const std::uint64_t n = order.size() - p;
    const std::uint64_t share = left / n;
    if (want[order[p]] <= share) {
      out[order[p]] = want[order[p]];
      left -= want[order[p]];
      continue;
    }
    std::vector<std::size_t> heavy(order.begin() + static_cast<std::ptrdiff_t>(p), order.end());
    std::sort(heavy.begin(), heavy.end());
    std::uint64_t extra = left - share * n;  // < n; each heavy want is > share
    for (std::size_t i : heavy) {
      const std::uint64_t bonus = extra > 0 ? 1 : 0;
      extra -= bonus;
      out[i] = static_cast<std::uint32_t>(share + bonus);
    }
    break;
  }
  return out;
}

std::optional<std::uint64_t> lane_credit(const LaneCreditInput& in) {
  if (in.max_connections == 0 && in.global_budget == 0) return std::nullopt;
  if (in.held) return 0;
  auto room = [](std::uint64_t limit, std::uint64_t used) {
    return limit > used ? limit - used : 0;
  };
  std::uint64_t credit = kMaxLaneCredit;
  if (in.max_connections != 0) credit = std::min(credit, room(in.max_connections, in.active));
  if (in.global_budget != 0) {
    credit = std::min(credit, room(in.fair, in.active));
    // Every lane may spend its share at once: together they stay in budget.
    credit = std::min<std::uint64_t>(
        credit, room(in.global_budget, in.budget_used) / std::max<std::size_t>(in.lanes, 1));
  }
  return credit;
}

std::string unique_ip_key(int family, std::span<const std::byte, 16> addr, unsigned ipv6_prefix) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == 4) {
    ::inet_ntop(AF_INET, addr.data(), buf, sizeof buf);
    return buf;
  }
  if (family != 6) return "?";
  const unsigned bits = std::min(ipv6_prefix, 128u);
  std::array<std::byte, 16> masked{};
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned keep = bits > i * 8 ? std::min(bits - i * 8, 8u) : 0u;
    masked[i] = addr[i] & static_cast<std::byte>(keep == 0 ? 0 : 0xFF << (8 - keep));
  }
  ::inet_ntop(AF_INET6, masked.data(), buf, sizeof buf);
  return bits == 128 ? std::string(buf) : std::string(buf) + "/" + std::to_string(bits);
}

}  // namespace mtw::supervisor
