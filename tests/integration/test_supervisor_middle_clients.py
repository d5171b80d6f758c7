#!/usr/bin/python3
"""Supervisor end to end, middle-proxy mode with real clients (docs/worker.md
"Middle-proxy mode"): everything goes through the real gate and ann's cell
worker, to the test middle proxy (tests/tools/middle_proxy.py) in the
sandbox's "internet".

1. telethon (abridged, intermediate, randomized intermediate) and mtcute
   (fake TLS) round trips; the middle proxy sees ann's ad tag on every
   PROXY_REQ;
2. 24 clients at once share fewer middle-proxy connections than there are
   clients;
3. a stalled middle proxy: a waiting client is closed, the stalled
   connection is replaced, new clients work once the proxy answers again;
4. a refresh of proxy-multi.conf with changed addresses: a held connection
   on the old middle proxy keeps working, new clients reach the new one;
5. shaping and quota still apply in middle mode: a 2 Mbit/s download limit
   holds on a middle-proxy connection, and a used-up quota throttles ann
   without closing her connection.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import concurrent.futures
import os
import signal
import struct
import subprocess
import threading
import time

import harness as h
import sandbox as sb
from test_supervisor_api import Api
from test_supervisor_middle import (MiddleProc, RawClientFor, proxy_multi_conf, start_middle,
                                    wait_for, worker_counter)

KEY = "6123456789abcdef0123456789abcdef"  # plain: classic and dd clients
ANN_EE = "ee" + "7123456789abcdef0123456789abcdef" + h.TLS_DOMAIN.encode().hex()
TAG = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
STALL_MS = 1000
PARALLEL = 24


def middle_connections(port):
    """Established TCP connections to the middle proxy on `port`, as the
    internet namespace sees them (the proxy's side of each)."""
    r = subprocess.run(sb.in_inet(["ss", "-Htn", "state", "established", "( sport = :%d )" % port]),
                       capture_output=True, text=True, timeout=10)
    return len([l for l in r.stdout.splitlines() if l.strip()])


def echo_ok(port, secret=KEY, n=512):
    c = None
    try:
        c = RawClientFor(port, secret)
        return c.echo(n)
    except (OSError, ConnectionError, ValueError):
        return False
    finally:
        if c:
            c.close()


def tagged_since(mp, n):
    """The PROXY_REQs after the first `n`, and whether each carried ann's tag."""
    reqs = mp.requests()[n:]
    return len(reqs), all(t == TAG for _, t in reqs)


def echo_rate(port, total, chunk=16384):
    """Streams `total` bytes of echo on one connection, sending from a thread
    while reading (both directions busy, as in a download with acks): payload
    bits per second read back over the steady part (the first 64 KiB are left
    out). None when the echo broke."""
    c = RawClientFor(port, KEY)
    c.s.settimeout(30)
    packets = [os.urandom(chunk) for _ in range(total // chunk)]
    errors = []

    def send():
        try:
            for p in packets:
                c.send(p)
        except OSError as e:
            errors.append(str(e))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        got = 0
        t0 = None
        for p in packets:
            (length,) = struct.unpack("<I", c.read(4))
            if length != len(p) or c.read(length) != p:
                return None
            got += length
            if t0 is None and got >= 65536:
                t0, base = time.monotonic(), got
        sender.join(5)
        return None if errors else (got - base) * 8 / (time.monotonic() - t0)
    except (OSError, ConnectionError, ValueError):
        return None
    finally:
        c.close()


def test():
    env = sb.Setup("middlecl", pool="10.216.0.0/16", prefix="mtc", nat=False, uid_first=350000)
    src = mp = mp2 = None
    try:
        mp, src, _, secret_file, _ = start_middle(env, [], stall_timeout_ms=STALL_MS, dcs=(2, 4))
        mp_port = mp.port
        env.start()
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        # Over the API (not the file), so that its limits can be patched below.
        r = api.post("/v1/users", {"name": "ann", "secrets": [KEY, ANN_EE], "ad_tag": TAG})
        h.check(r.status == 201, "POST /v1/users ann with two secrets and a tag: 201 (%s)" % r.body[:200])
        env.require_running(["ann"])
        h.check(wait_for(lambda: echo_ok(env.port), 15), "ann: a first echo through the middle proxy")
        h.check(api.get("/v1/users/ann/status").json.get("mode") == "middle",
                "ann's status: mode middle")

        # 1. Real clients, every PROXY_REQ tagged.
        for mode, secret_text, dc in (("abridged", KEY, 2), ("intermediate", KEY, 4),
                                      ("randomized", "dd" + KEY, -2)):
            n = len(mp.requests())
            sb.telethon(env.port, secret_text, mode, dc=dc, what="telethon %s via middle" % mode)
            count, tagged = tagged_since(mp, n)
            h.check(count >= 1 and tagged,
                    "telethon %s: %d PROXY_REQs, every one with ann's tag" % (mode, count))
        n = len(mp.requests())
        sb.mtcute(env.port, ANN_EE, what="mtcute fake-tls via middle")
        count, tagged = tagged_since(mp, n)
        h.check(count >= 1 and tagged, "mtcute: %d PROXY_REQs, every one with ann's tag" % count)
        h.check(worker_counter(api, "ann", "middle_fallbacks") == 0, "no client fell back to direct")

        # 2. Many clients over fewer middle-proxy connections.
        clients = []
        try:
            for _ in range(PARALLEL):
                clients.append(RawClientFor(env.port, KEY))
            with concurrent.futures.ThreadPoolExecutor(PARALLEL) as ex:
                oks = list(ex.map(lambda c: c.echo(2048) and c.echo(300), clients))
            held = middle_connections(mp_port)
            h.check(all(oks), "%d clients at once: every echo intact (%d ok)" % (PARALLEL, sum(oks)))
            h.check(1 <= held < PARALLEL,
                    "%d clients share %d middle-proxy connections" % (PARALLEL, held))
            h.check(wait_for(lambda: worker_counter(api, "ann", "middle_clients") >= PARALLEL and
                             1 <= worker_counter(api, "ann", "middle_connections") < PARALLEL, 5),
                    "ann's status while they are open: middle_clients %d, middle_connections %d"
                    % (worker_counter(api, "ann", "middle_clients"),
                       worker_counter(api, "ann", "middle_connections")))
        finally:
            for c in clients:
                c.close()

        # 3. A stalled middle proxy is detected and replaced.
        before = middle_connections(mp_port)
        waiting = RawClientFor(env.port, KEY)
        h.check(waiting.echo(200), "a client before the stall echoes")
        errors = worker_counter(api, "ann", "middle_errors")
        mp.p.p.send_signal(signal.SIGUSR1)  # stall: read everything, answer nothing
        time.sleep(0.2)
        t0 = time.monotonic()
        closed = False
        try:
            waiting.s.settimeout(STALL_MS / 1000 * 6)
            closed = not waiting.echo(200)
        except (OSError, ConnectionError, ValueError):
            closed = True
        waited = time.monotonic() - t0
        waiting.close()
        h.check(closed and waited < STALL_MS / 1000 * 6,
                "stalled middle proxy: the waiting client is closed after %.1f s (stall %d ms)"
                % (waited, STALL_MS))
        h.check(wait_for(lambda: worker_counter(api, "ann", "middle_errors") > errors, 5),
                "middle_errors counts the stall")
        mp.p.p.send_signal(signal.SIGUSR2)  # echo again
        t0 = time.monotonic()
        h.check(wait_for(lambda: echo_ok(env.port), 10, poll=0.3),
                "new clients work again %.1f s after the proxy answers" % (time.monotonic() - t0))
        h.check(middle_connections(mp_port) >= 1,
                "the stalled connection was replaced (%d before, %d now)"
                % (before, middle_connections(mp_port)))

        # 4. A refresh with changed addresses: no drop, new clients move.
        held = RawClientFor(env.port, KEY)
        h.check(held.echo(300), "a held connection on the first middle proxy")
        mp2_port = sb.free_port()
        mp2 = MiddleProc(env.dir, secret_file, mp2_port, record_name="middle2-requests.log")
        src.config = proxy_multi_conf(mp2_port, dcs=(2, 4))
        hits = src.hits.get("/v4", 0)
        h.check(api.post("/v1/reload").status == 200, "reload (a refresh round): 200")
        h.check(wait_for(lambda: src.hits.get("/v4", 0) > hits, 10), "the changed config fetched")

        h.check(wait_for(lambda: echo_ok(env.port) and len(mp2.requests()) >= 1, 15, poll=0.3),
                "after the refresh, new clients reach the new middle proxy")
        n1 = len(mp.requests())
        h.check(held.echo(300) and held.echo(4000),
                "the held connection still works after the refresh")
        h.check(len(mp.requests()) > n1, "... still through the first middle proxy")
        held.close()

        # 5. Shaping and quota in middle mode.
        free = echo_rate(env.port, 1024 * 1024) or 0.0
        sb.log("middle mode unlimited: %.3f Mbit/s payload" % (free / 1e6))
        h.check(free > 8e6, "unlimited, a middle-mode echo runs at %.1f Mbit/s" % (free / 1e6))
        r = api.patch("/v1/users/ann", {"limits": {"rate_down": "2mbit", "rate_up": "2mbit"}})
        h.check(r.status == 200, "PATCH rate 2mbit: 200")
        time.sleep(0.5)
        bps = echo_rate(env.port, 1024 * 1024) or 0.0
        sb.log("middle mode at 2 Mbit/s: %.3f Mbit/s payload" % (bps / 1e6))
        # The limit applies to the middle-proxy leg as to a DC's. How close
        # the payload comes to the limit is the shaping tests' concern: this
        # echo loads both directions, so each carries the other's ACKs too.
        h.check(0.70 * 2e6 <= bps <= 1.05 * 2e6,
                "a middle-mode echo under a 2 Mbit/s limit runs at %.2f Mbit/s" % (bps / 1e6))
        r = api.patch("/v1/users/ann", {"limits": {"rate_down": None, "rate_up": None,
                                                   "quota": "3MB", "throttle_rate": "1mbit"}})
        h.check(r.status == 200, "PATCH quota 3MB, throttle 1mbit: 200 (%s)" % r.body[:200])
        c = RawClientFor(env.port, KEY)
        c.s.settimeout(30)
        moved = 0
        throttled = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not throttled:
            if not c.echo(65536):
                break
            moved += 2 * 65536
            if moved % (1024 * 1024) < 2 * 65536:
                throttled = api.get("/v1/users/ann/status").json.get("throttled") is True
        throttled = throttled or wait_for(
            lambda: api.get("/v1/users/ann/status").json.get("throttled") is True, 10)
        st = api.get("/v1/users/ann/status").json
        h.check(throttled and "quota" in (st.get("throttle_reason") or ""),
                "quota used up in middle mode (%d bytes moved): throttled, reason %r"
                % (moved, st.get("throttle_reason")))
        h.check(c.echo(4096), "the connection stays open while throttled")
        c.close()
        h.check(st.get("mode") == "middle", "still in middle mode (%s)" % st.get("mode"))
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        if src:
            src.stop()
        for p in (mp, mp2):
            if p:
                p.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_middle_clients")
