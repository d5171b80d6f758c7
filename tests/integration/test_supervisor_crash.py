#!/usr/bin/python3
"""Supervisor end to end, crashes: kill -9 one user's worker during another
user's long transfer — the other transfer completes on the same connection,
byte-exact; the killed user's worker is back (new pid, running) within 1 s and
works. Then kill -9 the supervisor itself mid-traffic and start it again with
the same configuration: the stored usage is within one second of traffic of
what status.json showed just before, exactly one set of cells exists (no
duplicates, no leftovers), and the users work again.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import signal
import time

import harness as h
import sandbox as sb

ALICE = "4123456789abcdef0123456789abcdef"
BOB = "5123456789abcdef0123456789abcdef"
SWEEP_MS = 100


def pids_with_uid(uid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = sb.proc_status(int(d))
        if st.get("Uid", "").split()[:1] == [str(uid)] and not st.get("State", "").startswith("Z"):
            out.append(int(d))
    return out


def test():
    env = sb.Setup("crash", pool="10.202.0.0/16", prefix="mtc", nat=False, uid_first=220000)
    try:
        users = [{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB}]
        env.write_config(users, sections={"accounting": {"sweep_interval_ms": SWEEP_MS}})
        env.start()
        s = env.require_running(["alice", "bob"])
        alice0, bob0 = env.user("alice", s), env.user("bob", s)
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice echoes before the crash")

        # --- kill -9 alice's worker while bob transfers.
        t = sb.Transfer(env.port, BOB, total=12 * 1024 * 1024, chunk=16384, pause=0.004)
        t.start()
        t.started.wait(20)
        time.sleep(1.0)
        at_kill = t.done_bytes
        t_kill = time.monotonic()
        os.kill(alice0["pid"], signal.SIGKILL)
        back = spawned = None
        while time.monotonic() - t_kill < 10:
            s = env.status()
            u = env.user("alice", s)
            if u and u["pid"] and u["pid"] != alice0["pid"] and spawned is None:
                spawned = time.monotonic() - t_kill
            if u and u["state"] == "running" and u["pid"] and u["pid"] != alice0["pid"]:
                back = time.monotonic() - t_kill
                break
            time.sleep(0.05)
        fmt = lambda v: "%.3f s" % v if v is not None else "never"  # noqa: E731
        ready_ms = [l.rsplit("after_ms=", 1)[1] for l in env.log_text().splitlines()
                    if "worker ready user=alice" in l and "after_ms=" in l]
        sb.log("worker restart latency (kill -9 -> status shows a new pid: %s; -> new pid running: %s; "
               "%d ms sweeps, 50 ms poll, restart_backoff_min_ms 250; the worker's own start-up, "
               "spawn to ready, took %s ms)" % (fmt(spawned), fmt(back), SWEEP_MS, ready_ms[-1] if ready_ms else "?"))
        h.check(spawned is not None and spawned <= 1.0,
                "alice's worker respawned (new pid in status) within 1 s of kill -9 (%s)" % fmt(spawned))
        # Running = the new worker also answered its first report; an ASan
        # worker's start-up alone takes 0.3-0.9 s on a loaded host, hence 1.5 s.
        h.check(back is not None and back <= 1.5,
                "alice's worker back and running within 1.5 s of kill -9 (%s)" % fmt(back))
        # The supervisor's own descriptors (the new worker's pidfd watch
        # among them) never leak into what it executes.
        leaks = sb.fds_without_cloexec(env.sup.pid)
        h.check(not leaks, "every supervisor descriptor is close-on-exec (%s)" % leaks)
        # Also when a client can actually use it again.
        t_use = None
        while time.monotonic() - t_kill < 10:
            if h.echo_session(env.port, ALICE, total=4096):
                t_use = time.monotonic() - t_kill
                break
            time.sleep(0.05)
        sb.log("kill -9 -> alice's first successful echo: %s" % ("%.3f s" % t_use if t_use else "never"))
        h.check(t_use is not None, "alice reconnects and echoes after the restart")
        h.check(h.echo_session(env.port, ALICE, total=512 * 1024), "alice: 512 KiB echo intact after restart")
        h.check(t.done_bytes > at_kill, "bob's transfer kept moving after alice's crash (%d -> %d)"
                % (at_kill, t.done_bytes))
        t.join(60)
        h.check(t.ok is True, "bob's 12 MiB transfer on the same connection completed byte-exact (%s)"
                % (t.error or "ok"))
        s = env.status()
        a1, b1 = env.user("alice", s), env.user("bob", s)
        h.check(b1["pid"] == bob0["pid"] and b1["restarts"] == 0, "bob's worker untouched (pid %s, restarts %s)"
                % (b1["pid"], b1["restarts"]))
        h.check(a1["restarts"] == 1 and a1["uid"] == alice0["uid"], "alice: restarts=1, same uid (%s, %s)"
                % (a1["restarts"], a1["uid"]))
        h.check(a1.get("cell", {}).get("netns") == alice0["cell"]["netns"],
                "alice's cell kept across the worker restart")

        # --- kill -9 the supervisor mid-traffic.
        ta = sb.Transfer(env.port, ALICE, total=400 * 1024 * 1024, chunk=16384, pause=0.004)
        tb = sb.Transfer(env.port, BOB, total=400 * 1024 * 1024, chunk=16384, pause=0.004)
        ta.start()
        tb.start()
        ta.started.wait(20)
        tb.started.wait(20)
        time.sleep(2.0)
        s_before = env.status()
        old_pid = env.sup.pid
        env.sup.p.kill()
        env.sup.p.wait(10)
        sb.log("supervisor killed with SIGKILL (status age at kill: %.2f s)" % (time.time() - s_before["time"]))
        before = {n: sb.user_usage(env.user(n, s_before)) for n in ("alice", "bob")}
        rate = {n: (env.user(n, s_before)["measured_up_bps"] + env.user(n, s_before)["measured_down_bps"]) / 8
                for n in ("alice", "bob")}
        sb.log("usage before kill: %s; accounted rate (bytes/s, both directions): %s" % (before, rate))
        ta.join(30)
        tb.join(30)
        h.check(ta.ok is False and tb.ok is False, "in-flight connections end with the supervisor (workers die)")
        t_dead = time.monotonic()
        while True:
            left = [p for n in ("alice", "bob") for p in pids_with_uid(env.user(n, s_before)["uid"])]
            if not left or time.monotonic() - t_dead > 3:
                break
            time.sleep(0.05)
        h.check(left == [], "no worker outlives its supervisor (parent-death SIGKILL; zombies aside) (%s)" % left)
        ns, links, tables = sb.cell_objects(env.prefix)
        sb.log("leftovers after kill -9: netns=%s links=%s tables=%s" % (ns, links, tables))

        env.start()
        s = env.wait_status(lambda s: s["pid"] == env.sup.pid and sb.all_running(["alice", "bob"])(s), timeout=30)
        h.check(s is not None and s["pid"] == env.sup.pid and s["pid"] != old_pid, "restarted supervisor's status")
        h.check(s is not None and sb.all_running(["alice", "bob"])(s), "alice and bob running after restart")
        for n in ("alice", "bob"):
            after = sb.user_usage(env.user(n, s))
            tol = max(rate[n] * 1.0, 64 * 1024)
            sb.log("usage %s: before=%d after_restart=%d diff=%d tolerance=%d" % (n, before[n], after, after - before[n], tol))
            h.check(abs(after - before[n]) <= tol,
                    "%s: usage after restart %d within one second of traffic (%d B) of %d" % (n, after, tol, before[n]))
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(len(ns) == 2 and len(links) == 2 and tables.count("table inet mtwarden") == 1,
                "exactly one set of cells after restart: netns=%s links=%s tables=%s" % (ns, links, tables))
        st = {u["name"]: u for u in s["users"]}
        h.check(sorted(ns) == sorted(st[n]["cell"]["netns"] for n in ("alice", "bob")),
                "the netns are the running users' cells")
        h.check("removed leftovers" in env.log_text(), "the restart logged removing the earlier run's leftovers")
        for n, sec in (("alice", ALICE), ("bob", BOB)):
            h.check(h.echo_session(env.port, sec, total=256 * 1024), "%s echoes after the supervisor restart" % n)
        rc = env.stop()
        h.check(rc == 0, "SIGTERM after the restart: exit 0 (%s)" % rc)
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(ns == [] and links == [] and "table inet mtwarden" not in tables,
                "nothing left after the clean stop (%s %s %s)" % (ns, links, tables))
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_crash")
