// Value parsers of mtwardenctl's flags: whole numbers, dates, expiry, and
// the limit flags (rates, sizes, periods, ...) mapped to the API's JSON
// values. Errors are kBadInput with a message naming the flag, for stderr.
// Thread-safe: pure functions.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace mtw::ctl {

// A decimal whole number 0..max.
[[nodiscard]] base::Result<std::uint64_t> parse_uint(std::string_view flag, std::string_view text,
                                                     std::uint64_t max);
// YYYY-MM-DD naming a real day.
bool valid_date(std::string_view s);
// --expires: YYYY-MM-DD -> that string, never -> null.
[[nodiscard]] base::Result<boost::json::value> parse_expires(std::string_view text);

// --upstreams: "inherit" -> null ([egress] upstreams), "direct" -> [],
// else comma-separated names (none empty) -> their array.
[[nodiscard]] base::Result<boost::json::value> parse_upstreams(std::string_view text);
// --upstream-password-file: the file's first line (without its end of
// line); an empty first line is "" (no password). The password is never
// part of an error.
[[nodiscard]] base::Result<std::string> read_password_file(const std::string& path);

// One limit flag -> its JSON value (the caller maps "default" to null).
using LimitParser = base::Result<boost::json::value> (*)(std::string_view flag,
                                                         std::string_view text);
struct LimitFlag {
  std::string_view flag;  // "--rate-up"
  std::string_view key;   // "rate_up" in the API's "limits" object
  LimitParser parse;
};
std::span<const LimitFlag> limit_flags();

}  // namespace mtw::ctl
