// Private to api/: the status line and header block of an API response.
// Beast parses every request; the answer's few header lines are written
// here instead of through beast::http::serializer, whose buffer-sequence
// machinery cost as much CPU per status request as building the answer's
// JSON. The text is byte-for-byte what the serializer would write for the
// same response (tests/unit/api/http_head_test.cpp holds the two equal).
// Pure, thread-safe.
#pragma once

#include <string>

#include "api/http_types.h"

namespace mtw::api::detail {

// `version`: 10 or 11 (the request's). `keep_alive`: the connection stays
// open after this answer. Content-Length is always the body's size (also
// "0" on a 204, as Beast writes it). Extra header names and values must not
// contain CR or LF (they are the handler's own constants); such a header is
// left out.
std::string response_head(const HttpResponse& r, unsigned version, bool keep_alive);

}  // namespace mtw::api::detail
