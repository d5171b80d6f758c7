#!/usr/bin/python3
"""Supervisor end to end, the unique-IP limit (docs/configuration.md
max_unique_ips, [connections] unique_ip_window_s and ipv6_source_prefix):
dave may use 2 client IPs at a time. Clients from several source addresses
in the sandbox (IPv4 on lo, IPv6 addresses added to lo):

1. two IPv4 sources: counted 2, not throttled;
2. a third: throttled (reason, event), the open connections stay open and
   still relay;
3. no new connection for longer than the window: the IPs go away, dave is
   unthrottled (event);
4. IPv6: two addresses of one /64 count as one client; a second /64 makes
   three and throttles again.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import time

import harness as h
import sandbox as sb

DAVE = "6123456789abcdef0123456789abcdef"
WINDOW_S = 2
V6 = {"a": "2001:db8:1:2::a", "b": "2001:db8:1:2::b", "c": "2001:db8:1:3::a"}


def Client(dst, port, source):
    """An obfuscated2 echo connection from a given source address."""
    return h.SourcedEcho(DAVE, dst, port, source)


def dave(env):
    return env.user("dave", env.status()) or {}


def wait_dave(env, pred, timeout):
    s = env.wait_status(lambda s: pred(env.user("dave", s) or {}), timeout=timeout, poll=0.1)
    return env.user("dave", s) or {}


def events(env, kind):
    return env.log_text().count("event=%s " % kind)


def test():
    env = sb.Setup("uniqueips", pool="10.217.0.0/16", prefix="mtu", uid_first=360000)
    clients = []
    try:
        for a in V6.values():
            sb.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"])
        port6 = sb.free_port()
        env.write_config(
            [{"name": "dave", "secret": DAVE, "max_unique_ips": 2, "throttle_rate": "1mbit"}],
            sections={"connections": {"unique_ip_window_s": WINDOW_S},
                      "accounting": {"sweep_interval_ms": 200}},
            listeners=[{"bind": "127.0.0.1:%d" % env.port, "protocols": "all"},
                       {"bind": "[::1]:%d" % port6, "protocols": "all"}])
        env.start()
        env.require_running(["dave"])

        # 1. Two IPv4 sources.
        for src in ("127.0.0.2", "127.0.0.3"):
            c = Client("127.0.0.1", env.port, src)
            clients.append(c)
            h.check(c.echo(), "an echo from %s" % src)
        u = wait_dave(env, lambda u: u.get("unique_ips") == 2, 5)
        h.check(u.get("unique_ips") == 2 and not u.get("throttled"),
                "two sources: unique_ips 2, not throttled (%s, %s)" % (u.get("unique_ips"), u.get("throttled")))

        # 2. A third source: throttled, nobody disconnected.
        c = Client("127.0.0.1", env.port, "127.0.0.4")
        clients.append(c)
        h.check(c.echo(), "an echo from 127.0.0.4")
        u = wait_dave(env, lambda u: u.get("throttled") is True, 5)
        h.check(u.get("throttled") is True and u.get("unique_ips") == 3
                and "unique" in (u.get("throttle_reason") or ""),
                "three sources: throttled, reason %r (unique_ips %s)" % (u.get("throttle_reason"), u.get("unique_ips")))
        h.check(events(env, "unique_ips_throttled") == 1, "event unique_ips_throttled recorded once")
        h.check(all(c.echo(1024) for c in clients), "every open connection still relays while throttled")

        # 3. The IPs go away after the window without new connections.
        for c in clients:
            c.close()
        clients.clear()
        t0 = time.monotonic()
        u = wait_dave(env, lambda u: u.get("unique_ips", 0) == 0, WINDOW_S + 5)
        h.check(u.get("throttled") is False and u.get("unique_ips", 0) == 0,
                "after %.1f s without connections (window %d s): unthrottled, unique_ips %s"
                % (time.monotonic() - t0, WINDOW_S, u.get("unique_ips")))
        h.check(events(env, "unique_ips_unthrottled") == 1, "event unique_ips_unthrottled recorded")

        # 4. IPv6 per /64.
        for src in (V6["a"], V6["b"]):
            c = Client("::1", port6, src)
            clients.append(c)
            h.check(c.echo(), "an echo from %s" % src)
        c = Client("127.0.0.1", env.port, "127.0.0.2")
        clients.append(c)
        h.check(c.echo(), "an echo from 127.0.0.2")
        time.sleep(0.6)  # three sweeps
        u = dave(env)
        h.check(u.get("unique_ips") == 2 and not u.get("throttled"),
                "two addresses of one /64 and one IPv4: unique_ips 2, not throttled (%s)" % u.get("unique_ips"))
        c = Client("::1", port6, V6["c"])
        clients.append(c)
        h.check(c.echo(), "an echo from %s" % V6["c"])
        u = wait_dave(env, lambda u: u.get("throttled") is True, 5)
        h.check(u.get("throttled") is True and u.get("unique_ips") == 3,
                "a second /64: unique_ips 3, throttled (%s)" % u.get("unique_ips"))
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
    sb.main_wrapper(test, "test_supervisor_unique_ips")
