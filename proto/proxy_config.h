// Middle-proxy configuration files (protocol.md §8): proxy-multi.conf as
// served by core.telegram.org/getProxyConfig (IPv4) and getProxyConfigV6,
// and the binary proxy secret of getProxySecret. Pure parsers over text and
// bytes (the caller reads the files); thread-safe.
//
// Grammar, one statement per `;` (at most one per line), `#` to end of line
// is a comment, blank lines ignored:
//   proxy_for <dc> <ip:port>;     dc a non-zero int16 (negative = media)
//   default <dc>;                 at most once; must name a listed cluster
// The v4 file takes dotted-quad IPv4 endpoints, the v6 file [IPv6]:port.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "proto/bytes.h"
#include "proto/dc_table.h"  // Endpoint

namespace mtw::proto {

enum class IpFamily { kV4, kV6 };

// Far above the real files (about 1 KB); a bigger download is not a config.
inline constexpr std::size_t kMaxProxyConfigBytes = 1024 * 1024;

struct ProxyConfig {
  // Cluster (signed DC) -> middle proxies, in file order.
  std::map<std::int16_t, std::vector<Endpoint>> clusters;
  std::optional<std::int16_t> default_dc;

  // The cluster for a client's DC: its own, else the default one, else
  // nullptr. The pointer lives as long as this config is unchanged.
  const std::vector<Endpoint>* lookup(std::int16_t dc) const;
};

// kBadInput with "proxy config line N: ..." naming the first bad line;
// kBadInput for a file without any proxy_for; kTooLarge over
// kMaxProxyConfigBytes.
[[nodiscard]] Result<ProxyConfig> parse_proxy_config(std::string_view text, IpFamily family);

// The proxy secret is binary and 128 bytes today; the official server
// accepts 32..256. A file of printable text only (an HTML error page, a hex
// dump) is rejected: a random secret is never all text. kBadInput with the
// reason; the message never contains secret bytes.
inline constexpr std::size_t kMinProxySecretBytes = 32;
inline constexpr std::size_t kMaxProxySecretBytes = 256;
[[nodiscard]] Result<void> validate_proxy_secret(ByteSpan secret);

}  // namespace mtw::proto
