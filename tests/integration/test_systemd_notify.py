#!/usr/bin/python3
"""Supervisor end to end, the service manager's notification protocol
(sd_notify(3), mtwarden.service Type=notify): the real mtwarden runs with
NOTIFY_SOCKET pointing at a datagram socket of this test, which stands in for
systemd, and WATCHDOG_USEC=600000 (WatchdogSec=0.6s).

Run 1 (WATCHDOG_PID = mtwarden's own pid):
1. READY=1 arrives once, from mtwarden's pid (SCM_CREDENTIALS), and only when
   the cells of both enabled users exist (netns and host veths looked up the
   moment READY arrives) with a worker inside each and the gate running;
2. STATUS= is the one-line summary ("N users, N connections, N throttled")
   and follows an open connection;
3. WATCHDOG=1 comes about every 300 ms (half the period; bounds loose for
   ASan under load: median 180..450 ms, no gap of 2 periods);
4. the children (gate, workers) inherit none of NOTIFY_SOCKET, WATCHDOG_*;
5. SIGHUP with a user added: RELOADING=1 with MONOTONIC_USEC (this clock),
   then READY=1, and the status counts the new user;
6. SIGTERM: STOPPING=1 with a status, EXTEND_TIMEOUT_USEC, exit 0.
Run 2 (WATCHDOG_PID names another process): READY=1 but no WATCHDOG=1.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import re
import signal
import socket
import struct
import threading
import time

import harness as h
import sandbox as sb

ALICE = "0a23456789abcdef0123456789abcdef"
BOB = "0b23456789abcdef0123456789abcdef"
CAROL = "0c23456789abcdef0123456789abcdef"   # disabled
DAVE = "0d23456789abcdef0123456789abcdef"    # added by the reload
WATCHDOG_USEC = 600000
STATUS_RE = re.compile(r"^(\d+) users?, (\d+) connections?, (\d+) throttled(, (\d+) failed)?$")


def processes():
    """{pid: (exe basename, net namespace, environ keys)} of our binaries."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink("/proc/%s/exe" % d))
        except OSError:
            continue
        if not exe.startswith("mtwarden"):
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                keys = {kv.split(b"=", 1)[0].decode(errors="replace") for kv in f.read().split(b"\0") if kv}
        except OSError:
            keys = set()
        out[int(d)] = (exe, sb.netns_of(int(d)), keys)
    return out


