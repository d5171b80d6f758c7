// Private to api/: UTC calendar arithmetic for the API's dates
// ("YYYY-MM-DD", "YYYY-MM") without the C library's time zone state.
// Pure, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mtw::api::detail {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept;
struct Civil {
  std::int64_t year;
  unsigned month, day;
};
Civil civil_from_days(std::int64_t days) noexcept;

// "YYYY-MM-DD" (years 1970..9999, a real calendar day) -> days since epoch.
std::optional<std::int64_t> parse_day(std::string_view text);
// "YYYY-MM" -> (year, month).
std::optional<std::pair<int, unsigned>> parse_month(std::string_view text);
std::string format_day(std::int64_t days);
std::string format_month(int year, unsigned month);

}  // namespace mtw::api::detail
