// Private to api/: the transport-free request/response model the pure
// handlers work on (server.cpp converts from/to Beast), and the API error
// with its HTTP status. Plain values, thread-safe.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

namespace mtw::api::detail {

enum class Transport { kUnix, kTcp };

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent
  std::string content_type;
  std::string authorization;
  std::string body;
  Transport transport = Transport::kUnix;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Allow, ...)
};

// A 4xx/5xx answer: {"error":{"code","message","field"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string field;  // "" when no single field is at fault
};

template <class T>
using ApiResult = tl::expected<T, ApiError>;

inline tl::unexpected<ApiError> bad(std::string field, std::string message) {
  return tl::unexpected<ApiError>(ApiError{400, std::move(message), std::move(field)});
}

// "bad_request", "not_found", ... for a status code.
const char* error_code_name(int status) noexcept;
HttpResponse error_response(const ApiError& e);

}  // namespace mtw::api::detail
