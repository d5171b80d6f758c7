// Private to api/: validation of request bodies into Service arguments.
// Everything is checked here, before any Service call, so a rejected request
// changes nothing. Errors name the offending field ("limits.rate_up").
// Pure, thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "api/http_types.h"
#include "api/service.h"
#include "supervisor/user_name.h"

namespace mtw::api::detail {

inline constexpr std::size_t kMaxCommentChars = 256;
// A user's upstream list: as many as a worker reports (kMaxReportUpstreams).
inline constexpr std::size_t kMaxUpstreams = 64;

// The body as a JSON object; an empty body counts as {} when `allow_empty`.
// 400 on malformed JSON, trailing data or a non-object.
ApiResult<boost::json::object> parse_object(std::string_view body, bool allow_empty);

ApiResult<NewUser> parse_new_user(const boost::json::object& o);
ApiResult<UserPatch> parse_user_patch(const boost::json::object& o);

struct RotateRequest {
  std::string secret;  // canonical hex, "" = generate
  std::uint32_t grace_s = 0;
};
ApiResult<RotateRequest> parse_rotate(const boost::json::object& o, std::uint32_t default_grace_s);

// Rejects every member of `o` (bodies of enable/disable/reset must be {}).
ApiResult<void> expect_empty(const boost::json::object& o);

}  // namespace mtw::api::detail
