#!/usr/bin/python3
"""The gate under a flood of idle connections, in a throw-away net namespace.

An attacker opens thousands of connections that never send a byte, from
many addresses of one IPv6 /64 and from a dozen IPv4 addresses, against a
gate with a small --max-handshakes (so the table fills quickly), and opens
them again every 2 s. Throughout, real clients of every user (obfuscated2,
obfuscated2 dd, fake TLS) must still be handed over. Then a normal client
opening 50 connections in one burst must get all 50 through a gate with
default limits, and a connection that sends nothing meets its deadline after
the 3 s silent timeout.

This script plays the supervisor, as test_gate.py does: it binds the
listener, spawns the gate with it and a control socket, sends the user
table and reads the handoffs. No --mask: masked connections are discarded.
"""

import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

import control_codec as cc
import harness as h

GATE = os.environ.get("MTW_GATE", "build/hg/gate/mtwarden-gate")
MARK = "MTW_FLOOD_SANDBOX"

USER_SIMPLE, USER_DD, USER_TLS = 101, 202, 303
DD_SECRET = "dd" + h.OTHER_SECRET
TABLE = "%d %s\n%d %s\n%d %s\n" % (USER_SIMPLE, h.SIMPLE_SECRET, USER_DD, DD_SECRET,
                                   USER_TLS, h.TLS_SECRET)

V6_NET = "2001:db8:7:42::"  # the attacker's /64
V6_ADDRS = ["%s%x" % (V6_NET, i) for i in range(1, 801)]
V4_ADDRS = ["10.77.%d.%d" % (i % 3, 10 + i) for i in range(12)]  # a dozen, over three /24s
MAX_HANDSHAKES = 256


def enter():
    """Re-executes this script in a new network namespace (root only)."""
    if os.environ.get(MARK) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    if os.geteuid() != 0:
        print("SKIP: needs root (a network namespace with extra addresses)", flush=True)
        sys.exit(77)
    if not shutil.which("unshare") or not shutil.which("ip"):
        print("SKIP: unshare or ip not found", flush=True)
        sys.exit(77)
    if not os.access(GATE, os.X_OK):
        print("FAIL: MTW_GATE=%s is not an executable" % GATE, flush=True)
        sys.exit(1)
    env = dict(os.environ, **{MARK: "1"})
    rc = subprocess.call(["unshare", "--net", "--fork", "--kill-child", sys.executable] + sys.argv,
                         env=env)
    sys.exit(rc if rc >= 0 else 1)


def add_addresses():
    cmds = ["address add %s/128 dev lo nodad" % a for a in V6_ADDRS]
    cmds += ["address add %s/32 dev lo" % a for a in V4_ADDRS]
    subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)


class Gate:
    def __init__(self, extra=()):
        self.listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.listener.bind(("::", 0))
        self.listener.listen(8192)
        self.port = self.listener.getsockname()[1]
        self.ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [GATE, "--control-fd", str(child.fileno()),
                "--listen-fd", str(self.listener.fileno()), "--log-level", "warn"] + list(extra)
        self.proc = h.Proc(argv, pass_fds=[child.fileno(), self.listener.fileno()], name="gate")
        child.close()
        self.lock = threading.Lock()  # the control socket: one request at a time
        fd = os.memfd_create("gate-table", os.MFD_CLOEXEC)
        try:
            os.write(fd, TABLE.encode())
            cc.send(self.ctl, cc.gate_table(1), fd)
        finally:
            os.close(fd)
        self.report()

    def report(self):
        with self.lock:
            cc.send(self.ctl, cc.report_request())
            while True:
                data, fds = cc.recv(self.ctl, timeout=10)
                for fd in fds:
                    os.close(fd)
                mtype, rep = cc.decode(data)
                if mtype == cc.REPORT:
                    return rep

    def handoff(self, timeout):
        """The next GateHandoff's fields, or None."""
        with self.lock:
            try:
                data, fds = cc.recv(self.ctl, timeout=timeout)
            except socket.timeout:
                return None
            for fd in fds:
                os.close(fd)
            mtype, msg = cc.decode(data)
            return msg if mtype == cc.GATE_HANDOFF else None

    def stop(self):
        self.proc.stop()
        self.ctl.close()
        self.listener.close()


def real_clients():
    """(what, bytes, user) for one fresh client of each user."""
    return [("obfuscated2", h.Obfs2Client(h.SIMPLE_SECRET).init, USER_SIMPLE),
            ("obfuscated2 dd", h.Obfs2Client(DD_SECRET, tag=b"\xdd" * 4).init, USER_DD),
            ("fake TLS", h.client_hello(h.TLS_SECRET), USER_TLS)]


