// response_head (api/http_head.h) against Beast's own serializer: for every
// status, version, keep-alive and header combination the API uses, the head
// plus body is byte-for-byte what beast::http::response would write.
#include "api/http_head.h"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>
#include <sstream>

namespace mtw::api::detail {
namespace {
namespace http = boost::beast::http;

std::string beast_text(const HttpResponse& r, unsigned version, bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  if (!r.content_type.empty()) res.set(http::field::content_type, r.content_type);
  for (const auto& [k, v] : r.headers) res.set(k, v);
  res.body() = r.body;
  res.keep_alive(keep_alive);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  return os.str();
}

TEST(HttpHead, SameBytesAsBeast) {
  const std::vector<HttpResponse> cases = {
      {200, "application/json", "{\"a\":1}\n", {}},
      {200, "text/plain; version=0.0.4; charset=utf-8", std::string(70000, 'm'), {}},
      {201, "application/json", "{}", {}},
      {204, "", "", {}},
      {400, "application/json", "{\"error\":{}}\n", {}},
      {401, "application/json", "x", {{"WWW-Authenticate", "Bearer"}}},
      {405, "application/json", "x", {{"Allow", "GET, POST"}}},
      {408, "application/json", "", {}},
      {413, "application/json", "y", {}},
      {500, "application/json", "z", {}},
      {503, "application/json", "z", {{"Retry-After", "1"}, {"Allow", "GET"}}},
      {200, "image/png", std::string("\x89PNG\0\x01", 6), {{"Content-Disposition", "inline"}}},
  };
  for (const auto& r : cases)
    for (unsigned version : {10u, 11u})
      for (bool keep : {false, true})
        EXPECT_EQ(response_head(r, version, keep) + r.body, beast_text(r, version, keep))
            << r.status << " HTTP/" << version << " keep=" << keep;
}

TEST(HttpHead, HeaderWithLineBreakIsLeftOut) {
  HttpResponse r{
      200, "application/json", "{}", {{"X-Bad", "a\r\nSet-Cookie: x"}, {"Allow", "GET"}}};
  const std::string h = response_head(r, 11, true);
  EXPECT_EQ(h.find("X-Bad"), std::string::npos);
  EXPECT_EQ(h.find("Set-Cookie"), std::string::npos);
  EXPECT_NE(h.find("Allow: GET\r\n"), std::string::npos);
  EXPECT_EQ(h.substr(h.size() - 4), "\r\n\r\n");
}

}  // namespace
}  // namespace mtw::api::detail
