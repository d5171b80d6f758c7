#!/usr/bin/python3
"""Supervisor end to end, what one user's change touches: a PATCH of alice's
limits (rate_down) changes alice's shaper and nothing else. The gate, which
knows only ids and secrets, gets no new table (its log shows no new
"gate table applied"), bob's shaper and worker are untouched, and both users
keep working. Disabling alice then does change what the gate must know: one
new table. Re-enabling: one more.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import sys
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import Api, tc_rate, wait_tc  # noqa: E402

ALICE = "9a23456789abcdef0123456789abcdef"
BOB = "9b23456789abcdef0123456789abcdef"


def tables(env):
    return env.log_text().count("gate table applied")


def settle_tables(env, timeout=2.0):
    """The table count once it stopped moving for half a second."""
    deadline = time.monotonic() + timeout
    last = tables(env)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = tables(env)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 0.5:
            break
    return last


def test():
    env = sb.Setup("patchscope", pool="10.215.0.0/16", prefix="mps", uid_first=310000)
    try:
        env.write_config([], sections={"defaults": {"rate_down": "10mbit", "rate_up": "10mbit"}})
        env.start()
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        for name, secret in (("alice", ALICE), ("bob", BOB)):
            r = api.post("/v1/users", {"name": name, "secrets": [secret]})
            h.check(r.status == 201, "create %s: %r" % (name, r))
        s = env.require_running(["alice", "bob"])
        bob_pid = env.user("bob", s)["pid"]
        alice_if = env.user("alice", s)["cell"]["host_if"]
        bob_if = env.user("bob", s)["cell"]["host_if"]
        h.check(h.echo_session(env.port, ALICE, total=16 * 1024), "alice works")
        h.check(h.echo_session(env.port, BOB, total=16 * 1024), "bob works")

        before = settle_tables(env)
        r = api.patch("/v1/users/alice", {"limits": {"rate_down": "2mbit"}})
        h.check(r.status == 200, "PATCH alice rate_down 2mbit: %r" % r)
        dt, out = wait_tc(["tc", "class", "show", "dev", alice_if], sb.tc_rate_text(2_000_000))
        h.check(dt is not None, "alice's shaper at 2Mbit (%s)" % out.strip()[:100])
        after = settle_tables(env)
        h.check(after == before, "no gate table sent for a limits change (%d -> %d)" % (before, after))
        h.check(sb.tc_rate_text(10_000_000) in tc_rate(["tc", "class", "show", "dev", bob_if]), "bob's shaper untouched")
        h.check(env.user("bob")["pid"] == bob_pid, "bob's worker untouched")
        h.check(h.echo_session(env.port, ALICE, total=16 * 1024), "alice still works")
        h.check(h.echo_session(env.port, BOB, total=16 * 1024), "bob still works")

        r = api.patch("/v1/users/alice", {"enabled": False})
        h.check(r.status == 200, "PATCH alice enabled=false: %r" % r)
        disabled = settle_tables(env)
        h.check(disabled == after + 1, "disabling alice sends one table (%d -> %d)" % (after, disabled))
        r = api.patch("/v1/users/alice", {"enabled": True})
        h.check(r.status == 200, "PATCH alice enabled=true: %r" % r)
        enabled = settle_tables(env)
        h.check(enabled == disabled + 1, "re-enabling alice sends one table (%d -> %d)" % (disabled, enabled))
        env.require_running(["alice", "bob"])
        h.check(h.echo_session(env.port, ALICE, total=16 * 1024), "alice works again")
    finally:
        env.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "supervisor patch scope")
