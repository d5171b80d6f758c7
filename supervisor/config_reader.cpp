#include "supervisor/config_reader.h"

#include "supervisor/units.h"

namespace mtw::supervisor {

std::string SourcePos::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

namespace detail {

SourcePos Diagnostics::pos(const toml::source_region& where) const {
  return SourcePos{file_, where.begin.line, where.begin.column};
}

void Diagnostics::error(const toml::source_region& where, std::string_view message) {
  error(pos(where), message);
}

void Diagnostics::error(const SourcePos& where, std::string_view message) {
  lines_.push_back(where.to_string() + ": " + std::string(message));
}

std::string Diagnostics::text() const {
  std::string out;
  for (const auto& l : lines_) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

std::string TableReader::where(std::string_view key) const {
  return section_.empty() ? std::string(key) : section_ + "." + std::string(key);
}

void TableReader::error(const toml::node& n, std::string_view message) {
  diag_.error(n.source(), message);
}

const toml::node* TableReader::node(std::string_view key) {
  used_.emplace(key);
  return table_.get(key);
}

std::optional<std::string> TableReader::string(std::string_view key) {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  error(*n, where(key) + " must be a string");
  return std::nullopt;
}

std::optional<bool> TableReader::boolean(std::string_view key) {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  if (const auto* b = n->as_boolean()) return b->get();
  error(*n, where(key) + " must be true or false");
  return std::nullopt;
}

std::optional<std::int64_t> TableReader::integer(std::string_view key, std::int64_t min,
                                                 std::int64_t max) {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const auto* i = n->as_integer();
  if (!i) {
    error(*n, where(key) + " must be an integer");
    return std::nullopt;
  }
  const std::int64_t v = i->get();
  if (v < min || v > max) {
    error(*n, where(key) + " = " + std::to_string(v) + " is out of range " + std::to_string(min) +
                  ".." + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> TableReader::quantity(std::string_view key, bool allow_unlimited,
                                                   bool is_rate, std::uint64_t min) {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  std::uint64_t v = 0;
  if (const auto* i = n->as_integer()) {
    if (i->get() < 0) {
      error(*n, where(key) + " must not be negative");
      return std::nullopt;
    }
    v = static_cast<std::uint64_t>(i->get());
  } else if (const auto* s = n->as_string()) {
    if (allow_unlimited && (s->get() == "unlimited" || s->get() == "none")) return 0;
    auto parsed = is_rate ? parse_rate(s->get()) : parse_size(s->get());
    if (!parsed) {
      error(*n, where(key) + ": " + parsed.error().context);
      return std::nullopt;
    }
    v = *parsed;
  } else {
    error(*n, where(key) + (is_rate ? " must be a rate like \"20mbit\" or bits/s"
                                    : " must be a size like \"10GiB\" or bytes"));
    return std::nullopt;
  }
  if (v == 0 && allow_unlimited) return 0;
  if (v < min) {
    error(*n, where(key) + " must be at least " + (is_rate ? format_rate(min) : format_size(min)) +
                  (allow_unlimited ? " (or 0 / \"unlimited\")" : ""));
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> TableReader::size(std::string_view key, bool allow_unlimited) {
  return quantity(key, allow_unlimited, false, 1);
}

std::optional<std::uint64_t> TableReader::rate(std::string_view key, bool allow_unlimited,
                                               std::uint64_t min_bps) {
  return quantity(key, allow_unlimited, true, min_bps);
}

std::optional<proto::Endpoint> TableReader::endpoint(std::string_view key) {
  const toml::node* n = node(key);
  if (!n) return std::nullopt;
  const auto* s = n->as_string();
  if (!s) {
    error(*n, where(key) + " must be a \"HOST:PORT\" string");
    return std::nullopt;
  }
  auto ep = proto::parse_endpoint(s->get());
  if (!ep) {
    error(*n, where(key) + ": " + ep.error().context);
    return std::nullopt;
  }
  if (ep->port == 0) {
    error(*n, where(key) + ": port 0 is not allowed");
    return std::nullopt;
  }
  return *ep;
}

void TableReader::finish() {
  for (auto&& [k, v] : table_) {
    if (used_.contains(k.str())) continue;
    diag_.error(k.source(), "unknown key \"" + where(k.str()) + "\"");
  }
}

LimitOverrides read_limit_keys(TableReader& r) {
  LimitOverrides o;
  o.rate_up_bps = r.rate("rate_up", true, kMinLimitRateBps);
  o.rate_down_bps = r.rate("rate_down", true, kMinLimitRateBps);
  o.quota_bytes = r.size("quota", true);
  if (auto p = r.string("period")) {
    auto parsed = parse_period(*p);
    if (parsed)
      o.period = *parsed;
    else
      r.error(*r.table().get("period"), r.section() + ".period: " + parsed.error().context);
  }
  o.anchor_day = r.number<int>("anchor_day", kAnchorDayRange.lo, kAnchorDayRange.hi);
  o.throttle_bps = r.rate("throttle_rate", false, kMinLimitRateBps);
  o.warn_percent = r.number<int>("warn_percent", kWarnPercentRange.lo, kWarnPercentRange.hi);
  o.max_connections =
      r.number<std::uint32_t>("max_connections", kMaxConnectionsRange.lo, kMaxConnectionsRange.hi);
  o.max_unique_ips =
      r.number<std::uint32_t>("max_unique_ips", kMaxUniqueIpsRange.lo, kMaxUniqueIpsRange.hi);
  o.on_demand = r.boolean("on_demand");
  o.idle_teardown_s =
      r.number<std::uint32_t>("idle_teardown_s", kIdleTeardownRange.lo, kIdleTeardownRange.hi);
  o.bandwidth_weight = r.number<std::uint32_t>("bandwidth_weight", kBandwidthWeightRange.lo,
                                               kBandwidthWeightRange.hi);
  return o;
}

}  // namespace detail
}  // namespace mtw::supervisor
