// Fuzzes the API's request-body validation (api/json_in.h), which reads
// every POST and PATCH body before any Service call. The whole input is one
// body. Properties:
//  - every refusal is a 400 with a message;
//  - an accepted object with one of its keys given twice is refused,
//    naming the key;
//  - whatever parse_new_user / parse_user_patch / parse_rotate accept is
//    within the documented bounds (name rule, rates 8 kbit..100 gbit,
//    anchor_day 1..31 and 1..7 when weekly in the same body, warn_percent
//    1..99, grace_s <= 1 year, at most 16 secrets each of which parses).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "api/json_in.h"
#include "proto/secret.h"
#include "supervisor/user_name.h"

using namespace mtw::api::detail;
using mtw::api::UserPatch;
namespace json = boost::json;

namespace {

template <class T>
void expect_400(const ApiResult<T>& r) {
  if (!r && (r.error().status != 400 || r.error().message.empty())) std::abort();
}

void check_rate(const std::optional<std::optional<std::uint64_t>>& r, bool zero_ok) {
  if (!r || !*r) return;
  const std::uint64_t x = **r;
  if (x == 0 && zero_ok) return;
  if (x < 8'000 || x > 100'000'000'000ULL) std::abort();
}

void check_patch(const UserPatch& p) {
  check_rate(p.rate_up_bps, true);
  check_rate(p.rate_down_bps, true);
  check_rate(p.throttle_bps, false);
  if (p.anchor_day && *p.anchor_day && (**p.anchor_day < 1 || **p.anchor_day > 31)) std::abort();
  if (p.period && *p.period && **p.period == mtw::supervisor::Period::kWeekly && p.anchor_day &&
      *p.anchor_day && **p.anchor_day > 7)
    std::abort();
  if (p.warn_percent && *p.warn_percent && (**p.warn_percent < 1 || **p.warn_percent > 99))
    std::abort();
  if (p.idle_teardown_s && *p.idle_teardown_s &&
      (**p.idle_teardown_s < 10 || **p.idle_teardown_s > 30 * 86'400))
    std::abort();
  if (p.bandwidth_weight && *p.bandwidth_weight &&
      (**p.bandwidth_weight < 1 || **p.bandwidth_weight > 1'000))
    std::abort();
  if (p.comment && p.comment->size() > 4 * kMaxCommentChars) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto o = parse_object(body, size % 2 == 0);
  expect_400(o);
  if (!o) return 0;

  // The same object with its first key given twice is refused, naming that
  // key (a key repeated at the top level is found however the rest reads,
  // as long as the rest is JSON Boost.JSON can read back: it writes an
  // overflowed number as "Infinity", which it then refuses).
  if (!o->empty()) {
    const std::string rest = json::serialize(*o);
    const std::string key = json::serialize(json::value(o->begin()->key()));
    const std::string twice = "{" + key + ":0," + rest.substr(1);
    auto d = parse_object(twice, false);
    if (d) std::abort();
    expect_400(d);
    boost::system::error_code ec;
    (void)json::parse(rest, ec);
    if (!ec && d.error().field != o->begin()->key()) std::abort();
  }

  auto nu = parse_new_user(*o);
  expect_400(nu);
  if (nu) {
    if (!mtw::supervisor::valid_user_name(nu->name)) std::abort();
    if (nu->secrets.size() > 16) std::abort();
    for (const auto& s : nu->secrets)
      if (!mtw::proto::parse_secret(s)) std::abort();
    if (nu->comment.size() > 4 * kMaxCommentChars) std::abort();
    // Only limit fields are left in `limits`.
    if (nu->limits.enabled || nu->limits.expires_at || nu->limits.comment) std::abort();
    check_patch(nu->limits);
  }

  auto patch = parse_user_patch(*o);
  expect_400(patch);
  if (patch) check_patch(*patch);

  auto rot = parse_rotate(*o, 3600);
  expect_400(rot);
  if (rot) {
    if (rot->grace_s > 31'536'000) std::abort();
    if (!rot->secret.empty() && !mtw::proto::parse_secret(rot->secret)) std::abort();
  }

  auto empty = expect_empty(*o);
  expect_400(empty);
  if (empty.has_value() != o->empty()) std::abort();
  return 0;
}
