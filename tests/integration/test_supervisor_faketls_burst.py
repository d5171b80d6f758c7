#!/usr/bin/python3
"""Supervisor end to end: fake-TLS clients that send at once after the
ServerHello all reach the DC.

1,000 fake-TLS ('ee') connections from three users go through the real gate,
supervisor and workers, 32 at a time, while obfuscated2 echo transfers keep
the workers busy. Each client sends its ClientHello, reads and checks the
ServerHello (HMAC), and then, without waiting, one flight: CCS, the
obfuscated2 init and its first data in application-data records. Sizes vary
from a few bytes to 64 KiB (a 64 KiB flight is what a client with a queued
upload sends). Every connection must get its data echoed by the fake DC
within 15 s, and no worker may count a handshake failure.

Then the same for 300 more with [connections] direct_lanes = false, so
that every client takes the supervisor's path (gate-handoff, forward) as
well as the lanes.

Before the fix every client whose flight was over 17 KiB failed whenever
the whole flight was in the socket by the time the worker read it (here:
all 333 with 20, 32 and 64 KiB): that first read filled the 17 KiB
handshake buffer, and finish_tls took the full buffer for "no room left for
the init" although the init had arrived (fail_bad_tls_init, then discard:
the client saw nothing and the DC no connection).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import concurrent.futures
import os
import signal
import socket
import time

import harness as h
import sandbox as sb

USERS = {
    "ann": "ee" + "1123456789abcdeffedcba9876543210" + h.TLS_DOMAIN.encode().hex(),
    "bob": "ee" + "2123456789abcdeffedcba9876543210" + h.TLS_DOMAIN.encode().hex(),
    "cid": "ee" + "3123456789abcdeffedcba9876543210" + "cdn.example.org".encode().hex(),
}
LOAD_SECRET = "4123456789abcdef0123456789abcdef"  # plain obfuscated2 user for the load
CONNECTIONS = 1000
PARALLEL = 32
SIZES = [1, 100, 1000, 4000, 16000, 17000, 20000, 32768, 65536]


def one(port, name, secret, size):
    """One fake-TLS client; returns None when its data came back, else why not."""
    c = h.FakeTlsClient(secret)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
    except OSError as e:
        return "connect: %s" % e
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not c.handshake(s):
            return "ServerHello missing or HMAC invalid"
        data = os.urandom(size)
        s.sendall(c.first_flight(data))
        back = c.read_plain(s, size)
        return None if back == data else "echo differs"
    except (OSError, ConnectionError) as e:
        return "%s (user %s, %d bytes)" % (e, name, size)
    finally:
        s.close()


def burst(env, count, what):
    names = list(USERS)
    jobs = [(names[i % 3], SIZES[i % len(SIZES)]) for i in range(count)]
    s0 = env.status()
    t0 = time.monotonic()
    failed = []
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
        futs = {ex.submit(one, env.port, n, USERS[n], size): (n, size) for n, size in jobs}
        for f in concurrent.futures.as_completed(futs):
            why = f.result()
            if why is not None:
                failed.append((futs[f], why))
    took = time.monotonic() - t0
    by_size = {}
    for (n, size), why in failed:
        by_size.setdefault(size, []).append(why)
    for size, whys in sorted(by_size.items()):
        sb.log("failed with %d bytes: %d, e.g. %s" % (size, len(whys), whys[0]))
    h.check(not failed, "%s: %d fake-TLS clients sending right after the ServerHello: all echoed "
            "(%d failed, %.1f s)" % (what, count, len(failed), took))
    time.sleep(1)  # the gate's counters come with its next report (each sweep)
    s = env.status()
    g0, g = s0["gate"].get("counters", {}), s["gate"].get("counters", {})
    sb.log("%s: gate handoffs +%d (through the supervisor), direct_handoffs +%d (lanes)"
           % (what, g.get("handoffs", 0) - g0.get("handoffs", 0),
              g.get("direct_handoffs", 0) - g0.get("direct_handoffs", 0)))
    return g.get("handoffs", 0) - g0.get("handoffs", 0)


def worker_failures(s):
    out = {}
    for u in s.get("users", []):
        w = u.get("worker", {})
        out[u["name"]] = {k: v for k, v in w.items() if k.startswith("fail_") and v}
    return out


def test():
    env = sb.Setup("ftls", pool="10.213.0.0/16", prefix="mtf", nat=False, uid_first=320000)
    load = []
    try:
        users = [{"name": n, "secret": s} for n, s in USERS.items()]
        users.append({"name": "load", "secret": LOAD_SECRET})
        env.write_config(users, sections={"accounting": {"sweep_interval_ms": 250},
                                          "connections": {"per_ip_rate": 0}})
        env.start()
        env.require_running(list(USERS) + ["load"])

        # Background load: long obfuscated2 echo transfers through the same proxy.
        for _ in range(4):
            t = sb.Transfer(env.port, LOAD_SECRET, total=32 << 20, chunk=65536)
            t.start()
            load.append(t)

        names = list(USERS)
        burst(env, CONNECTIONS, "lanes on")
        # The workers' counters arrive with their next reports.
        time.sleep(2)
        s = env.wait_status(lambda s: sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0)
                                          for n in names) >= CONNECTIONS, timeout=20)
        ok = sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0) for n in names)
        h.check(ok >= CONNECTIONS, "the workers count %d handshakes >= %d" % (ok, CONNECTIONS))
        fails = worker_failures(s)
        h.check(not any(fails[n] for n in names), "no handshake failure in the workers (%s)" % fails)

        # Every client through the supervisor (gate-handoff, then forward).
        users = [{"name": n, "secret": s} for n, s in USERS.items()] + [{"name": "load", "secret": LOAD_SECRET}]
        env.write_config(users, sections={"accounting": {"sweep_interval_ms": 250},
                                          "connections": {"per_ip_rate": 0, "direct_lanes": False}})
        mark = len(env.log_text())
        env.sup.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "reloaded users=" not in env.log_text()[mark:]:
            time.sleep(0.05)
        time.sleep(1)  # the sweep after the reload closes the lanes
        via_supervisor = burst(env, 300, "lanes off")
        h.check(via_supervisor >= 300, "lanes off: all 300 went through the supervisor (%d)" % via_supervisor)
        s = env.wait_status(lambda s: sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0)
                                          for n in names) >= CONNECTIONS + 300, timeout=20)
        fails = worker_failures(s)
        h.check(not any(fails[n] for n in names), "still no handshake failure in the workers (%s)" % fails)
        gate = s["gate"].get("counters", {})
        h.check(gate.get("masked", 0) == 0, "the gate masked none (%s)" % gate.get("masked"))
        for t in load:
            t.join(120)
        h.check(all(t.ok for t in load), "the background transfers completed (%s)"
                % [t.error for t in load if not t.ok])
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        for t in load:
            t.join(20)
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_faketls_burst")
