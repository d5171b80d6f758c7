// mtwardenctl's command line, parsed without any I/O: argv (plus the two
// environment variables) -> an Invocation naming the API endpoint and one
// HTTP request (method, target, JSON body) with the kind of output to print.
// Help requests and bad command lines come back as values, so every mapping
// is unit-testable without a server. Thread-safe: pure functions.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace mtw::ctl {

// Process exit codes (documented in --help and docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitApiError = 1;     // the API answered with an error
inline constexpr int kExitUsage = 2;        // bad command line
inline constexpr int kExitUnreachable = 3;  // socket missing, permission, refused, timeout
inline constexpr int kExitUnexpected = 4;   // a response we cannot make sense of

inline constexpr std::string_view kDefaultSocket = "/run/mtwarden/api.sock";

// How the human output renders the response (--json always prints the JSON).
enum class Output {
  kUserList,   // GET /v1/users
  kUser,       // one user object (show, add, enable, disable, limit, rotate)
  kDone,       // a bare confirmation ("deleted alice", "usage of alice reset")
  kStatus,     // GET /v1/status
  kUsage,      // GET /v1/users/{name}/usage
  kLinks,      // links + terminal QR of the first tg:// link
  kQr,         // image body written to a file
  kEvents,     // GET /v1/events
  kToken,      // POST /v1/token/rotate
  kMask,       // GET /v1/mask-profiles
  kFleet,      // GET /v1/fleet
  kUpstreams,  // GET /v1/upstreams
  kIps,        // GET /v1/users/{name}/ips
};

struct Request {
  std::string method;                      // "GET", "POST", "PATCH", "DELETE"
  std::string target;                      // "/v1/users/alice/usage?by=day"
  std::optional<boost::json::value> body;  // sent as application/json when set
  Output output = Output::kDone;
  std::string done_message;  // for kDone: "deleted user alice"
  std::string file;          // for kQr: where the image goes
};

struct Endpoint {
  std::string socket_path;  // used when !tcp
  bool tcp = false;
  std::string host, port;  // from --url http://HOST:PORT
  std::string token;       // "" = no Authorization header
};

struct Invocation {
  Endpoint endpoint;
  bool json = false;
  Request request;
};

// What the command line asked for: run a request, or print help (stdout, exit 0).
struct Parsed {
  std::optional<Invocation> invocation;
  std::string help;  // set when help was asked for
};

// The environment's say: MTWARDEN_SOCKET, MTWARDEN_TOKEN ("" = unset).
struct Env {
  std::string socket;
  std::string token;
};

// A bad command line: `message` (no program prefix) for stderr, exit 2.
// Errc is kBadInput. args excludes argv[0].
[[nodiscard]] base::Result<Parsed> parse_command_line(const std::vector<std::string>& args,
                                                      const Env& env);

// The help text for a topic ("", "users", "users add", "token rotate", ...);
// empty when there is no such topic.
std::string help_text(std::string_view topic);
// Every topic with help, for tests and docs.
std::vector<std::string> help_topics();

}  // namespace mtw::ctl
