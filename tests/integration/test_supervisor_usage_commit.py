#!/usr/bin/python3
"""Supervisor end to end, usage when the store cannot commit: while another
process holds the usage database's write lock (longer than the store's busy
timeout), alice moves 4 MiB through her cell. Every sweep of that time fails
to commit ("usage not stored"). Once the lock is released, the next
committed sweep must bill those bytes: the stored usage equals what the
cell's veth counted (the kernel's truth), not that minus the bytes moved
while the store was locked.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import json
import os
import sqlite3
import time

import harness as h
import sandbox as sb

ALICE = "8a23456789abcdef0123456789abcdef"
SWEEP_MS = 250
LOCKED_BYTES = 4 * 1024 * 1024
# Background packets of the cell itself (neighbour discovery) may move a
# few hundred bytes between the two readings; a lost sweep is megabytes.
SLACK = 16 * 1024


def veth_bytes(host_if):
    out = sb.run(["ip", "-s", "-j", "link", "show", "dev", host_if], quiet=True).stdout
    st = json.loads(out)[0]["stats64"]
    return st["rx"]["bytes"] + st["tx"]["bytes"]


def stored_usage(env):
    return sb.user_usage(env.user("alice"))


def settled(env, host_if, timeout=15):
    """Waits until a committed sweep has caught up with the veth counters."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        truth = veth_bytes(host_if)
        used = stored_usage(env)
        last = (used, truth)
        if abs(truth - used) <= SLACK:
            return last
        time.sleep(SWEEP_MS / 1000)
    return last


def test():
    env = sb.Setup("usagecommit", pool="10.214.0.0/16", prefix="muc", uid_first=300000)
    try:
        env.write_config([{"name": "alice", "secret": ALICE}],
                         sections={"accounting": {"sweep_interval_ms": SWEEP_MS}})
        env.start()
        s = env.require_running(["alice"])
        host_if = env.user("alice", s)["cell"]["host_if"]
        h.check(h.echo_session(env.port, ALICE, total=256 * 1024), "alice echoes before the lock")
        used, truth = settled(env, host_if)
        h.check(abs(truth - used) <= SLACK,
                "usage matches the veth before the lock (stored %d, veth %d)" % (used, truth))

        db = sqlite3.connect(os.path.join(env.state_dir, "state.db"), timeout=5,
                             isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        log_before = env.log_text().count("usage not stored")
        try:
            h.check(h.echo_session(env.port, ALICE, total=LOCKED_BYTES // 2),
                    "alice echoes %d bytes while the store is locked" % LOCKED_BYTES)
            # Let at least one sweep after the transfer fail as well.
            time.sleep(2.5 + SWEEP_MS / 1000)
        finally:
            db.execute("ROLLBACK")
            db.close()
        failed = env.log_text().count("usage not stored") - log_before
        h.check(failed >= 1, "sweeps failed to commit while locked (%d logged)" % failed)

        used, truth = settled(env, host_if)
        h.check(abs(truth - used) <= SLACK,
                "usage after the lock equals the veth's count: stored %d, veth %d (missing %d)"
                % (used, truth, truth - used))
        h.check(used >= LOCKED_BYTES, "the locked transfer is billed (%d >= %d)" % (used, LOCKED_BYTES))
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice still works")
    finally:
        env.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "supervisor usage commit")
