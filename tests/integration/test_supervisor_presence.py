#!/usr/bin/python3
"""Supervisor end to end, a user's presence (docs/api.md "User status"
online/last_seen, "Client addresses" GET /v1/users/{name}/ips; docs/cli.md
`users ips`), through mtwardenctl against the real daemon. Clients from
three source addresses in the sandbox (two IPv4 on lo, one IPv6 added to
lo), one of them with two connections:

1. before any connection: offline, last_seen null, no addresses;
2. connections open: the three addresses listed with their unique-IP keys
   (IPv6 as its /64) and connection counts; online, last_seen = now; the
   plain user list and `users show` carry no address; the log at info level
   names none of them;
3. every connection closed: the list empties, offline, last_seen = the
   close time (within a sweep interval and the second's rounding).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
Env: MTW_CTL plus sandbox.py's.
"""

import json
import os
import subprocess
import time

import harness as h
import sandbox as sb

CTL = os.environ.get("MTW_CTL", "build/hc/ctl/mtwardenctl")
ERIN = "7123456789abcdef0123456789abcdef"
SWEEP_MS = 200
V6 = "2001:db8:1:2::a"
SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.3", V6)  # .3 twice


def Client(dst, port, source):
    """An obfuscated2 echo connection from a given source address."""
    return h.SourcedEcho(ERIN, dst, port, source)


def ctl(env, *args, as_json=True):
    argv = [CTL, "--socket", os.path.join(env.run_dir, "api.sock")] + (["--json"] if as_json else []) + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    h.check(p.returncode == 0, "mtwardenctl %s: exit 0 (%s, %r)" % (" ".join(args), p.returncode, p.stderr[-300:]))
    return json.loads(p.stdout) if as_json else p.stdout


def wait_ips(env, pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        ips = ctl(env, "users", "ips", "erin")
        if pred(ips) or time.monotonic() > deadline:
            return ips
        time.sleep(0.1)


def test():
    if not os.access(CTL, os.X_OK):
        h.check(False, "MTW_CTL=%s is an executable (build mtwardenctl)" % CTL)
        return
    env = sb.Setup("presence", pool="10.218.0.0/16", prefix="mtp", uid_first=370000)
    clients = []
    try:
        sb.run(["ip", "-6", "addr", "add", V6 + "/128", "dev", "lo", "nodad"])
        port6 = sb.free_port()
        env.write_config(
            [{"name": "erin", "secret": ERIN}],
            sections={"accounting": {"sweep_interval_ms": SWEEP_MS}},
            listeners=[{"bind": "127.0.0.1:%d" % env.port, "protocols": "all"},
                       {"bind": "[::1]:%d" % port6, "protocols": "all"}])
        env.start()
        env.require_running(["erin"])

        # 1. Not seen yet.
        st = ctl(env, "users", "show", "erin")["status"]
        h.check(st.get("online") is False and st.get("last_seen") is None,
                "before any connection: offline, last_seen null (%r, %r)" % (st.get("online"), st.get("last_seen")))
        ips = ctl(env, "users", "ips", "erin")
        h.check(ips.get("ips") == [] and ips.get("ipv6_prefix") == 64 and ips.get("truncated") is False,
                "before any connection: no addresses, ipv6_prefix 64 (%r)" % ips)

        # 2. Connections from three addresses (two from 127.0.0.3).
        for src in SOURCES:
            c = Client("::1", port6, src) if ":" in src else Client("127.0.0.1", env.port, src)
            clients.append(c)
            h.check(c.echo(), "an echo from %s" % src)
        want = {"127.0.0.2": ("127.0.0.2", 1), "127.0.0.3": ("127.0.0.3", 2), V6: ("2001:db8:1:2::/64", 1)}
        got = lambda ips: {i["address"]: (i["key"], i["connections"]) for i in ips.get("ips", [])}
        ips = wait_ips(env, lambda ips: got(ips) == want, 10)
        h.check(got(ips) == want, "open: the three addresses with key and connections (%r)" % got(ips))
        st = ctl(env, "users", "show", "erin")["status"]
        now = time.time()
        h.check(st.get("online") is True and abs((st.get("last_seen") or 0) - now) <= 2,
                "open: online, last_seen now (%r, now %.0f)" % (st.get("last_seen"), now))
        text = ctl(env, "users", "ips", "erin", as_json=False)
        h.check(text.startswith("ADDRESS") and "2001:db8:1:2::/64" in text and "127.0.0.3" in text,
                "users ips erin: a table of addresses (%r)" % text[:200])
        listing = json.dumps(ctl(env, "users", "list")) + ctl(env, "users", "list", as_json=False)
        shown = json.dumps(ctl(env, "users", "show", "erin")) + ctl(env, "users", "show", "erin", as_json=False)
        leaked = [a for a in want if a in listing or a in shown]
        h.check(not leaked, "the user list and users show name no client address (%r)" % leaked)
        # Past the second of every handoff: a last_seen from the handoffs or
        # an older report would now read earlier than the close.
        time.sleep(2.5)
        h.check(all(c.echo(1024) for c in clients), "every connection still relays")

        # 3. All closed: the list empties, last_seen is the close time.
        for c in clients:
            c.close()
        clients.clear()
        t_close = time.time()
        ips = wait_ips(env, lambda ips: ips.get("ips") == [], 10)
        h.check(ips.get("ips") == [], "closed: no address left (%r after %.1f s)" % (ips.get("ips"), time.time() - t_close))
        h.check(ctl(env, "users", "ips", "erin", as_json=False) == "no connection open\n",
                "users ips erin: no connection open")
        st = ctl(env, "users", "show", "erin")["status"]
        seen = st.get("last_seen") or 0
        h.check(st.get("online") is False and int(t_close) <= seen <= t_close + SWEEP_MS / 1000.0 + 1,
                "closed: offline, last_seen %r = the close time %.2f (within a sweep and the second)"
                % (seen, t_close))
        time.sleep(1.5)
        st = ctl(env, "users", "show", "erin")["status"]
        h.check(st.get("last_seen") == seen, "last_seen stays at the close time (%r)" % st.get("last_seen"))

        log = env.log_text()
        named = [a for a in ("127.0.0.2", "127.0.0.3", V6) if a in log]
        h.check(not named, "the log at level info names no client address (%r)" % named)
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        for c in clients:
            try:
                c.close()
            except OSError:
                pass
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_presence")
