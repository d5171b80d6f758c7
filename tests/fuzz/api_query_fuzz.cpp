// Fuzzes the API's query-string parsing (api/query.h), which reads the
// target of every HTTP request. The whole input is one query string.
// Properties:
//  - errors are 400s naming a reason;
//  - no parsed key or value is longer than the input (decoding only
//    shrinks); an empty key ("=x") is kept and refused by allow_params;
//  - query_uint answers within its bounds or with a 400; query_day answers
//    a day between year 0 and 9999, or a 400.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/query.h"

using namespace mtw::api::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto q = parse_query(text);
  if (!q) {
    if (q.error().status != 400 || q.error().message.empty()) std::abort();
    return 0;
  }
  for (const auto& [k, v] : *q) {
    if (k.size() > text.size() || v.size() > text.size()) std::abort();
  }
  for (const auto& [k, v] : *q) {
    auto n = query_uint(*q, k, 7, 3, 1000);
    if (n && (*n < 3 || *n > 1000)) std::abort();
    if (!n && n.error().status != 400) std::abort();
    auto d = query_day(*q, k, 0, true);
    // 0000-01-01 .. 9999-12-31 in days since 1970-01-01.
    if (d && (*d < -719528 || *d > 2932896)) std::abort();
    if (!d && d.error().status != 400) std::abort();
  }
  auto a = allow_params(*q, {"days", "months", "after", "limit"});
  if (!a && a.error().status != 400) std::abort();
  if (a && q->count("") != 0) std::abort();
  return 0;
}