def try_client(gate, data, user):
    """Connects from 127.0.0.1, sends `data`; True when the gate hands it over for `user`."""
    try:
        c = socket.create_connection(("127.0.0.1", gate.port), timeout=3)
    except OSError:
        return False
    try:
        c.sendall(data)
        msg = gate.handoff(timeout=3)
        return msg is not None and msg["user"] == user and msg["data"] == data
    except OSError:
        return False
    finally:
        c.close()


class Flood:
    """Idle connections (connect, then silence) from the attacker's addresses."""

    def __init__(self, port):
        self.port = port
        self.socks = []
        self.refused = 0

    def wave(self, per_v6=4, per_v4=100):
        fresh = []
        targets = [(a, "::1", socket.AF_INET6) for a in V6_ADDRS for _ in range(per_v6)]
        targets += [(a, "127.0.0.1", socket.AF_INET) for a in V4_ADDRS for _ in range(per_v4)]
        for src, dst, fam in targets:
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.setblocking(False)
            s.bind((src, 0))
            try:
                s.connect((dst, self.port))
            except BlockingIOError:
                pass
            except OSError:
                self.refused += 1
                s.close()
                continue
            fresh.append(s)
        self.socks += fresh
        return len(fresh)

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def flood_phase():
    gate = Gate(["--max-handshakes", str(MAX_HANDSHAKES), "--handshake-timeout", "10",
                 "--per-ip-rate", "0"])
    flood = Flood(gate.port)
    try:
        t0 = time.monotonic()
        n = flood.wave()
        h.check(n >= 4000, "flood: %d idle connections opened in %.2f s (%d from one /64, "
                "the rest from %d IPv4 addresses)" % (n, time.monotonic() - t0,
                                                      4 * len(V6_ADDRS), len(V4_ADDRS)))
        time.sleep(0.5)  # the gate accepts them all
        ok, tried, failed = 0, 0, []
        end = time.monotonic() + 12
        next_wave = time.monotonic() + 2
        while time.monotonic() < end:
            if time.monotonic() >= next_wave:
                flood.close()  # and again: the attack repeats
                flood.wave()
                next_wave = time.monotonic() + 2
            for what, data, user in real_clients():
                tried += 1
                if try_client(gate, data, user):
                    ok += 1
                else:
                    failed.append("%s at %.1f s" % (what, time.monotonic() - t0))
            time.sleep(0.2)
        rep = gate.report()
        h.check(tried >= 30 and ok == tried,
                "flood: real clients of every user handed over throughout: %d of %d (failed: %s)"
                % (ok, tried, ", ".join(failed[:6]) + (" ..." if len(failed) > 6 else "")))
        print("flood report: accepted=%s overload_closed=%s source_limited=%s "
              "evicted_unproven=%s fail_timeout=%s" % (
                  rep.get("accepted"), rep.get("overload_closed"), rep.get("source_limited"),
                  rep.get("evicted_unproven"), rep.get("fail_timeout")), flush=True)
        h.check(rep.get("source_limited", 0) > 0, "flood: the /64 was held to its source cap")
        h.check(gate.proc.p.poll() is None,
                "flood: the gate is still running")
    finally:
        flood.close()
        gate.stop()


def burst_phase():
    gate = Gate()  # every limit at its default
    try:
        socks = [socket.create_connection(("127.0.0.1", gate.port), timeout=5) for _ in range(50)]
        inits = []
        for s in socks:
            c = h.Obfs2Client(h.SIMPLE_SECRET)
            inits.append(c.init)
            s.sendall(c.init)
        got = 0
        while got < 50:
            msg = gate.handoff(timeout=5)
            if msg is None:
                break
            got += msg["user"] == USER_SIMPLE and msg["data"] in inits
        for s in socks:
            s.close()
        h.check(got == 50, "burst: a client's 50 connections at once all handed over (%d)" % got)
        # A connection that sends nothing meets its deadline after --silent-timeout
        # (3 s), long before --handshake-timeout (10 s).
        idle = socket.create_connection(("127.0.0.1", gate.port), timeout=5)
        time.sleep(4)
        rep = gate.report()
        idle.close()
        h.check(rep["fail_timeout"] == 1,
                "silent: an idle connection met its deadline within 4 s (fail_timeout=%d)"
                % rep["fail_timeout"])
    finally:
        gate.stop()


def main():
    enter()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    add_addresses()
    flood_phase()
    burst_phase()
    h.finish()


if __name__ == "__main__":
    main()
