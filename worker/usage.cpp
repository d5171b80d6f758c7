// The --help text of mtwarden-worker (kept apart so options.cpp stays small).
#include "worker/options.h"

namespace mtw::worker {

std::string usage_text() {
  return R"(Usage: mtwarden-worker --bind HOST:PORT [--bind ...] --secret SECRET [--secret ...] [options]

A single-user Telegram MTProxy relay (direct or middle-proxy mode, obfuscated2 and
fake TLS).

Listening and secrets:
  --bind HOST:PORT          listen here (repeatable; IPv6 as [::]:443; port 0 = any,
                            the bound address is printed as "listening ADDR:PORT")
  --control-fd N            managed mode: receive client sockets from the parent over the
                            inherited AF_UNIX SOCK_SEQPACKET fd N (docs/worker-control.md)
  --orphan-timeout S        managed mode: when the parent closes the control socket, keep
                            relaying for up to S waiting for a new controller, then drain
                            (default 0 = drain at once)
  --reattach-fd N           a listening AF_UNIX SOCK_SEQPACKET socket on which a new
                            controller (uid 0 or the parent's) re-attaches while the
                            worker is orphaned (needs --orphan-timeout)
  --secret SECRET           a proxy secret: 32 hex, dd+32 hex, ee+32 hex+hex(domain), or
                            base64url of those (repeatable)
  --secrets-file FILE       more secrets, one per line, '#' comments; re-read on SIGHUP
  --allow PROTOCOLS         "all" or a comma list of abridged,intermediate,secure,tls
  --tls-skew SECONDS        fake-TLS client clock window, +-SECONDS (default 600)
  --public-host HOST        host name printed in the proxy links (default: the bind address)

Upstream:
  --dc N=HOST:PORT          override the address of DC N (repeatable; N may be negative)
  --prefer-ipv6             connect to DCs over IPv6 first
  --fast-mode on|off        DC->client bytes pass without re-encryption (default on)
  --mask HOST:PORT          forward failed handshakes here byte-exact (default: none, the
                            connection is read and discarded until --mask-discard-timeout)
  --egress-file FILE        dial DCs through these upstreams (direct, SOCKS4, SOCKS5), with
                            weights, health checks and failover (docs/worker.md, "Egress")
  --mask-domain-port N      with no other target, mask to the fake-TLS domain itself on
                            port N: the hello's SNI when a secret names it, else the first
                            fake-TLS secret's domain (default 0 = off)
  --mask-domain D=HOST:PORT the mask of fake-TLS domain D (repeatable; beats --mask for
                            hellos naming D)
  --mask-listener ID=HOST:PORT
                            the mask of connections handed off from listener ID (repeatable;
                            beats --mask, and --mask-domain without a known SNI)
  --unknown-sni mask|drop   a hello naming a domain no secret has: masked (default) or closed
  --mask-connect-timeout S  mask connect deadline (default 5)
  --mask-mirror-after S     a handshake still undecided after S is mirrored to its mask,
                            whose answer or close then ends it (default 0.25; 0 = off)
  --flight-segment N        send the fake-TLS answer in segments of at most N bytes
                            (64..1400), the relay's later data at full size (default 0 = off)

Middle-proxy mode (ad tags; docs/worker.md):
  --ad-tag HEX32            relay every client through Telegram's middle proxies with this
                            ad tag (needs --proxy-secret and --proxy-config)
  --proxy-secret FILE       the binary proxy secret (core.telegram.org/getProxySecret)
  --proxy-config FILE       proxy-multi.conf (getProxyConfig or getProxyConfigV6)
  --proxy-config-v6 FILE    the IPv6 list (getProxyConfigV6): with --prefer-ipv6 it is used
                            when it parses, else only when --proxy-config does not
  --middle-pool N           middle-proxy connections per cluster, 1..64 (default 2)
  --public-ip ADDR          our address as the middle proxy sees it, for the key
                            derivation (default: the connection's local address; set it
                            behind NAT)
  --middle-stall-timeout S  a middle proxy silent this long while a client waits is
                            replaced and its clients closed (default 5, >= 0.5)

Limits and timeouts (durations in seconds; "250ms" also accepted):
  --handshake-timeout S     deadline for the client handshake; then masked (default 10)
  --idle-timeout S          close a relay with no traffic either way (default 300)
  --dc-connect-timeout S    DC connect deadline (default 10)
  --drain-timeout S         on SIGTERM/SIGINT, wait this long for active relays (default 30)
  --mask-discard-timeout S  without --mask: discard for S plus up to 100% jitter (default 30)
  --max-connections N       accepted connections above N wait before their handshake (0 = no cap)
  --replay-entries N        replay cache entries, 20 bytes each (65536)

Observability:
  --stats-interval S        log a one-line counter summary every S (0 = off; default 60)
  --stats-file FILE         rewrite a JSON counter snapshot every second (atomic rename)
  --log-level LEVEL         trace, debug, info, warn, error, critical, off (default info)
  --confinement-check       install the seccomp filter, try each denied call, print one
                            line per call; exit 0 when all were refused
  --help                    this text

Signals: SIGTERM/SIGINT stop accepting and drain; SIGHUP re-reads --secrets-file.
Exit status: 0 after a clean stop, 2 on bad flags, 1 on start-up failure.
)";
}

}  // namespace mtw::worker
