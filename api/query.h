// Private to api/: the request target's query string ("?by=month&from=...")
// decoded into a map, and its typed values checked. Pure, thread-safe; every
// refusal is a 400 naming the parameter.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http_types.h"

namespace mtw::api::detail {

using Query = std::map<std::string, std::string, std::less<>>;

// %XX and '+' (space) decoded; nullopt for a truncated or non-hex escape.
std::optional<std::string> percent_decode(std::string_view s);
// "a=1&b=x%20y" -> {a: 1, b: "x y"}; a key given twice or a bad escape is refused.
ApiResult<Query> parse_query(std::string_view q);
// Refuses the first parameter not in `allowed`.
ApiResult<void> allow_params(const Query& q, const std::vector<std::string_view>& allowed);
// `key` as a decimal integer in lo..hi; `dflt` when absent.
ApiResult<std::uint64_t> query_uint(const Query& q, const std::string& key, std::uint64_t dflt,
                                    std::uint64_t lo, std::uint64_t hi);
// `key` as a day "YYYY-MM-DD" (or, with month_ok, "YYYY-MM": its first day)
// in days since 1970-01-01; `dflt` when absent.
ApiResult<std::int64_t> query_day(const Query& q, const std::string& key, std::int64_t dflt,
                                  bool month_ok);

}  // namespace mtw::api::detail
