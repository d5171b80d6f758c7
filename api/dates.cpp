#include "api/dates.h"

#include <cstdio>

namespace mtw::api::detail {
namespace {

bool digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return !s.empty();
}
unsigned num(std::string_view s) {
  unsigned v = 0;
  for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
  return v;
}
bool leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned month_days(std::int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Civil civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

std::optional<std::pair<int, unsigned>> parse_month(std::string_view t) {
  if (t.size() != 7 || t[4] != '-' || !digits(t.substr(0, 4)) || !digits(t.substr(5, 2)))
    return std::nullopt;
  const unsigned y = num(t.substr(0, 4)), m = num(t.substr(5, 2));
  if (y < 1970 || m < 1 || m > 12) return std::nullopt;
  return std::pair<int, unsigned>{static_cast<int>(y), m};
}

std::optional<std::int64_t> parse_day(std::string_view t) {
  if (t.size() != 10 || t[7] != '-' || !digits(t.substr(8, 2))) return std::nullopt;
  auto ym = parse_month(t.substr(0, 7));
  if (!ym) return std::nullopt;
  const unsigned d = num(t.substr(8, 2));
  if (d < 1 || d > month_days(ym->first, ym->second)) return std::nullopt;
  return days_from_civil(ym->first, ym->second, d);
}

std::string format_day(std::int64_t days) {
  const Civil c = civil_from_days(days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(c.year), c.month,
                c.day);
  return buf;
}

std::string format_month(int year, unsigned month) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u", year, month);
  return buf;
}

}  // namespace mtw::api::detail
