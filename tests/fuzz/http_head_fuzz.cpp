// Fuzzes the HTTP head the API writes (api/http_head.h) against the parser
// on the other side: Beast reads back exactly what response_head wrote.
// The input picks the status, version, keep-alive, content type, extra
// headers (names and values from the input; some carry CR/LF) and body.
// Properties:
//  - the head parses as one complete HTTP response with that status and
//    version, and the body that follows is read back whole;
//  - Content-Length is the body's size, keep-alive is what was asked;
//  - every extra header without CR/LF comes back with its value; a header
//    or content type with CR/LF is left out and injects no line of its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>

#include "api/http_head.h"

using namespace mtw::api::detail;
namespace http = boost::beast::http;

namespace {

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // A string of up to `max` bytes drawn from `alphabet` (or any byte when empty).
  std::string text(std::size_t max, std::string_view alphabet) {
    std::string s;
    const std::size_t len = byte() % (max + 1);
    for (std::size_t i = 0; i < len && n; ++i) {
      const std::uint8_t b = byte();
      s.push_back(alphabet.empty() ? static_cast<char>(b) : alphabet[b % alphabet.size()]);
    }
    return s;
  }
};

// RFC 9110 token characters (what a header name is); the API's own header
// names are such tokens.
constexpr std::string_view kToken =
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
// Visible characters and inner spaces, plus CR and LF to try injection.
constexpr std::string_view kValue =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,;=/\"()<>@:?[]{}\r\n";

bool clean(std::string_view s) { return s.find_first_of("\r\n") == std::string_view::npos; }

std::string trimmed(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

// The names the head writes itself; an extra header of that name would
// make the comparison ambiguous.
bool reserved(std::string_view name) {
  for (std::string_view r : {"content-type", "content-length", "connection", "transfer-encoding"})
    if (boost::beast::iequals(name, r)) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  HttpResponse r;
  // 200..599 except the statuses that carry no body.
  r.status = 200 + (in.byte() * 7 + in.byte()) % 400;
  if (r.status == 204 || r.status == 304) r.status = 200;
  const unsigned version = in.byte() & 1 ? 10 : 11;
  const bool keep_alive = in.byte() & 1;
  r.content_type = trimmed(in.text(24, kValue));
  const std::size_t extra = in.byte() % 5;
  for (std::size_t i = 0; i < extra; ++i) {
    std::string name = in.text(12, kToken);
    if (name.empty() || reserved(name)) continue;
    r.headers.emplace_back(std::move(name), trimmed(in.text(24, kValue)));
  }
  r.body = in.text(255, "");

  const std::string head = response_head(r, version, keep_alive);
  const std::string wire = head + r.body;

  // Exactly as many lines as written on purpose: an injected CR/LF adds none.
  std::size_t lines = 0;
  for (std::size_t at = 0; (at = head.find("\r\n", at)) != std::string::npos; at += 2) ++lines;
  std::size_t expected = 1 /* status */ + 1 /* Content-Length */ + 1 /* blank */;
  if (!r.content_type.empty() && clean(r.content_type)) ++expected;
  for (const auto& [k, v] : r.headers)
    if (clean(v)) ++expected;
  if ((version == 10) == keep_alive) ++expected;  // Connection: keep-alive / close
  if (lines != expected) std::abort();

  http::response_parser<http::string_body> parser;
  parser.eager(true);
  boost::system::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(wire), ec);
  if (ec || !parser.is_done() || used != wire.size()) std::abort();
  const auto& msg = parser.get();
  if (msg.result_int() != static_cast<unsigned>(r.status)) std::abort();
  if (msg.version() != version) std::abort();
  if (msg.body() != r.body) std::abort();
  if (msg.keep_alive() != keep_alive) std::abort();
  if (msg[http::field::content_length] != std::to_string(r.body.size())) std::abort();
  if (!r.content_type.empty() && clean(r.content_type) &&
      msg[http::field::content_type] != r.content_type)
    std::abort();
  for (const auto& [k, v] : r.headers) {
    if (!clean(v)) continue;
    // The first header of that name (a name may repeat).
    bool found = false;
    for (const auto& [k2, v2] : r.headers)
      if (clean(v2) && boost::beast::iequals(k, k2)) {
        found = msg[k] == v2;
        break;
      }
    if (!found) std::abort();
  }
  return 0;
}
