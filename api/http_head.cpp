#include "api/http_head.h"

#include <ostream>  // boost/core/detail/string_view.hpp needs it complete

#include <boost/beast/http/status.hpp>
#include <charconv>
#include <string_view>

namespace mtw::api::detail {
namespace {

bool clean(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

void line(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

}  // namespace

std::string response_head(const HttpResponse& r, unsigned version, bool keep_alive) {
  namespace http = boost::beast::http;
  std::string out;
  out.reserve(160);
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  char num[16];
  out.append(num, std::to_chars(num, num + sizeof num, r.status).ptr);
  out += ' ';
  out.append(http::obsolete_reason(http::int_to_status(static_cast<unsigned>(r.status))));
  out += "\r\n";
  if (!r.content_type.empty() && clean(r.content_type)) line(out, "Content-Type", r.content_type);
  for (const auto& [k, v] : r.headers)
    if (!k.empty() && clean(k) && clean(v)) line(out, k, v);
  if (version == 10 && keep_alive) line(out, "Connection", "keep-alive");
  if (version != 10 && !keep_alive) line(out, "Connection", "close");
  line(out, "Content-Length",
       std::string_view(num, std::to_chars(num, num + sizeof num, r.body.size()).ptr - num));
  out += "\r\n";
  return out;
}

}  // namespace mtw::api::detail
