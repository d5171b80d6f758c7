// mtwarden-webfront's command line (docs/webfront.md): the listeners, the
// operator's certificate, the public WEB address, the users, where streams
// go, the decoy site and the limits. Pure parsing; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "proto/dc_table.h"
#include "proto/webproxy_access.h"

namespace mtw::webfront {

using base::Result;

struct FrontLimits {
  std::uint32_t max_connections = 4096;             // HTTPS connections at once, all clients
  std::uint32_t max_sessions = 1024;                // carrier sessions at once, all users
  std::uint32_t max_sessions_per_user = 8;          // WebUserBudget
  std::uint32_t max_streams_per_user = 64;          // WebUserBudget
  std::uint32_t max_streams_per_session = 16;       // WebSessionLimits::max_streams
  std::uint32_t handshake_timeout_ms = 10'000;      // TLS handshake + first request head
  std::uint32_t request_timeout_ms = 30'000;        // later requests on a kept-alive connection
  std::uint32_t session_idle_timeout_ms = 300'000;  // no frame either way
  std::uint32_t session_max_ms = 86'400'000;        // absolute session lifetime
  std::uint32_t bootstrap_ttl_ms = 120'000;         // the page's token, single use
  std::uint32_t backend_connect_timeout_ms = 10'000;
};

struct FrontOptions {
  std::vector<int> listen_fds;  // inherited, bound and listening TCP sockets
  std::string cert_file;        // PEM chain, leaf first
  std::string key_file;         // PEM private key
  std::uint32_t cert_check_ms = 10'000;
  proto::WebProxyAddress address;  // public host name (and optional v2 base path)
  std::string users_file;          // standalone: "USER_ID SECRET" lines
  proto::Endpoint backend;         // standalone: where each stream is connected (numeric address)
  int control_fd = -1;             // managed: the supervisor's control socket (control.h)
  std::uint32_t listener_id = 0;   // managed: put in every gate-handoff
  std::string decoy_dir;           // static site for everything but the bridge; "" = built in
  FrontLimits limits;
  std::string log_level = "info";
  bool help = false;
};

// Errors (kBadInput) name the flag and the problem. Required: at least one
// --listen-fd, --cert, --key, --host, and either --control-fd (managed) or
// both --users and --backend (standalone), not both.
[[nodiscard]] Result<FrontOptions> parse_front_options(const std::vector<std::string_view>& args);
std::string front_usage_text();

// "12", "1.5", "250ms" -> milliseconds (seconds by default).
[[nodiscard]] Result<std::uint32_t> parse_duration_ms(std::string_view text);

// The user table: one "USER_ID SECRET" per line (decimal u32, a secret in
// any form proto::parse_secret reads), '#' comments and blank lines ignored.
// Errors carry the line number, never the secret.
[[nodiscard]] Result<std::vector<proto::WebUserSecret>> parse_user_table(std::string_view text);

}  // namespace mtw::webfront
