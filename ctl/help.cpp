// mtwardenctl's help texts: one per command and command group. docs/cli.md
// carries the same content at more length.
#include <string>
#include <string_view>
#include <vector>

#include "ctl/args.h"

namespace mtw::ctl {
namespace {

constexpr std::string_view kExitCodes =
    "Exit codes: 0 ok, 1 the API answered an error, 2 bad command line,\n"
    "            3 cannot reach the API, 4 unexpected response.\n";

constexpr std::string_view kLimitFlags =
    "Limit flags (the value \"default\" removes the override: inherit [defaults]):\n"
    "  --rate-up R            client->Telegram rate: 20mbit, 2.5MB/s, bits/s, unlimited\n"
    "  --rate-down R          Telegram->client rate, same forms\n"
    "  --quota Q              bytes per period: 50GiB, 500MB, unlimited\n"
    "  --period P             daily | weekly | monthly | lifetime\n"
    "  --anchor-day N         period start: day of month 1..31 (monthly), weekday 1..7 (weekly)\n"
    "  --throttle R           rate once the quota is used up\n"
    "  --warn-percent N       quota share (1..99) that raises a warning event\n"
    "  --max-connections N    open connections at once (0 or unlimited: no cap)\n"
    "  --max-ips N            distinct client IPs at once (0 or unlimited: no cap)\n"
    "  --on-demand on|off     start the user's cell at the first connection\n"
    "  --idle-teardown SECONDS  on-demand cells: tear down after this idle time\n"
    "  --bandwidth-weight N   1..1000: share of the host [bandwidth] budget among\n"
    "                         heavy users (3 gets three times what 1 gets)\n";

struct Topic {
  std::string_view name;
  std::string_view text;
  bool limit_flags = false;
};

const Topic kTopics[] = {
    {"",
     "Usage: mtwardenctl [GLOBAL OPTIONS] COMMAND [ARGS]\n"
     "Manages a running mtwarden through its HTTP API.\n"
     "\n"
     "Global options (also accepted after the command):\n"
     "  --socket PATH   the API's Unix socket (env MTWARDEN_SOCKET; default "
     "/run/mtwarden/api.sock)\n"
     "  --url URL       http://HOST:PORT of the API's TCP listener instead of the socket\n"
     "  --token TOKEN   bearer token for --url (env MTWARDEN_TOKEN)\n"
     "  --json          print the API's JSON (pretty) instead of tables\n"
     "  -h, --help      this help; COMMAND --help for a command's\n"
     "\n"
     "Commands:\n"
     "  users add NAME [...]     create a user\n"
     "  users list               all users: state, connections, usage, quota\n"
     "  users show NAME          one user in detail\n"
     "  users rm NAME            delete a user\n"
     "  users enable NAME        let the user connect again\n"
     "  users disable NAME       stop the user's proxy (the user is kept)\n"
     "  users reset NAME         reset the user's usage in the current period\n"
     "  users limit NAME [...]   change rates, quota, caps, expiry\n"
     "  users set NAME [...]     change the user's upstreams (egress)\n"
     "  users rotate NAME [...]  add a new secret; old ones expire after a grace time\n"
     "  users ips NAME           the user's client addresses with a connection open now\n"
     "  link NAME                the user's tg:// and https:// links and a QR code\n"
     "  qr NAME --png|--svg FILE\n"
     "                           write a link's QR code to a file\n"
     "  status                   the server's status\n"
     "  mask                     the mask profile of each fake-TLS domain\n"
     "  fleet                    the hosts sharing the store and their last sweeps\n"
     "  upstreams                the [[upstream]]s, their users and their health\n"
     "  usage NAME [...]         traffic per day or month\n"
     "  reload                   re-read the configuration file (like SIGHUP)\n"
     "  events [...]             recent events (throttled, quota, restarts, ...)\n"
     "  token rotate             new bearer token for the TCP API (socket only)\n"},
    {"users",
     "Usage: mtwardenctl users SUBCOMMAND ...\n"
     "  add NAME [...]     create a user             list            all users\n"
     "  show NAME          one user in detail        rm NAME         delete a user\n"
     "  enable NAME        enable                    disable NAME    disable\n"
     "  reset NAME         reset the period's usage  limit NAME ...  change limits\n"
     "  rotate NAME ...    rotate the secret         ips NAME        open client IPs\n"
     "  set NAME ...       change the upstreams\n"
     "See mtwardenctl users SUBCOMMAND --help.\n"},
    {"users add",
     "Usage: mtwardenctl users add NAME [--secret HEX]... [--domain D] [--disabled]\n"
     "                             [--expires YYYY-MM-DD|never] [--comment TEXT] [--ad-tag HEX]\n"
     "                             [--upstreams LIST] [--upstream-password-file F]\n"
     "                             [LIMIT FLAGS]\n"
     "Creates a user (POST /v1/users) and prints it.\n"
     "  --secret HEX      a secret (32 hex, dd+32 hex, or ee+32 hex+domain hex); repeatable.\n"
     "                    None: the server generates a fake-TLS secret.\n"
     "  --domain D        fake-TLS domain for the generated secret\n"
     "  --disabled        create the user disabled\n"
     "  --expires DATE    last day the user works (UTC), or never\n"
     "  --comment TEXT    free text\n"
     "  --ad-tag HEX      the @MTProxybot ad tag (32 hex): relay via Telegram's middle proxies\n"
     "  --upstreams LIST  as for users set (default: inherit)\n"
     "  --upstream-password-file F  as for users set\n",
     true},
    {"users list",
     "Usage: mtwardenctl users list\n"
     "Lists every user: NAME STATE ENABLED CONNS USAGE (this period) QUOTA THROTTLED EXPIRES.\n"},
    {"users show",
     "Usage: mtwardenctl users show NAME\n"
     "Shows one user: settings, secrets, limits in force, live status and quota.\n"},
    {"users ips",
     "Usage: mtwardenctl users ips NAME\n"
     "Lists the addresses the user has a connection open from now (GET\n"
     "/v1/users/NAME/ips): ADDRESS KEY CONNS. KEY is what max_unique_ips counts: the\n"
     "IPv4 address, or the IPv6 address's /64 ([connections] ipv6_source_prefix).\n"
     "As of the user's worker's last report (every few sweeps) plus newer connections.\n"
     "users show gives last_seen and online.\n"},
    {"users rm",
     "Usage: mtwardenctl users rm NAME\n"
     "Deletes a user created through the API (users from the configuration file are\n"
     "removed there). Its proxy stops at once.\n"},
    {"users enable", "Usage: mtwardenctl users enable NAME\nEnables the user; prints the user.\n"},
    {"users disable",
     "Usage: mtwardenctl users disable NAME\n"
     "Disables the user: its proxy stops and its connections close; prints the user.\n"},
    {"users reset",
     "Usage: mtwardenctl users reset NAME\n"
     "Resets the user's usage in the current quota period (lifts a quota throttle).\n"},
    {"users limit",
     "Usage: mtwardenctl users limit NAME [LIMIT FLAGS] [--expires YYYY-MM-DD|never]\n"
     "                               [--ad-tag HEX|none]\n"
     "Changes the user's limits (PATCH /v1/users/NAME); give at least one flag.\n"
     "Takes effect live (an ad tag for new connections). Prints the user.\n"
     "  --expires DATE    last day the user works (UTC), or never\n"
     "  --ad-tag HEX      the user's ad tag (32 hex); none = remove it\n",
     true},
    {"users set",
     "Usage: mtwardenctl users set NAME [--upstreams inherit|direct|NAME[,NAME...]]\n"
     "                             [--upstream-password-file FILE]\n"
     "                             [--bandwidth-weight N|default]\n"
     "Changes the user's egress or bandwidth weight (PATCH /v1/users/NAME); give\n"
     "at least one flag. Takes effect live: new connections use the new upstreams,\n"
     "open ones keep theirs; a weight moves the user's share of the host budget\n"
     "at the next sweep, without a restart. Prints the user.\n"
     "  --upstreams LIST  [[upstream]] names, tried by weight and health; inherit =\n"
     "                    [egress] upstreams; direct = no upstream\n"
     "  --upstream-password-file FILE\n"
     "                    the SOCKS5 password for auth = \"user-secret\" upstreams:\n"
     "                    FILE's first line (an empty line removes it). Never on the\n"
     "                    command line, never shown back\n"
     "  --bandwidth-weight N\n"
     "                    1..1000: the user's weight in the split of the host\n"
     "                    [bandwidth] budget; default = inherit [defaults]\n"},
    {"users rotate",
     "Usage: mtwardenctl users rotate NAME [--secret HEX] [--grace SECONDS]\n"
     "Adds a new secret; the old ones keep working for the grace time, then expire.\n"
     "  --secret HEX      the new secret (default: generated, same kind and domain)\n"
     "  --grace SECONDS   how long old secrets keep working (default: the server's\n"
     "                    [api] secret_grace_s; 0 = revoke at once)\n"},
    {"link",
     "Usage: mtwardenctl link NAME\n"
     "Prints the user's proxy links (tg:// and https://t.me) and the first tg:// link\n"
     "as a QR code in the terminal. --json prints {\"host\",\"ports\",\"tg\",\"https\"}.\n"},
    {"qr",
     "Usage: mtwardenctl qr NAME (--png FILE | --svg FILE) [--index N]\n"
     "Writes the QR code of one of the user's tg:// links to FILE (atomically).\n"
     "  --png FILE   PNG image\n"
     "  --svg FILE   SVG document\n"
     "  --index N    which link (0-based, the order of `link`); default 0\n"
     "--json prints {\"written\":FILE,\"bytes\":N}.\n"},
    {"status",
     "Usage: mtwardenctl status\n"
     "Shows the server: version, uptime, listeners, users, cells, gate, connections.\n"},
    {"mask",
     "Usage: mtwardenctl mask\n"
     "Shows the mask profile each fake-TLS domain is answered with: its target, where it\n"
     "comes from (measured by this run, stored from an earlier one, or builtin: no\n"
     "measurement yet), its age, cipher, first-flight record sizes and wire size,\n"
     "the mask's median handshake latency, the next probe and the last probe error.\n"},
    {"fleet",
     "Usage: mtwardenctl fleet\n"
     "Shows the store's engine and every host that shares it ([store] backend =\n"
     "\"postgresql\"; one host with SQLite): when it first started, its last committed\n"
     "accounting sweep and that sweep's age, and how many sweeps it has committed.\n"
     "This host is marked with *. The list is read by the supervisor every 10 s.\n"},
    {"upstreams",
     "Usage: mtwardenctl upstreams\n"
     "Shows every [[upstream]] of the configuration: its type, address, authentication\n"
     "and weight (direct ones: the source address or interface their users leave\n"
     "from), how many users' upstreams in force name it, how many running workers\n"
     "count it up or down in their last report, and their connects, failures and\n"
     "bytes through it summed (each since its worker started).\n"},
    {"usage",
     "Usage: mtwardenctl usage NAME [--by day|month] [--from DATE] [--to DATE]\n"
     "Shows the user's traffic per day (default) or month, up, down and total.\n"
     "  --by day|month   one row per day (default: the last 30 days) or month (the last 12)\n"
     "  --from DATE      first day, YYYY-MM-DD (with --by month also YYYY-MM), inclusive, UTC\n"
     "  --to DATE        last day, same forms, inclusive\n"},
    {"reload",
     "Usage: mtwardenctl reload\n"
     "Re-reads the configuration file, like SIGHUP; a rejected file is reported and\n"
     "the running configuration stays.\n"},
    {"events",
     "Usage: mtwardenctl events [--after N] [--limit N]\n"
     "Recent events, oldest first: SEQ TIME USER KIND DETAIL.\n"
     "  --after N    only events with a sequence number above N\n"
     "  --limit N    at most N events\n"},
    {"token",
     "Usage: mtwardenctl token rotate\n"
     "See mtwardenctl token rotate --help.\n"},
    {"token rotate",
     "Usage: mtwardenctl token rotate\n"
     "Makes a new bearer token for the TCP API and prints it (shown only once; the\n"
     "old token stops working). Only over the Unix socket.\n"},
};

}  // namespace

std::string help_text(std::string_view topic) {
  for (const auto& t : kTopics) {
    if (t.name != topic) continue;
    std::string out(t.text);
    if (t.limit_flags) out += std::string("\n") + std::string(kLimitFlags);
    out += std::string("\n") + std::string(kExitCodes);
    return out;
  }
  return "";
}

std::vector<std::string> help_topics() {
  std::vector<std::string> out;
  for (const auto& t : kTopics) out.emplace_back(t.name);
  return out;
}

}  // namespace mtw::ctl
