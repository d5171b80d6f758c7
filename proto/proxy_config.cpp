// proxy-multi.conf and proxy-secret validation (protocol.md §8).
#include "proto/proxy_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <string>

namespace mtw::proto {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const std::size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

tl::unexpected<Error> line_error(std::size_t line, std::string_view what) {
  return base::fail(Errc::kBadInput,
                    "proxy config line " + std::to_string(line) + ": " + std::string(what));
}

bool parse_dc(std::string_view s, std::int16_t& dc) noexcept {
  if (s.empty()) return false;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), dc);
  return ec == std::errc() && ptr == s.data() + s.size() && dc != 0;
}

// A literal address of the file's family; the v6 file writes [addr]:port.
Result<Endpoint> parse_address(std::string_view text, IpFamily family) {
  const bool bracketed = !text.empty() && text.front() == '[';
  if ((family == IpFamily::kV6) != bracketed) {
    return base::fail(Errc::kBadInput, family == IpFamily::kV6
                                           ? "expected [IPv6]:port in the IPv6 config"
                                           : "expected IPv4:port in the IPv4 config");
  }
  Result<Endpoint> e = parse_endpoint(text);
  if (!e) return tl::unexpected(Error{Errc::kBadInput, 0, e.error().context});
  unsigned char buf[16];
  const int af = family == IpFamily::kV6 ? AF_INET6 : AF_INET;
  if (inet_pton(af, e->host.c_str(), buf) != 1) {
    return base::fail(Errc::kBadInput, family == IpFamily::kV6 ? "not a literal IPv6 address"
                                                               : "not a dotted-quad IPv4 address");
  }
  return e;
}

}  // namespace

const std::vector<Endpoint>* ProxyConfig::lookup(std::int16_t dc) const {
  auto it = clusters.find(dc);
  if (it == clusters.end() && default_dc) it = clusters.find(*default_dc);
  return it == clusters.end() ? nullptr : &it->second;
}

Result<ProxyConfig> parse_proxy_config(std::string_view text, IpFamily family) {
  if (text.size() > kMaxProxyConfigBytes) {
    return base::fail(Errc::kTooLarge,
                      "proxy config: file over " + std::to_string(kMaxProxyConfigBytes) + " bytes");
  }
  ProxyConfig cfg;
  std::size_t default_line = 0;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.find('\0') != std::string_view::npos) return line_error(line_no, "NUL byte");
    line = trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (line.back() != ';') return line_error(line_no, "statement does not end with ';'");
    line.remove_suffix(1);
    if (line.find(';') != std::string_view::npos) {
      return line_error(line_no, "more than one statement on a line");
    }
    const std::vector<std::string_view> words = split_words(line);
    if (words.empty()) return line_error(line_no, "empty statement");
    if (words[0] == "proxy_for") {
      std::int16_t dc = 0;
      if (words.size() != 3) return line_error(line_no, "expected 'proxy_for <dc> <ip:port>;'");
      if (!parse_dc(words[1], dc)) return line_error(line_no, "dc must be a non-zero int16");
      Result<Endpoint> e = parse_address(words[2], family);
      if (!e) return line_error(line_no, e.error().context);
      cfg.clusters[dc].push_back(std::move(*e));
    } else if (words[0] == "default") {
      std::int16_t dc = 0;
      if (words.size() != 2) return line_error(line_no, "expected 'default <dc>;'");
      if (!parse_dc(words[1], dc)) return line_error(line_no, "dc must be a non-zero int16");
      if (cfg.default_dc) return line_error(line_no, "second 'default' statement");
      cfg.default_dc = dc;
      default_line = line_no;
    } else {
      return line_error(line_no, "unknown statement (expected proxy_for or default)");
    }
  }
  if (cfg.clusters.empty()) return base::fail(Errc::kBadInput, "proxy config: no proxy_for lines");
  if (cfg.default_dc && !cfg.clusters.contains(*cfg.default_dc)) {
    return line_error(default_line, "default names a dc without proxy_for lines");
  }
  return cfg;
}

Result<void> validate_proxy_secret(ByteSpan secret) {
  if (secret.size() < kMinProxySecretBytes || secret.size() > kMaxProxySecretBytes) {
    return base::fail(Errc::kBadInput, "proxy secret: " + std::to_string(secret.size()) +
                                           " bytes, expected " +
                                           std::to_string(kMinProxySecretBytes) + ".." +
                                           std::to_string(kMaxProxySecretBytes));
  }
  const bool all_text = std::all_of(secret.begin(), secret.end(), [](std::byte b) {
    const auto c = std::to_integer<unsigned>(b);
    return (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r' || c == '\t';
  });
  if (all_text) {
    return base::fail(Errc::kBadInput,
                      "proxy secret: file is plain text (an error page?), expected binary");
  }
  return {};
}

}  // namespace mtw::proto
