// Fuzzes parse_proxy_config (both families) and validate_proxy_secret.
// Property: an accepted config, written back in the file's syntax, parses
// to the same table; errors on bad lines name the line.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/proxy_config.h"

namespace {

using namespace mtw::proto;

std::string write_back(const ProxyConfig& cfg) {
  std::string out;
  if (cfg.default_dc) out += "default " + std::to_string(*cfg.default_dc) + ";\n";
  for (const auto& [dc, endpoints] : cfg.clusters) {
    for (const Endpoint& e : endpoints) {
      out += "proxy_for " + std::to_string(dc) + " " + format_endpoint(e) + ";\n";
    }
  }
  return out;
}

bool same(const ProxyConfig& a, const ProxyConfig& b) {
  return a.clusters == b.clusters && a.default_dc == b.default_dc;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (IpFamily f : {IpFamily::kV4, IpFamily::kV6}) {
    const auto cfg = parse_proxy_config(text, f);
    if (!cfg) {
      const std::string& why = cfg.error().context;
      if (why.rfind("proxy config", 0) != 0) std::abort();  // every message says what it is about
      continue;
    }
    if (cfg->clusters.empty()) std::abort();
    if (cfg->default_dc && !cfg->clusters.contains(12345) &&
        cfg->lookup(12345) != &cfg->clusters.at(*cfg->default_dc))
      std::abort();
    const auto again = parse_proxy_config(write_back(*cfg), f);
    if (!again || !same(*cfg, *again)) std::abort();
  }
  (void)validate_proxy_secret(ByteSpan(reinterpret_cast<const std::byte*>(data), size));
  return 0;
}
