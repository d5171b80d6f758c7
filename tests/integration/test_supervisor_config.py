#!/usr/bin/python3
"""Supervisor end to end, configuration: invalid files (a bad rate string, a
duplicate listener, a uid range too small for the users) stop the start with
exit 1 and FILE:LINE:COL plus the reason on stderr, and create no cell, netns
or nft table; --check agrees. Then a valid start; an invalid edit + SIGHUP
keeps the running configuration (a user still works, the log says rejected);
a valid edit adding a user + SIGHUP: the new user works while an existing
user's ongoing connection completes byte-exact; removing a user: its cell
disappears, the others are untouched; a [cells] edit: worker_nofile reaches
a worker started after the reload, name_prefix waits for a restart; room
for users: a reload that raises uid_count with a user beyond the running
range is refused whole (users added at run time count), and so is a start
whose users do not fit.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import signal
import subprocess
import time

import harness as h
import sandbox as sb

ALICE = "a123456789abcdef0123456789abcdef"
BOB = "b123456789abcdef0123456789abcdef"
ERIN = "e123456789abcdef0123456789abcdef"
CTL = os.environ.get("MTW_CTL", "build/lead/ctl/mtwardenctl")


def line_of(text, needle, nth=1):
    seen = 0
    for i, l in enumerate(text.splitlines(), 1):
        if needle in l:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError("%r not in config" % needle)


def nothing_created(env, what):
    ns, links, tables = sb.cell_objects(env.prefix)
    h.check(ns == [] and links == [] and "table inet mtwarden" not in tables,
            "%s: no netns, veth or nft table created (%s %s %s)" % (what, ns, links, tables))


def bad_start(env, what, expect_lines, reason_words):
    """expect_lines: the line(s) the error may name (a key's line or its table's header)."""
    if isinstance(expect_lines, int):
        expect_lines = [expect_lines]
    r = subprocess.run(env.argv(), capture_output=True, text=True, timeout=60, preexec_fn=sb._pdeathsig)
    err = r.stderr
    poss = ["%s:%d:" % (env.config, n) for n in expect_lines]
    h.check(r.returncode == 1, "%s: start fails with exit 1 (got %s)" % (what, r.returncode))
    h.check(any(p in err for p in poss) and all(w in err for w in reason_words),
            "%s: stderr names %sCOL and the reason %s (%r)" % (what, " or ".join(poss), reason_words,
                                                          err.strip()[:300]))
    c = subprocess.run(env.argv(["--check"]), capture_output=True, text=True, timeout=60)
    h.check(c.returncode == 1 and any(p in c.stderr for p in poss),
            "%s: --check exits 1 with the position too (%s)" % (what, c.returncode))
    nothing_created(env, what)
    h.check(not os.path.exists(os.path.join(env.run_dir, "status.json")), "%s: no status.json" % what)


def max_open_files(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def reload_cells(env):
    """A reload that changes worker_nofile (applies to workers started after
    it) and name_prefix (restart-only: kept, with a warning)."""
    users = [{"name": "alice", "secret": ALICE}, {"name": "erin", "secret": ERIN}]
    s0 = env.status()
    erin0 = env.user("erin", s0)
    seen = len(env.log_text())
    env.write_config(users, sections={"cells": {"worker_nofile": 1000, "name_prefix": "zq"}})
    env.sup.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "reloaded users=2" not in env.log_text()[seen:] and time.monotonic() < deadline:
        time.sleep(0.1)
    h.check("reloaded users=2" in env.log_text()[seen:], "[cells] edit: the reload is taken")
    h.check("reload: [cells] pools/names/uids/gids/cgroup_dir" in env.log_text()[seen:],
            "the name_prefix change is logged as waiting for a restart")
    h.check(max_open_files(erin0["pid"]) != 1000, "erin's running worker keeps its descriptor limit")
    os.kill(erin0["pid"], signal.SIGKILL)
    s = env.wait_status(lambda s: (env.user("erin", s) or {}).get("pid", 0) not in (0, erin0["pid"]) and
                        env.user("erin", s).get("state") == "running", timeout=20)
    erin1 = env.user("erin", s) if s else None
    h.check(erin1 is not None and max_open_files(erin1["pid"]) == 1000,
            "erin's restarted worker has worker_nofile = 1000 from the reload (%s)"
            % (max_open_files(erin1["pid"]) if erin1 else "no new worker"))
    h.check(erin1 is not None and erin1["cell"]["netns"] == erin0["cell"]["netns"] and
            erin1["cell"]["netns"].startswith(env.prefix),
            "the cell keeps the running name_prefix %r (%s)" % (env.prefix, erin1 and erin1["cell"]["netns"]))
    ns, links, _ = sb.cell_objects("zq")
    h.check(ns == [] and links == [], "nothing created under the new prefix (%s %s)" % (ns, links))
    h.check(h.echo_session(env.port, ERIN, total=64 * 1024), "erin works after the restart of its worker")


def ctl(env, *args):
    return subprocess.run([CTL, "--socket", os.path.join(env.run_dir, "api.sock")] + list(args),
                          capture_output=True, text=True, timeout=30)


def room_for_users(env):
    """[cells] keeps its running values at a reload, so the room for users is
    the running range: a file that raises uid_count together with a new user
    beyond the running room is rejected whole, counting users added at run
    time; a start whose stored and file users exceed the room stops."""
    users = [{"name": "alice", "secret": ALICE}, {"name": "erin", "secret": ERIN}]
    h.check(env.stop() == 0, "room: the supervisor stops for a restart with uid_count = 4")
    env.write_config(users, sections={"cells": {"uid_count": 4}})
    env.start()
    env.require_running(["alice", "erin"])
    r = ctl(env, "users", "add", "rt1")
    h.check(r.returncode == 0, "room: mtwardenctl users add rt1 (the third and last worker uid) exits 0 (%s)"
            % (r.stdout + r.stderr).strip()[-200:])
    env.require_running(["alice", "erin", "rt1"])
    r = ctl(env, "--json", "users", "add", "rt2")
    h.check(r.returncode == 1 and "conflict" in r.stderr + r.stdout and "no room" in r.stderr + r.stdout,
            "room: users add rt2 beyond the room: exit 1, 409 conflict, no room (%d %s)"
            % (r.returncode, (r.stdout + r.stderr).strip()[-200:]))
    seen = len(env.log_text())
    env.write_config(users + [{"name": "bob", "secret": BOB}], sections={"cells": {"uid_count": 100}})
    r = ctl(env, "reload")
    log = env.log_text()[seen:]
    h.check(r.returncode == 1 and "4 users (3 in the file, 1 added at run time)" in r.stderr + r.stdout,
            "room: the reload adding bob is refused, naming 3 file + 1 run-time users (%d %s)"
            % (r.returncode, (r.stdout + r.stderr).strip()[-300:]))
    h.check("reload rejected" in log and "hold 3" in log, "room: the log says rejected, room 3")
    time.sleep(0.5)
    s = env.status()
    h.check(env.user("bob", s) is None and sb.all_running(["alice", "erin", "rt1"])(s),
            "room: no bob, alice, erin and rt1 still running (%s)"
            % [(u["name"], u["state"], u["fail_reason"]) for u in s["users"]])
    h.check(env.stop() == 0, "room: the supervisor stops")
    env.write_config(users, sections={"cells": {"uid_count": 3}})
    r = subprocess.run(env.argv(), capture_output=True, text=True, timeout=60, preexec_fn=sb._pdeathsig)
    h.check(r.returncode == 1 and "3 users (2 in the file, 1 added at run time)" in r.stderr and
            "raise uid_count" in r.stderr,
            "room: a start with uid_count = 3 (room 2) and 3 users fails with exit 1 and says why (%s %r)"
            % (r.returncode, r.stderr.strip()[-300:]))
    nothing_created(env, "room: the refused start")
    env.write_config(users, sections={"cells": {"uid_count": 4}})
    env.start()
    env.require_running(["alice", "erin", "rt1"])


def base_users():
    return [{"name": "alice", "secret": ALICE}, {"name": "bob", "secret": BOB}]


def test():
    env = sb.Setup("config", pool="10.205.0.0/16", prefix="mtf", nat=False, uid_first=250000)
    try:
        # --- invalid files.
        text = env.write_config(base_users(), sections={"defaults": {"rate_down": "20 parsecs"}})
        bad_start(env, "bad rate string", line_of(text, 'rate_down = "20 parsecs"'), ["rate"])

        dup = [{"bind": "127.0.0.1:%d" % env.port}, {"bind": "127.0.0.1:%d" % env.port}]
        text = env.write_config(base_users(), listeners=dup)
        first, second = line_of(text, "[[listener]]", 1), line_of(text, "[[listener]]", 2)
        bad_start(env, "duplicate listener", second, ["overlaps", str(first)])

        text = env.write_config(base_users(), sections={"cells": {"uid_count": 2}})
        bad_start(env, "uid range too small", [line_of(text, "uid_count = 2"), line_of(text, "[cells]")],
                  ["uid range", "2 users"])

        text = env.write_config(base_users(), sections={"api": {"tcp": "127.0.0.1:%d" % env.port}})
        bad_start(env, "api port of a listener", line_of(text, "[api]"), ["uses the port of listener"])

        text = env.write_config(base_users(), sections={"cells": {"ipv4_pool": "127.64.0.0/16"}})
        bad_start(env, "pool on loopback", [line_of(text, "ipv4_pool ="), line_of(text, "[cells]")],
                  ["overlaps the loopback network"])

        # A clash with this host (not in the file): --check finds it like the start.
        subprocess.run(["ip", "link", "add", "xclash0", "type", "veth", "peer", "name", "xclash1"], check=True)
        subprocess.run(["ip", "addr", "add", "10.205.7.1/24", "dev", "xclash0"], check=True)
        try:
            env.write_config(base_users())
            r = subprocess.run(env.argv(), capture_output=True, text=True, timeout=60, preexec_fn=sb._pdeathsig)
            c = subprocess.run(env.argv(["--check"]), capture_output=True, text=True, timeout=60)
            clash = "overlaps address 10.205.7.1 on xclash0"
            h.check(r.returncode == 1 and clash in r.stderr, "pool on an interface: start fails (%s %r)"
                    % (r.returncode, r.stderr.strip()[-200:]))
            h.check(c.returncode == 1 and clash in c.stderr, "pool on an interface: --check exits 1 too (%s %r)"
                    % (c.returncode, c.stderr.strip()[-200:]))
            nothing_created(env, "pool on an interface")
        finally:
            subprocess.run(["ip", "link", "del", "xclash0"])

        # --- valid start.
        env.write_config(base_users())
        c = subprocess.run(env.argv(["--check"]), capture_output=True, text=True, timeout=60)
        h.check(c.returncode == 0, "--check of the valid file exits 0 (%s)" % (c.stdout + c.stderr).strip()[-200:])
        nothing_created(env, "--check")
        env.start()
        s = env.require_running(["alice", "bob"])
        st0 = {u["name"]: u for u in s["users"]}

        # --- invalid edit + SIGHUP: old config kept.
        text = env.write_config(base_users() + [{"name": "erin", "secret": ERIN, "qouta": "10GiB"}])
        bad_line = line_of(text, "qouta")
        env.sup.signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and "reload rejected" not in env.log_text():
            time.sleep(0.1)
        log = env.log_text()
        h.check("reload rejected" in log, "invalid reload logged as rejected")
        h.check("%s:%d:" % (env.config, bad_line) in log and "qouta" in log,
                "the rejection names %s:%d and the unknown key" % (os.path.basename(env.config), bad_line))
        h.check(env.sup.p.poll() is None, "supervisor still running after the invalid reload")
        time.sleep(0.5)
        s = env.status()
        h.check(env.user("erin", s) is None and len(s["users"]) == 2, "no user added by the invalid file")
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024), "alice still works after the rejected reload")
        before = h.mask_records(env.mask_dir)
        cl = h.Obfs2Client(ERIN, dc=2)
        payload = cl.init + cl.seal(b"erin is not a user yet" * 8)
        h.probe(env.port, payload)
        h.check(h.wait_new_record(env.mask_dir, before) == payload,
                "erin (only in the rejected file) is unknown: masked byte-exact")

        # --- valid edit adding erin while alice transfers.
        t = sb.Transfer(env.port, ALICE, total=8 * 1024 * 1024, chunk=16384, pause=0.01)
        t.start()
        t.started.wait(20)
        time.sleep(0.5)
        env.write_config(base_users() + [{"name": "erin", "secret": ERIN}])
        t_hup = time.monotonic()
        env.sup.signal(signal.SIGHUP)
        s = env.wait_status(sb.all_running(["alice", "bob", "erin"]), timeout=20, poll=0.05)
        sb.log("erin running %.2f s after SIGHUP" % (time.monotonic() - t_hup))
        h.check(s is not None and sb.all_running(["alice", "bob", "erin"])(s), "erin added and running after SIGHUP")
        ok = False
        t_e = time.monotonic()
        while time.monotonic() - t_e < 10 and not ok:
            ok = h.echo_session(env.port, ERIN, total=128 * 1024)
            if not ok:
                time.sleep(0.1)
        h.check(ok, "erin works after the reload")
        h.check(t.is_alive() or t.ok is True, "alice's transfer still going during the reload")
        t.join(90)
        h.check(t.ok is True, "alice's ongoing connection completed byte-exact across the reload (%s)" % (t.error or "ok"))
        s = env.status()
        st1 = {u["name"]: u for u in s["users"]}
        h.check(all(st1[n]["pid"] == st0[n]["pid"] and st1[n]["restarts"] == 0 for n in ("alice", "bob")),
                "alice's and bob's workers untouched by adding erin")

        # --- remove bob.
        env.write_config([{"name": "alice", "secret": ALICE}, {"name": "erin", "secret": ERIN}])
        bob_ns = st1["bob"]["cell"]["netns"]
        bob_pid = st1["bob"]["pid"]
        env.sup.signal(signal.SIGHUP)
        s = env.wait_status(lambda s: env.user("bob", s) is None, timeout=15)
        h.check(env.user("bob", s) is None and len(s["users"]) == 2, "bob gone from status after removal")
        time.sleep(0.3)
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(bob_ns not in ns and len(ns) == 2 and len(links) == 2,
                "bob's cell %s removed, two cells left (%s, %s)" % (bob_ns, ns, links))
        h.check(not os.path.exists("/proc/%d" % bob_pid) or sb.proc_status(bob_pid).get("State", "").startswith("Z"),
                "bob's worker ended")
        st2 = {u["name"]: u for u in s["users"]}
        h.check(all(st2[n]["pid"] == st1[n]["pid"] and st2[n]["restarts"] == 0 for n in ("alice", "erin")),
                "alice's and erin's workers untouched by removing bob")
        h.check(h.echo_session(env.port, ALICE, total=64 * 1024) and h.echo_session(env.port, ERIN, total=64 * 1024),
                "alice and erin still work")
        before = h.mask_records(env.mask_dir)
        cl = h.Obfs2Client(BOB, dc=2)
        payload = cl.init + cl.seal(b"bob was removed" * 8)
        h.probe(env.port, payload)
        got = h.wait_new_record(env.mask_dir, before)
        h.check(got == payload, "removed bob's handshake goes to the mask host byte-exact")
        reload_cells(env)
        room_for_users(env)
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        nothing_created(env, "after stop")
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_config")
