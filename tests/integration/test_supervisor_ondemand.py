#!/usr/bin/python3
"""Supervisor end to end, on-demand cells (issue: "idle users cost (almost)
nothing"): a user with on_demand = true has no cell, netns or worker after
start; its first client is held until the cell and worker are up and then
works; its traffic is counted; after idle_teardown_s without connections the
cell, netns and worker are gone again (event user_idle) and the usage stays;
the next client starts it again, usage continues from the stored value and
the user's limits (rate) are applied to the new cell. An always-on user next
to it is never touched.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import time

import harness as h
import sandbox as sb
from test_supervisor_api import Api

ODD = "8123456789abcdef0123456789abcdef"
ALWAYS = "9123456789abcdef0123456789abcdef"
IDLE_S = 10  # the smallest idle_teardown_s the config takes
RATE = 40_000_000  # bit/s, checked on the new cell's shaper


def netns_names():
    # Cells of this test only (the sandbox's fake Internet has a netns too).
    names = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    return sorted(n for n in names if n.startswith("mto"))


def status(api, name):
    r = api.get("/v1/users/%s/status" % name)
    return r.json if r.status == 200 else {}


def used(api, name):
    return (status(api, name).get("quota") or {}).get("used_bytes", 0)


def test():
    env = sb.Setup("ondemand", pool="10.208.0.0/16", prefix="mto", nat=False, uid_first=280000)
    try:
        env.write_config([{"name": "odd", "secret": ODD, "on_demand": True, "idle_teardown_s": IDLE_S,
                           "rate_down": "40mbit", "quota": "10GB"},
                          {"name": "always", "secret": ALWAYS, "quota": "10GB"}],
                         sections={"accounting": {"sweep_interval_ms": 200}})
        env.start()
        env.require_running(["always"])
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        before_ns = netns_names()
        st = status(api, "odd")
        h.check(st.get("state") == "idle" and st.get("cell") is None and not st.get("worker_pid"),
                "odd after start: idle, no cell, no worker (%s, %s)" % (st.get("state"), st.get("cell")))
        h.check(len(before_ns) == 1, "only the always-on user's netns exists (%s)" % before_ns)
        always_pid = env.user("always")["pid"]

        # First client: held while the cell and worker start, then served.
        t0 = time.monotonic()
        ok = h.echo_session(env.port, ODD, total=256 * 1024)
        first_s = time.monotonic() - t0
        h.check(ok, "odd's first client works (cell started on demand, %.3f s)" % first_s)
        st = status(api, "odd")
        h.check(st.get("state") == "running" and st.get("cell") and st.get("worker_pid"),
                "odd running with a cell and a worker (%s)" % st.get("state"))
        h.check(len(netns_names()) == 2, "a netns for odd now (%s)" % netns_names())
        h.check((st.get("cell") or {}).get("shaper_down_bps") == RATE,
                "odd's cell has its rate (%s)" % (st.get("cell") or {}).get("shaper_down_bps"))
        deadline = time.time() + 5
        while time.time() < deadline and used(api, "odd") < 2 * 256 * 1024:
            time.sleep(0.2)
        u1 = used(api, "odd")
        h.check(u1 >= 2 * 256 * 1024, "odd's traffic counted (%d bytes)" % u1)

        # Idle: torn down after idle_teardown_s (+ a sweep or two).
        deadline = time.time() + IDLE_S + 10
        while time.time() < deadline and status(api, "odd").get("state") != "idle":
            time.sleep(0.5)
        st = status(api, "odd")
        h.check(st.get("state") == "idle" and st.get("cell") is None,
                "odd torn down after %d s idle (%s, connections %s)" % (IDLE_S, st.get("state"), st.get("connections")))
        h.check(netns_names() == before_ns, "odd's netns is gone (%s)" % netns_names())
        ev = api.get("/v1/events?limit=100")
        kinds = [e.get("kind") for e in ((ev.json or {}).get("events") or [])
                 if e.get("user") == "odd"] if ev.status == 200 else []
        h.check("user_idle" in kinds, "event user_idle recorded (%s)" % kinds)
        # Kept: at least what was counted while it ran (the closing packets add
        # a few hundred bytes), and steady with no cell to count.
        u_idle = used(api, "odd")
        time.sleep(1)
        h.check(u1 <= u_idle < u1 + 4096 and used(api, "odd") == u_idle,
                "usage kept after the teardown (%d -> %d, steady)" % (u1, u_idle))
        u1 = u_idle
        h.check(env.user("always")["pid"] == always_pid, "the always-on user's worker was never touched")

        # Again: the next client starts it; usage continues from the store.
        h.check(h.echo_session(env.port, ODD, total=128 * 1024), "odd's next client starts it again")
        deadline = time.time() + 5
        while time.time() < deadline and used(api, "odd") < u1 + 2 * 128 * 1024:
            time.sleep(0.2)
        u2 = used(api, "odd")
        h.check(u2 >= u1 + 2 * 128 * 1024, "usage continues from the stored value (%d -> %d)" % (u1, u2))
        st = status(api, "odd")
        h.check((st.get("cell") or {}).get("shaper_down_bps") == RATE,
                "the new cell has the user's rate again (%s)" % (st.get("cell") or {}).get("shaper_down_bps"))
        h.check(h.echo_session(env.port, ALWAYS, total=64 * 1024), "the always-on user still works")
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        h.check(netns_names() == [], "no netns left after stop (%s)" % netns_names())
    finally:
        if h.FAILURES:
            env.dump_log(120)
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_ondemand")
