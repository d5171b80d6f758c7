#include "webfront/options.h"

#include <charconv>
#include <cmath>
#include <set>

#include "base/number.h"

namespace mtw::webfront {
namespace {

using base::Errc;
using base::fail;
using base::parse_u32;

Result<void> store_u32(std::uint32_t& field, Result<std::uint32_t> r, bool nonzero) {
  if (!r) return tl::unexpected(r.error());
  if (nonzero && *r == 0) return fail(Errc::kBadInput, "must not be 0");
  field = *r;
  return {};
}

Result<void> set_value(FrontOptions& o, std::string_view flag, std::string_view v) {
  auto& l = o.limits;
  if (flag == "--listen-fd") {
    auto n = parse_u32(v);
    if (!n) return tl::unexpected(n.error());
    if (*n < 3 || *n > 1'000'000) return fail(Errc::kBadInput, "fd out of range");
    o.listen_fds.push_back(static_cast<int>(*n));
    return {};
  }
  if (flag == "--cert") {
    o.cert_file = std::string(v);
    return {};
  }
  if (flag == "--key") {
    o.key_file = std::string(v);
    return {};
  }
  if (flag == "--host") {
    auto a = proto::parse_web_proxy_address(v);
    if (!a) return tl::unexpected(a.error());
    o.address = *a;
    return {};
  }
  if (flag == "--users") {
    o.users_file = std::string(v);
    return {};
  }
  if (flag == "--control-fd") {
    auto n = parse_u32(v);
    if (!n) return tl::unexpected(n.error());
    if (*n < 3 || *n > 1'000'000) return fail(Errc::kBadInput, "fd out of range");
    o.control_fd = static_cast<int>(*n);
    return {};
  }
  if (flag == "--listener-id") return store_u32(o.listener_id, parse_u32(v), false);
  if (flag == "--backend") {
    auto e = proto::parse_endpoint(v);
    if (!e) return tl::unexpected(e.error());
    o.backend = *e;
    return {};
  }
  if (flag == "--decoy-dir") {
    o.decoy_dir = std::string(v);
    return {};
  }
  if (flag == "--log-level") {
    o.log_level = std::string(v);
    return {};
  }
  if (flag == "--cert-check-interval")
    return store_u32(o.cert_check_ms, parse_duration_ms(v), true);
  if (flag == "--max-connections") return store_u32(l.max_connections, parse_u32(v), true);
  if (flag == "--max-sessions") return store_u32(l.max_sessions, parse_u32(v), true);
  if (flag == "--max-sessions-per-user") {
    return store_u32(l.max_sessions_per_user, parse_u32(v), true);
  }
  if (flag == "--max-streams-per-user") {
    return store_u32(l.max_streams_per_user, parse_u32(v), true);
  }
  if (flag == "--max-streams-per-session") {
    return store_u32(l.max_streams_per_session, parse_u32(v), true);
  }
  if (flag == "--handshake-timeout") {
    return store_u32(l.handshake_timeout_ms, parse_duration_ms(v), true);
  }
  if (flag == "--request-timeout") {
    return store_u32(l.request_timeout_ms, parse_duration_ms(v), true);
  }
  if (flag == "--session-idle-timeout") {
    return store_u32(l.session_idle_timeout_ms, parse_duration_ms(v), true);
  }
  if (flag == "--session-max") return store_u32(l.session_max_ms, parse_duration_ms(v), true);
  if (flag == "--bootstrap-ttl") return store_u32(l.bootstrap_ttl_ms, parse_duration_ms(v), true);
  if (flag == "--backend-connect-timeout") {
    return store_u32(l.backend_connect_timeout_ms, parse_duration_ms(v), true);
  }
  return fail(Errc::kBadInput, "unknown flag");
}

}  // namespace

Result<std::uint32_t> parse_duration_ms(std::string_view text) {
  std::string_view num = text;
  double scale = 1000.0;
  if (num.ends_with("ms")) {
    num.remove_suffix(2);
    scale = 1.0;
  } else if (num.ends_with("s")) {
    num.remove_suffix(1);
  }
  double value = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  if (num.empty() || ec != std::errc() || p != num.data() + num.size() || !(value >= 0) ||
      value * scale > 4'000'000'000.0) {
    return fail(Errc::kBadInput, "not a duration: " + std::string(text));
  }
  return static_cast<std::uint32_t>(std::llround(value * scale));
}

Result<FrontOptions> parse_front_options(const std::vector<std::string_view>& args) {
  FrontOptions o;
  bool have_backend = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      o.help = true;
      return o;
    }
    std::string_view value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return fail(Errc::kBadInput, std::string(flag) + ": missing value");
    }
    if (auto r = set_value(o, flag, value); !r) {
      std::string msg(flag);
      msg += ": ";
      msg += r.error().context;
      return fail(Errc::kBadInput, std::move(msg));
    }
    if (flag == "--backend") have_backend = true;
  }
  if (o.listen_fds.empty()) return fail(Errc::kBadInput, "--listen-fd is required");
  if (o.cert_file.empty() || o.key_file.empty()) {
    return fail(Errc::kBadInput, "--cert and --key are required");
  }
  if (o.address.host.empty()) return fail(Errc::kBadInput, "--host is required");
  if (o.control_fd >= 0) {
    if (!o.users_file.empty() || have_backend) {
      return fail(Errc::kBadInput, "--control-fd excludes --users and --backend");
    }
    return o;
  }
  if (o.users_file.empty()) return fail(Errc::kBadInput, "--users (or --control-fd) is required");
  if (!have_backend) return fail(Errc::kBadInput, "--backend (or --control-fd) is required");
  return o;
}

