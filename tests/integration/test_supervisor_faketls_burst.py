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

Then 150 clients that send the flight in the ClientHello's own write (the
gate reads bytes past the hello and hands them over with it), and the same
again (300 + 100) with [connections] direct_lanes = false, so that clients
take the supervisor's path (gate-handoff, forward) as well as the lanes;
last 12 for an on-demand user, held by the supervisor while his worker
starts.

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
# On demand: no worker until its first client, whose handshake (and the next
# ones) the supervisor holds until the worker is ready.
DAN = "ee" + "5123456789abcdeffedcba9876543210" + h.TLS_DOMAIN.encode().hex()
CONNECTIONS = 1000
PARALLEL = 32
SIZES = [1, 100, 1000, 4000, 16000, 17000, 20000, 32768, 65536]


def one(port, name, secret, size, pipelined=False):
    """One fake-TLS client; returns None when its data came back, else why not.
    `pipelined`: the flight goes in the ClientHello's write (the gate reads
    bytes past the hello and hands them over)."""
    c = h.FakeTlsClient(secret)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
    except OSError as e:
        return "connect: %s" % e
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = os.urandom(size)
        flight = c.first_flight(data)
        if not c.handshake(s, pipelined=flight if pipelined else b""):
            return "ServerHello missing or HMAC invalid"
        if not pipelined:
            s.sendall(flight)
        back = c.read_plain(s, size)
        return None if back == data else "echo differs"
    except (OSError, ConnectionError) as e:
        return "%s (user %s, %d bytes)" % (e, name, size)
    finally:
        s.close()


def burst(env, count, what, pipelined=False, users=USERS):
    names = list(users)
    jobs = [(names[i % len(names)], SIZES[i % len(SIZES)]) for i in range(count)]
    s0 = env.status()
    t0 = time.monotonic()
    failed = []
    with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
        futs = {ex.submit(one, env.port, n, users[n], size, pipelined): (n, size) for n, size in jobs}
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
    h.check(not failed, "%s: %d fake-TLS clients sending %s: all echoed (%d failed, %.1f s)"
            % (what, count, "with the ClientHello" if pipelined else "right after the ServerHello",
               len(failed), took))
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


def config(env, lanes):
    users = [{"name": n, "secret": s} for n, s in USERS.items()]
    users.append({"name": "load", "secret": LOAD_SECRET})
    users.append({"name": "dan", "secret": DAN, "on_demand": True, "idle_teardown_s": 600})
    env.write_config(users, sections={"accounting": {"sweep_interval_ms": 250},
                                      "connections": {"per_ip_rate": 0, "direct_lanes": lanes}})


def test():
    env = sb.Setup("ftls", pool="10.213.0.0/16", prefix="mtf", nat=False, uid_first=320000)
    load = []
    try:
        config(env, True)
        env.start()
        env.require_running(list(USERS) + ["load"])

        # Background load: long obfuscated2 echo transfers through the same proxy.
        for _ in range(4):
            t = sb.Transfer(env.port, LOAD_SECRET, total=32 << 20, chunk=65536)
            t.start()
            load.append(t)

        names = list(USERS)
        burst(env, CONNECTIONS, "lanes on")
        burst(env, 150, "lanes on", pipelined=True)
        total = CONNECTIONS + 150
        # The workers' counters arrive with their next reports.
        time.sleep(2)
        s = env.wait_status(lambda s: sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0)
                                          for n in names) >= total, timeout=20)
        ok = sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0) for n in names)
        h.check(ok >= total, "the workers count %d handshakes >= %d" % (ok, total))
        fails = worker_failures(s)
        h.check(not any(fails[n] for n in names), "no handshake failure in the workers (%s)" % fails)

        # Every client through the supervisor (gate-handoff, then forward).
        config(env, False)
        mark = len(env.log_text())
        env.sup.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "reloaded users=" not in env.log_text()[mark:]:
            time.sleep(0.05)
        time.sleep(1)  # the sweep after the reload closes the lanes
        via_supervisor = burst(env, 300, "lanes off")
        via_supervisor += burst(env, 100, "lanes off", pipelined=True)
        h.check(via_supervisor >= 400, "lanes off: all 400 went through the supervisor (%d)" % via_supervisor)
        s = env.wait_status(lambda s: sum(env.user(n, s).get("worker", {}).get("handshake_ok", 0)
                                          for n in names) >= total + 400, timeout=20)
        fails = worker_failures(s)
        h.check(not any(fails[n] for n in names), "still no handshake failure in the workers (%s)" % fails)

        # The hold queue: dan's worker starts with his first client; the
        # first 12 handshakes wait in the supervisor until it is ready.
        dan = env.user("dan")  # status.json leaves idle on-demand users out
        h.check(dan is None or (dan.get("state") == "idle" and not dan.get("pid")),
                "dan (on demand) has no worker yet (%s)" % (dan or {}).get("state"))
        held = burst(env, 12, "held while dan's worker starts", users={"dan": DAN})
        h.check(held == 12 and "on-demand start user=dan" in env.log_text(),
                "dan's clients went through the supervisor, which started his worker (%d)" % held)
        s = env.wait_status(lambda s: (env.user("dan", s) or {}).get("worker", {}).get("handshake_ok", 0) >= 12,
                            timeout=20)
        dan = (env.user("dan", s) or {}).get("worker", {})
        h.check(dan.get("handshake_ok", 0) == 12 and not worker_failures(s).get("dan"),
                "dan's worker: 12 handshakes, no failure (%s)" % worker_failures(s).get("dan"))
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