class Manager(threading.Thread):
    """The test's stand-in for systemd: records every notification."""

    def __init__(self, path, prefix, netns_dir):
        super().__init__(daemon=True)
        self.path = path
        self.prefix = prefix
        self.netns_dir = netns_dir
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.bind(path)
        os.chmod(path, 0o666)
        self.s.settimeout(0.2)
        self.msgs = []  # (monotonic time, {key: value}, raw text, sender pid, snapshot or None)
        self.cond = threading.Condition()
        self.stop_flag = False

    def snapshot(self):
        """What exists the moment READY arrives: cell netns, host veths, workers in them, the gate."""
        ns, links, _ = sb.cell_objects(self.prefix)
        inodes = {}
        for n in ns:
            try:
                inodes["net:[%d]" % os.stat(os.path.join(self.netns_dir, n)).st_ino] = n
            except OSError:
                pass
        procs = processes()
        in_cells = sorted({inodes[p[1]] for p in procs.values() if p[0] == "mtwarden-worker" and p[1] in inodes})
        # Only this sandbox's gate: CTest runs other sandboxes beside us (same pid namespace).
        own_net = os.readlink("/proc/self/ns/net")
        gates = [pid for pid, p in procs.items() if p[0] == "mtwarden-gate" and p[1] == own_net]
        return {"netns": ns, "links": links, "workers_in": in_cells, "gates": gates}

    def run(self):
        while not self.stop_flag:
            try:
                data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            text = data.decode(errors="replace")
            kv = {}
            for line in text.split("\n"):
                k, _, v = line.partition("=")
                kv[k] = v
            snap = self.snapshot() if kv.get("READY") == "1" else None
            with self.cond:
                self.msgs.append((t, kv, text, pid, snap))
                self.cond.notify_all()

    def wait_for(self, pred, start=0, timeout=30):
        """Index of the first message from `start` on with pred(kv), or None."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.msgs)):
                    if pred(self.msgs[i][1]):
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self):
        self.stop_flag = True
        self.join(2)
        self.s.close()


def start_with_env(env, mgr_path, watchdog_pid):
    """Starts mtwarden through `sh -c exec` so WATCHDOG_PID can be its own pid."""
    os.environ["NOTIFY_SOCKET"] = mgr_path
    os.environ["WATCHDOG_USEC"] = str(WATCHDOG_USEC)
    pid_expr = "$$" if watchdog_pid == "self" else str(watchdog_pid)
    argv = ["/bin/sh", "-c", 'WATCHDOG_PID=%s exec "$@"' % pid_expr, "sh"] + env.argv()
    env.sup_runs += 1
    with open(env.log_path, "a") as f:
        f.write("==== supervisor run %d ====\n" % env.sup_runs)
    try:
        env.sup = sb.Proc(argv, name="mtwarden", stderr_path=env.log_path)
    finally:
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
            os.environ.pop(k, None)
    try:
        env.sup.wait_line("mtwarden started", timeout=60)
    except RuntimeError:
        env.dump_log()
        raise
    return env.sup.p.pid


def statuses(mgr, start=0):
    return [m[1]["STATUS"] for m in mgr.msgs[start:] if "STATUS" in m[1]]


def run1(env, users):
    mgr = Manager(os.path.join(env.dir, "notify.sock"), env.prefix, env.netns_dir)
    mgr.start()
    try:
        t_start = time.monotonic()
        pid = start_with_env(env, mgr.path, "self")
        i_ready = mgr.wait_for(lambda kv: kv.get("READY") == "1", timeout=60)
        h.check(i_ready is not None, "READY=1 arrived (%.1f s after start)" % (time.monotonic() - t_start))
        if i_ready is None:
            return
        t_ready, kv, text, sender, snap = mgr.msgs[i_ready]
        h.check(sender == pid, "READY=1 sent by mtwarden itself (pid %s, sender %s)" % (pid, sender))
        h.check(len(snap["netns"]) == 2 and len(snap["links"]) == 2,
                "at READY both enabled users' cells exist: netns %s, veths %s" % (snap["netns"], snap["links"]))
        h.check(snap["workers_in"] == snap["netns"] and len(snap["workers_in"]) == 2,
                "at READY a worker runs inside each cell (%s)" % snap["workers_in"])
        h.check(len(snap["gates"]) == 1, "at READY the gate runs (%s)" % snap["gates"])
        early = [m[2] for m in mgr.msgs[:i_ready] if "READY" in m[1]]
        h.check(early == [], "no READY before that (%s)" % early)
        s = env.require_running(["alice", "bob"])
        m = STATUS_RE.match(kv.get("STATUS", ""))
        h.check(m is not None and int(m.group(1)) == s.get("users_total") and int(m.group(3)) == 0,
                "READY carries the summary STATUS=%r (status.json users_total %s)"
                % (kv.get("STATUS"), s.get("users_total")))

        # The children inherit none of the protocol's variables.
        leaked = {p: sorted(k & {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
                  for p, (exe, _, k) in processes().items() if p != pid and exe.startswith("mtwarden")}
        kids = [p for p in leaked]
        h.check(len(kids) >= 3 and all(not v for v in leaked.values()),
                "gate and workers (%d processes) inherit no NOTIFY_SOCKET/WATCHDOG_* (%s)"
                % (len(kids), {p: v for p, v in leaked.items() if v}))

        # Watchdog: about every 300 ms, from this pid.
        time.sleep(3.0)
        with mgr.cond:
            wd = [(t, p) for t, kv2, _, p, _ in mgr.msgs if kv2.get("WATCHDOG") == "1" and t >= t_ready]
        gaps = [b[0] - a[0] for a, b in zip(wd, wd[1:])]
        period = WATCHDOG_USEC / 2e6
        if gaps:
            gaps_sorted = sorted(gaps)
            median = gaps_sorted[len(gaps) // 2]
            h.check(0.6 * period <= median <= 1.5 * period,
                    "WATCHDOG=1 about every %.0f ms (median %.0f ms over %d pings)"
                    % (period * 1000, median * 1000, len(wd)))
            # systemd would act on a gap of WatchdogSec; twice that leaves
            # room for a loaded CI machine running ASan builds in parallel.
            h.check(max(gaps) < 2 * WATCHDOG_USEC / 1e6,
                    "no watchdog gap near 2 x WatchdogSec=%.1f s (max %.0f ms)" % (WATCHDOG_USEC / 1e6, max(gaps) * 1000))
        h.check(len(wd) >= 6, "at least 6 WATCHDOG=1 in the 3 s after READY (%d)" % len(wd))
        h.check(all(p == pid for _, p in wd), "watchdog pings come from mtwarden's pid")

        # STATUS follows a connection (connections counted at each sweep).
        n0 = len(mgr.msgs)
        st = sb.Stream(env.port, ALICE, dc=2)
        try:
            ok = st.roundtrip(1024)
            h.check(ok, "an echo through alice's worker")
            i = mgr.wait_for(lambda kv: STATUS_RE.match(kv.get("STATUS", "")) is not None and
                             int(STATUS_RE.match(kv["STATUS"]).group(2)) >= 1, start=n0, timeout=15)
            h.check(i is not None, "STATUS= shows the open connection (%s)" % statuses(mgr, n0))
        finally:
            st.close()
        i = mgr.wait_for(lambda kv: STATUS_RE.match(kv.get("STATUS", "")) is not None and
                         int(STATUS_RE.match(kv["STATUS"]).group(2)) == 0, start=len(mgr.msgs) - 1, timeout=15)
        h.check(i is not None, "STATUS= back to 0 connections after it closed (%s)" % statuses(mgr, n0))
        all_status = statuses(mgr)
        h.check(all(STATUS_RE.match(x) for x in all_status),
                "every STATUS= so far is the one-line summary (%d of them)" % len(all_status))
        # The daemon offers a status every sweep; only changes go out.
        with_status = [m[1] for m in mgr.msgs if "STATUS" in m[1]]
        repeats = [b["STATUS"] for a, b in zip(with_status, with_status[1:])
                   if a["STATUS"] == b["STATUS"] and "READY" not in b]
        h.check(len(with_status) >= 3 and repeats == [],
                "STATUS= is sent only when it changes (%d sent, repeats %s)" % (len(with_status), repeats))

        # Reload with a user added: RELOADING=1 (+ MONOTONIC_USEC), then READY=1.
        env.write_config(users + [{"name": "dave", "secret": DAVE}])
        n0 = len(mgr.msgs)
        t_hup = time.monotonic()
        env.sup.signal(signal.SIGHUP)
        i_rl = mgr.wait_for(lambda kv: kv.get("RELOADING") == "1", start=n0, timeout=20)
        h.check(i_rl is not None, "SIGHUP: RELOADING=1 arrived")
        if i_rl is not None:
            kv = mgr.msgs[i_rl][1]
            mono = int(kv.get("MONOTONIC_USEC", "0") or 0) / 1e6
            h.check(t_hup - 1 <= mono <= mgr.msgs[i_rl][0] + 1,
                    "RELOADING=1 carries MONOTONIC_USEC of this clock (%.3f, signal at %.3f)" % (mono, t_hup))
            before = [m[2] for m in mgr.msgs[n0:i_rl] if "READY" in m[1]]
            h.check(before == [], "no READY between SIGHUP and RELOADING (%s)" % before)
            i_r2 = mgr.wait_for(lambda kv: kv.get("READY") == "1", start=i_rl + 1, timeout=20)
            h.check(i_r2 is not None, "READY=1 after RELOADING=1")
        i4 = mgr.wait_for(lambda kv: STATUS_RE.match(kv.get("STATUS", "")) is not None and
                          int(STATUS_RE.match(kv["STATUS"]).group(1)) == len(users) + 1, start=n0, timeout=20)
        h.check(i4 is not None, "STATUS= counts the added user (%s)" % statuses(mgr, n0))
        env.require_running(["alice", "bob", "dave"])

        # SIGTERM: STOPPING=1 with a status, then the drain's extension.
        n0 = len(mgr.msgs)
        env.sup.signal(signal.SIGTERM)
        try:
            rc = env.sup.wait(40)
        except Exception:  # noqa: BLE001
            rc = None
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        time.sleep(0.3)
        i_st = mgr.wait_for(lambda kv: kv.get("STOPPING") == "1", start=n0, timeout=5)
        h.check(i_st is not None and mgr.msgs[i_st][1].get("STATUS", "").startswith("stopping"),
                "SIGTERM: STOPPING=1 with STATUS=%r" % (mgr.msgs[i_st][1].get("STATUS") if i_st is not None else None))
        ext = [m[1] for m in mgr.msgs[n0:] if "EXTEND_TIMEOUT_USEC" in m[1]]
        h.check(len(ext) == 1 and int(ext[0]["EXTEND_TIMEOUT_USEC"]) > 0,
                "the drain asks for more time once (%s)" % ext)
        if i_st is not None:
            late = [m[2] for m in mgr.msgs[i_st + 1:] if m[1].get("WATCHDOG") == "1" or m[1].get("READY") == "1"]
            h.check(late == [], "no WATCHDOG/READY after STOPPING (%s)" % late)
    finally:
        mgr.close()


def run2(env):
    mgr = Manager(os.path.join(env.dir, "notify2.sock"), env.prefix, env.netns_dir)
    mgr.start()
    try:
        other = os.getpid()
        start_with_env(env, mgr.path, other)
        i = mgr.wait_for(lambda kv: kv.get("READY") == "1", timeout=60)
        h.check(i is not None, "run 2: READY=1 arrived")
        time.sleep(1.5)
        wd = [m for m in mgr.msgs if "WATCHDOG" in m[1]]
        h.check(wd == [], "WATCHDOG_PID of another process: no WATCHDOG=1 (%d)" % len(wd))
        h.check(env.stop(40) == 0, "run 2: SIGTERM exits 0")
    finally:
        mgr.close()


def test():
    env = sb.Setup("notify", pool="10.207.0.0/16", prefix="mtn", nat=False, uid_first=270000)
    try:
        users = [
            {"name": "alice", "secret": ALICE},
            {"name": "bob", "secret": BOB},
            {"name": "carol", "secret": CAROL, "enabled": False},
        ]
        env.write_config(users)
        run1(env, users)
        if h.FAILURES:
            return
        env.write_config(users)
        run2(env)
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_systemd_notify")