Result<std::vector<proto::WebUserSecret>> parse_user_table(std::string_view text) {
  std::vector<proto::WebUserSecret> out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
    while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
    while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::size_t sep = 0;
    while (sep < line.size() && !is_space(line[sep])) ++sep;
    std::string_view id_text = line.substr(0, sep);
    std::string_view secret_text = line.substr(sep);
    while (!secret_text.empty() && is_space(secret_text.front())) secret_text.remove_prefix(1);
    auto where = [&](std::string_view what) {
      std::string msg = "line ";
      msg += std::to_string(line_no);
      msg += ": ";
      msg += what;
      return fail(Errc::kBadInput, std::move(msg));
    };
    auto id = parse_u32(id_text);
    if (!id) return where("bad user id");
    if (secret_text.empty()) return where("missing secret");
    auto secret = proto::parse_secret(secret_text);
    if (!secret) return where(secret.error().context);
    out.push_back({*id, *secret});
  }
  return out;
}

std::string front_usage_text() {
  return R"(Usage: mtwarden-webfront --listen-fd FD [--listen-fd FD ...] --cert FILE --key FILE
                          --host HOST[/PATH] --users FILE --backend HOST:PORT [options]
       mtwarden-webfront --listen-fd FD ... --cert FILE --key FILE --host HOST[/PATH]
                          --control-fd N [--listener-id N] [options]

The TLS-terminating HTTPS front of Telegram's WEB proxy (tg://webproxy): serves
the bridge page at https://HOST/?bridge=CAPABILITY, the WebSocket carrier at
/api/v1/ws, and a decoy site for every other request (docs/webfront.md).

  --listen-fd FD             inherited bound+listening TCP socket (repeatable)
  --cert FILE                PEM certificate chain (leaf first)
  --key FILE                 PEM private key
  --cert-check-interval D    how often the two files are checked for a change (10)
  --host HOST[/PATH]         the public WEB host name (and optional base path)
  --users FILE               standalone: "USER_ID SECRET" lines (plain or dd secrets)
  --backend HOST:PORT        standalone: numeric address each stream is connected to
  --control-fd N             managed: inherited AF_UNIX SOCK_SEQPACKET socket to the
                             supervisor (users by gate-table, streams as gate-handoffs)
  --listener-id N            managed: the listener id put in every gate-handoff (0)
  --decoy-dir DIR            static site served to everything but the bridge
                             (index.html, 404.html; default: a built-in page)
  --max-connections N        HTTPS connections at once (4096)
  --max-sessions N           carrier sessions at once (1024)
  --max-sessions-per-user N  (8)
  --max-streams-per-user N   (64)
  --max-streams-per-session N (16)
  --handshake-timeout D      TLS handshake and first request (10)
  --request-timeout D        each later request on a connection (30)
  --session-idle-timeout D   a session with no frame either way is closed (300)
  --session-max D            absolute session lifetime (86400)
  --bootstrap-ttl D          lifetime of the page's single-use token (120)
  --backend-connect-timeout D (10)
  --log-level L              trace, debug, info, warn, error, critical, off (info)
  --help                     this text

Durations: seconds ("10", "1.5", "2s") or milliseconds ("250ms").
)";
}

}  // namespace mtw::webfront
