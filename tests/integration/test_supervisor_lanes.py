#!/usr/bin/python3
"""Supervisor end to end, direct lanes (docs/supervisor.md "Direct lanes"):
with the default config the gate hands clients straight to the workers
(gate counter direct_handoffs, supervisor direct_handoffs_total) and the
supervisor still learns their IPs (unique_ips) and activity; a user under
max_connections gets exactly its cap through the lane before the rest is held
(and runs again when one closes); after kill -9 of the gate, and of a worker,
new lanes are made and used; a reload with [connections] direct_lanes = false
sends clients through the supervisor (handoffs grow, direct ones do not), and
true again brings the lanes back; no client is lost on any of these paths.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import select
import signal
import time

import harness as h
import sandbox as sb

ALICE = "6123456789abcdef0123456789abcdef"
CAROL = "7123456789abcdef0123456789abcdef"
SWEEP_MS = 200


def gate_counter(s, name):
    return s["gate"].get("counters", {}).get(name, 0)


def echo(env, secret, what):
    h.check(h.echo_session(env.port, secret, total=16 * 1024), what)


def wait_direct(env, at_least, what, timeout=5):
    # GateDirect reaches the supervisor within 100 ms; status.json is written each sweep.
    s = env.wait_status(lambda s: s.get("direct_handoffs_total", 0) >= at_least, timeout=timeout)
    got = s.get("direct_handoffs_total", 0)
    h.check(got >= at_least, "%s: direct_handoffs_total %d >= %d" % (what, got, at_least))
    return s


def config(env, lanes):
    env.write_config([{"name": "alice", "secret": ALICE},
                      {"name": "carol", "secret": CAROL, "max_connections": 2}],
                     sections={"accounting": {"sweep_interval_ms": SWEEP_MS},
                               "connections": {"direct_lanes": lanes, "hold_queue_length": 4,
                                               "hold_timeout_ms": 4000}})


def reload(env, what):
    mark = len(env.log_text())
    env.sup.signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and "reloaded users=" not in env.log_text()[mark:]:
        time.sleep(0.05)
    h.check("reloaded users=" in env.log_text()[mark:], "%s: reload applied" % what)
    time.sleep(2 * SWEEP_MS / 1000)  # the sweep after it closes or opens the lanes


def test():
    env = sb.Setup("lanes", pool="10.207.0.0/16", prefix="mtl", nat=False, uid_first=270000)
    streams = []
    try:
        config(env, True)
        env.start()
        env.require_running(["alice", "carol"])

        # 1. Default: lanes, and the supervisor still sees IPs and activity.
        s0 = env.status()
        for i in range(3):
            echo(env, ALICE, "alice echo %d over the lane" % i)
        s = wait_direct(env, s0.get("direct_handoffs_total", 0) + 3, "alice, 3 clients")
        h.check(gate_counter(s, "handoffs") == gate_counter(s0, "handoffs"),
                "no client of alice went through the supervisor (gate handoffs %d -> %d)"
                % (gate_counter(s0, "handoffs"), gate_counter(s, "handoffs")))
        s = env.wait_status(lambda s: env.user("alice", s).get("unique_ips", 0) >= 1, timeout=3)
        h.check(env.user("alice", s).get("unique_ips", 0) >= 1,
                "unique_ips learnt from the gate's GateDirect (%s)" % env.user("alice", s).get("unique_ips"))

        # 2. A capped user: two through (lane credit), the third held, then run.
        a, b = sb.Stream(env.port, CAROL), sb.Stream(env.port, CAROL)
        streams += [a, b]
        h.check(a.roundtrip(2048) and b.roundtrip(2048), "carol: two connections (her cap) echo")
        c = sb.Stream(env.port, CAROL)
        streams.append(c)
        data = b"held-over-cap" * 100
        c.s.sendall(c.c.seal(data))
        early = select.select([c.s], [], [], 1.5)[0]
        h.check(not early, "carol: the third connection is held, not admitted through the lane")
        s = env.status()
        h.check(env.user("carol", s)["held"] == 1, "carol: held=1 (%s)" % env.user("carol", s)["held"])
        a.close()
        c.s.settimeout(10)
        try:
            back = c.c.open(h.recv_exact(c.s, len(data)))
        except (OSError, ConnectionError):
            back = None
        h.check(back == data, "carol: the held connection runs once one closes")
        for x in (b, c):
            x.close()

        # 3. kill -9 the gate: a new gate gets new lanes.
        s0 = env.status()
        old_gate = s0["gate"]["pid"]
        os.kill(old_gate, signal.SIGKILL)
        s = env.wait_status(lambda s: s["gate"].get("pid") not in (None, 0, old_gate) and s["gate"].get("ready"),
                            timeout=10)
        h.check(s["gate"].get("pid") != old_gate, "gate restarted after kill -9 (pid %s)" % s["gate"].get("pid"))
        base = s.get("direct_handoffs_total", 0)
        echo(env, ALICE, "alice works after the gate restart")
        wait_direct(env, base + 1, "after the gate restart")
        # The gate's own counters arrive with its next report (each sweep).
        s = env.wait_status(lambda s: gate_counter(s, "direct_handoffs") >= 1, timeout=3)
        h.check(gate_counter(s, "direct_handoffs") >= 1,
                "the new gate sent alice's client over a new lane (%d)" % gate_counter(s, "direct_handoffs"))

        # 4. kill -9 alice's worker: after its restart the lane is remade.
        pid = env.user("alice", s)["pid"]
        os.kill(pid, signal.SIGKILL)
        s = env.wait_status(lambda s: env.user("alice", s).get("pid") not in (None, 0, pid)
                            and env.user("alice", s)["state"] == "running", timeout=10)
        h.check(env.user("alice", s)["state"] == "running", "alice's worker back after kill -9")
        base = s.get("direct_handoffs_total", 0)
        echo(env, ALICE, "alice works after her worker's restart")
        wait_direct(env, base + 1, "after the worker restart")

        # 5. direct_lanes = false by reload: through the supervisor.
        config(env, False)
        reload(env, "direct_lanes=false")
        s0 = env.status()
        for i in range(2):
            echo(env, ALICE, "alice echo %d without lanes" % i)
        time.sleep(3 * SWEEP_MS / 1000)
        s = env.wait_status(lambda s: gate_counter(s, "handoffs") >= gate_counter(s0, "handoffs") + 2, timeout=5)
        h.check(gate_counter(s, "handoffs") >= gate_counter(s0, "handoffs") + 2,
                "lanes off: the gate sent both clients to the supervisor (%d -> %d)"
                % (gate_counter(s0, "handoffs"), gate_counter(s, "handoffs")))
        h.check(s.get("direct_handoffs_total", 0) == s0.get("direct_handoffs_total", 0),
                "lanes off: no direct handoff (%d -> %d)"
                % (s0.get("direct_handoffs_total", 0), s.get("direct_handoffs_total", 0)))

        # 6. And back on.
        config(env, True)
        reload(env, "direct_lanes=true")
        base = env.status().get("direct_handoffs_total", 0)
        echo(env, ALICE, "alice works with lanes back on")
        wait_direct(env, base + 1, "lanes back on")
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        for x in streams:
            x.close()
        if h.FAILURES:
            env.dump_log(120)
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_lanes")
