// Value parsers of mtwardenctl's flags (see values.h).
#include "ctl/values.h"

#include <fcntl.h>

#include <boost/json.hpp>
#include <charconv>
#include <chrono>

#include "base/file.h"
#include "base/unique_fd.h"
#include "supervisor/limits.h"
#include "supervisor/units.h"

namespace mtw::ctl {
namespace json = boost::json;
using base::Errc;
using base::fail;
using base::Result;

Result<std::uint64_t> parse_uint(std::string_view flag, std::string_view text, std::uint64_t max) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v > max) {
    return fail(Errc::kBadInput, std::string(flag) + ": expected a whole number up to " +
                                     std::to_string(max) + ", got \"" + std::string(text) + "\"");
  }
  return v;
}

bool valid_date(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  int y = std::stoi(std::string(s.substr(0, 4)));
  unsigned m = std::stoul(std::string(s.substr(5, 2)));
  unsigned d = std::stoul(std::string(s.substr(8, 2)));
  return std::chrono::year_month_day(std::chrono::year(y), std::chrono::month(m),
                                     std::chrono::day(d))
      .ok();
}

static Result<std::string> parse_date(std::string_view flag, std::string_view text) {
  if (!valid_date(text)) {
    return fail(Errc::kBadInput, std::string(flag) + ": expected a date YYYY-MM-DD, got \"" +
                                     std::string(text) + "\"");
  }
  return std::string(text);
}

// --expires: a date, or never (JSON null).
Result<json::value> parse_expires(std::string_view text) {
  if (text == "never") return json::value(nullptr);
  auto d = parse_date("--expires", text);
  if (!d) {
    return fail(Errc::kBadInput,
                "--expires: expected YYYY-MM-DD or never, got \"" + std::string(text) + "\"");
  }
  return json::value(*d);
}

Result<json::value> parse_upstreams(std::string_view text) {
  if (text == "inherit") return json::value(nullptr);
  json::array names;
  if (text == "direct") return names;
  for (;;) {
    const auto comma = text.find(',');
    const std::string_view name = text.substr(0, comma);
    if (name.empty()) {
      return fail(Errc::kBadInput,
                  "--upstreams: expected inherit, direct or NAME[,NAME...], got an empty name");
    }
    names.emplace_back(name);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return names;
}

Result<std::string> read_password_file(const std::string& path) {
  base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return base::fail_errno("--upstream-password-file: open " + path);
  // RFC 1929 passwords are at most 255 bytes; a longer file is a mistake.
  auto text = base::read_fd_all(fd.get(), 4096);
  if (!text) {
    return fail(text.error().code,
                "--upstream-password-file: " + path + ": " + text.error().to_string());
  }
  std::string line = text->substr(0, text->find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

static Result<json::value> limit_rate(std::string_view flag, std::string_view text) {
  if (text == "unlimited") return json::value(0);
  auto r = supervisor::parse_rate(text);
  if (!r) {
    return fail(Errc::kBadInput, std::string(flag) + ": bad rate \"" + std::string(text) +
                                     "\" (e.g. 20mbit, 2.5MB/s, 500000, unlimited, default)");
  }
  return json::value(*r);
}

static Result<json::value> limit_size(std::string_view flag, std::string_view text) {
  if (text == "unlimited") return json::value("unlimited");
  auto r = supervisor::parse_size(text);
  if (!r) {
    return fail(Errc::kBadInput, std::string(flag) + ": bad size \"" + std::string(text) +
                                     "\" (e.g. 50GiB, 500MB, unlimited, default)");
  }
  return json::value(*r);
}

static Result<json::value> limit_period(std::string_view flag, std::string_view text) {
  auto p = supervisor::parse_period(text);
  if (!p) {
    return fail(Errc::kBadInput, std::string(flag) +
                                     ": expected daily, weekly, monthly, lifetime or "
                                     "default, got \"" +
                                     std::string(text) + "\"");
  }
  return json::value(std::string(supervisor::period_name(*p)));
}

static Result<json::value> limit_count(std::string_view flag, std::string_view text) {
  if (text == "unlimited") return json::value(0);
  auto v = parse_uint(flag, text, 0xffffffffu);
  if (!v) return tl::unexpected(v.error());
  return json::value(*v);
}

static Result<json::value> limit_percent(std::string_view flag, std::string_view text) {
  auto v = parse_uint(flag, text, 100);
  if (!v) return tl::unexpected(v.error());
  return json::value(*v);
}

static Result<json::value> limit_day(std::string_view flag, std::string_view text) {
  auto v = parse_uint(flag, text, 31);
  if (!v || *v == 0) {
    return fail(Errc::kBadInput, std::string(flag) +
                                     ": expected a day 1..31 (month) or 1..7 (week), got \"" +
                                     std::string(text) + "\"");
  }
  return json::value(*v);
}

static Result<json::value> limit_weight(std::string_view flag, std::string_view text) {
  auto v = parse_uint(flag, text, 0xffffffffu);
  if (!v || *v < 1 || *v > 1'000) {
    return fail(Errc::kBadInput, std::string(flag) +
                                     ": expected a weight 1..1000 or default, got \"" +
                                     std::string(text) + "\"");
  }
  return json::value(*v);
}

static Result<json::value> limit_bool(std::string_view flag, std::string_view text) {
  if (text == "on" || text == "true" || text == "yes") return json::value(true);
  if (text == "off" || text == "false" || text == "no") return json::value(false);
  return fail(Errc::kBadInput, std::string(flag) + ": expected on, off or default, got \"" +
                                   std::string(text) + "\"");
}

constexpr LimitFlag kLimitFlags[] = {
    {"--rate-up", "rate_up", limit_rate},
    {"--rate-down", "rate_down", limit_rate},
    {"--quota", "quota", limit_size},
    {"--period", "period", limit_period},
    {"--anchor-day", "anchor_day", limit_day},
    {"--throttle", "throttle_rate", limit_rate},
    {"--warn-percent", "warn_percent", limit_percent},
    {"--max-connections", "max_connections", limit_count},
    {"--max-ips", "max_unique_ips", limit_count},
    {"--on-demand", "on_demand", limit_bool},
    {"--idle-teardown", "idle_teardown_s", limit_count},
    {"--bandwidth-weight", "bandwidth_weight", limit_weight},
};

std::span<const LimitFlag> limit_flags() { return kLimitFlags; }

}  // namespace mtw::ctl
