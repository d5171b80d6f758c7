#!/usr/bin/python3
"""A managed worker outlives its controller (--orphan-timeout, --reattach-fd;
docs/worker-control.md, "Surviving the supervisor"). This script plays the
supervisor and the gate, with tests/integration/control_codec.py.

Spawned the way the supervisor spawns (own session, parent-death SIGKILL)
from a thread that then ends, the worker survives its parent (a worker
without the flag, spawned the same way, is killed), also when its log pipe
loses its reader with the controller (EPIPE on every line). A transfer handed over
on the control socket keeps going when the controller closes, byte-exact;
the worker logs `supervisor gone` and keeps serving new clients from the
gate's lane. A peer of another uid on the re-attach socket is refused and
logged; root re-attaches and at once gets a report whose counters cover
the worker's whole life, and can hand over clients again. Closed a second
time and not re-attached, the worker drains after the orphan timeout: an
idle client sees an orderly close (EOF), and the worker exits 0.

Runs in the sandbox (root: the wrong-uid peer is a process of uid 65534)."""

import ctypes
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import control_codec as cc
import harness as h
import sandbox as sb

ORPHAN_S = 4
DRAIN_S = 1
NOBODY = 65534


class Worker:
    """mtwarden-worker with stdout and stderr (its log) read line by line,
    spawned as the supervisor does: a session of its own and SIGKILL as its
    parent-death signal, from a thread that ends once the worker started."""

    def __init__(self, args, pass_fds):
        self.lines = queue.Queue()
        self.all = []
        self.stop_reading = threading.Event()
        started = threading.Event()
        result = {}
        # stdout and stderr are one pipe, as the supervisor's log pipe is;
        # cut_log() closes its only read end, as the supervisor's exit does.
        rd, wr = os.pipe()

        def spawn():
            libc = ctypes.CDLL("libc.so.6", use_errno=True)

            def confine():
                os.setsid()
                libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG

            result["p"] = subprocess.Popen([h.WORKER] + args, stdout=wr, stderr=wr,
                                           pass_fds=pass_fds, preexec_fn=confine)
            started.wait(30)  # the parent thread lives until the worker has started

        self.spawner = threading.Thread(target=spawn)
        self.spawner.start()
        while "p" not in result:
            time.sleep(0.01)
        os.close(wr)
        self.p = result["p"]
        self.pump = threading.Thread(target=self._pump, args=(rd,), daemon=True)
        self.pump.start()
        try:
            self.wait_log("worker started")
        finally:
            started.set()
            self.spawner.join(30)  # the worker's parent thread is gone from here on

    def _pump(self, rd):
        buf = b""
        try:
            while not self.stop_reading.is_set():
                ready, _, _ = select.select([rd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(rd, 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode(errors="replace")
                    self.all.append(text)
                    self.lines.put(text)
        finally:
            os.close(rd)

    def cut_log(self):
        """Closes the log pipe's read end: the worker's next line gets EPIPE."""
        self.stop_reading.set()
        self.pump.join(10)

    def wait_log(self, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            if text in line:
                return line
        raise RuntimeError("worker: no log line with %r" % text)

    def count(self, text):
        return sum(1 for l in self.all if text in l)

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


def hand_over(send, gate, secret):
    """A client connects to our gate listener; its first 64 bytes (the init)
    go to the worker with the socket through `send(datagram, fd)`."""
    conn, peer = gate.accept()
    first = h.recv_exact(conn, 64)
    send(cc.handoff(9, peer, first), conn.fileno())
    conn.close()


class Transfer(threading.Thread):
    """An obfuscated2 echo through the worker: `total` random bytes in
    `chunk`s with `pause` between them; ok when every byte came back."""

    def __init__(self, port, secret, total, chunk=32768, pause=0.0):
        super().__init__(daemon=True)
        self.c = h.Obfs2Client(secret, dc=2)
        self.s = h.connect(port, timeout=30)
        self.s.sendall(self.c.init)
        self.total, self.chunk, self.pause = total, chunk, pause
        self.first = threading.Event()
        self.ok = None
        self.error = None

    def run(self):
        try:
            done = 0
            good = True
            while done < self.total:
                n = min(self.chunk, self.total - done)
                data = os.urandom(n)
                self.s.sendall(self.c.seal(data))
                good &= self.c.open(h.recv_exact(self.s, n)) == data
                done += n
                self.first.set()
                if self.pause:
                    time.sleep(self.pause)
            self.ok = good
        except OSError as e:
            self.error = str(e)
            self.ok = False
        finally:
            self.first.set()


def report_of(sock, timeout=10):
    sock.settimeout(timeout)
    mtype, rep = cc.decode(sock.recv(65536))
    assert mtype == cc.REPORT, mtype
    return rep


def as_nobody(path):
    """Connects to `path` as uid/gid 65534; 'eof' when the worker closed it unread."""
    code = ("import socket,sys\n"
            "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
            "s.settimeout(10)\n"
            "s.connect(sys.argv[1])\n"
            "d=s.recv(65536)\n"
            "print('eof' if d==b'' else 'data %d' % len(d))\n")
    r = subprocess.run([sys.executable, "-c", code, path], user=NOBODY, group=NOBODY,
                       extra_groups=[], capture_output=True, text=True, timeout=30, cwd="/")
    out = r.stdout.strip()
    return out if out else "error: " + r.stderr.strip()[-300:]


def main():
    sb.enter()
    dc, dc_port = h.start_fake_dc(expect_dc=2)
    gate = socket.socket()
    gate.bind(("127.0.0.1", 0))
    gate.listen(8)
    gate_port = gate.getsockname()[1]
    workdir = h.tmpdir()
    os.chmod(workdir, 0o755)
    path = os.path.join(workdir, "worker.ctl")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    os.chmod(path, 0o777)  # the file lets anyone connect: the uid check must refuse
    listener.listen(4)
    base_args = ["--secret", h.SIMPLE_SECRET, "--log-level", "info", "--stats-interval", "0",
                 "--drain-timeout", "%ds" % DRAIN_S] + h.dc_flags(dc_port)
    workers = []
    try:
        # Control: without the flag, the parent-death signal ends the worker.
        p0, c0 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        w0 = Worker(["--control-fd", str(c0.fileno())] + base_args, pass_fds=[c0.fileno()])
        workers.append(w0)
        c0.close()
        try:
            rc0 = w0.p.wait(10)
        except subprocess.TimeoutExpired:
            rc0 = None
        h.check(rc0 == -signal.SIGKILL,
                "a worker without --orphan-timeout dies with its parent thread (%s)" % rc0)
        p0.close()

        # The supervisor's exit also closes the worker's log pipe: an orphan
        # whose every log line fails with EPIPE still serves and times out.
        p1, c1 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        w1 = Worker(["--control-fd", str(c1.fileno()), "--orphan-timeout", "2s"] + base_args,
                    pass_fds=[c1.fileno()])
        workers.append(w1)
        c1.close()
        g1, l1 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cc.send(p1, cc.lane(1), l1.fileno())
        l1.close()
        report_of_request(p1)  # the lane is open before the controller goes
        w1.cut_log()
        p1.close()
        cut_at = time.monotonic()
        t1 = Transfer(gate_port, h.SIMPLE_SECRET, 100000)
        hand_over(lambda d, fd: cc.send(g1, d, fd), gate, h.SIMPLE_SECRET)
        t1.start()
        t1.join(30)
        h.check(t1.ok is True, "with its log pipe gone too, the orphan relays a lane client (%s)"
                % t1.error)
        t1.s.close()
        try:
            rc1 = w1.p.wait(2 + DRAIN_S + 15)
        except subprocess.TimeoutExpired:
            rc1 = None
        h.check(rc1 == 0 and time.monotonic() - cut_at >= 1.5,
                "and exits 0 after its orphan timeout, not by SIGPIPE (%s)" % rc1)
        g1.close()

        # A --reattach-fd that is no listening SOCK_SEQPACKET socket: start-up fails.
        p2, c2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        x2, y2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        r = subprocess.run([h.WORKER, "--control-fd", str(c2.fileno()), "--orphan-timeout", "5",
                            "--reattach-fd", str(y2.fileno())] + base_args,
                           pass_fds=[c2.fileno(), y2.fileno()], capture_output=True, text=True,
                           timeout=30)
        h.check(r.returncode == 1 and "--reattach-fd: fd %d is not listening" % y2.fileno() in r.stderr,
                "a --reattach-fd that is not listening fails the start (%d %s)"
                % (r.returncode, r.stderr.strip()[-120:]))
        for x in (p2, c2, x2, y2):
            x.close()

        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        w = Worker(["--control-fd", str(child.fileno()), "--orphan-timeout", "%ds" % ORPHAN_S,
                    "--reattach-fd", str(listener.fileno())] + base_args,
                   pass_fds=[child.fileno(), listener.fileno()])
        workers.append(w)
        child.close()
        listener.close()  # the worker holds the only copy: connects reach it alone
        time.sleep(0.3)
        h.check(w.p.poll() is None, "with --orphan-timeout the worker outlives its parent thread")

        def via_control(dgram, fd):
            cc.send(parent, dgram, fd)

        # A lane, as the gate would have: new clients while no controller exists.
        gate_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cc.send(parent, cc.lane(1), worker_end.fileno())
        worker_end.close()

        def via_lane(dgram, fd):
            cc.send(gate_end, dgram, fd)

        long_total = 3 * 1024 * 1024
        t = Transfer(gate_port, h.SIMPLE_SECRET, long_total, chunk=32768, pause=0.02)
        hand_over(via_control, gate, h.SIMPLE_SECRET)
        t.start()
        h.check(t.first.wait(20), "the handed-over transfer started")
        rep1 = report_of_request(parent)
        h.check(rep1["handoffs"] == 1, "report before the close counts the handoff (%s)" % rep1["handoffs"])

        parent.close()  # the supervisor is gone
        w.wait_log("supervisor gone", timeout=10)
        h.check(w.p.poll() is None, "orphaned worker still runs")

        # A new client through the lane while orphaned.
        t2 = Transfer(gate_port, h.SIMPLE_SECRET, 100000)
        hand_over(via_lane, gate, h.SIMPLE_SECRET)
        t2.start()
        t2.join(30)
        h.check(t2.ok is True, "a new client over the lane relays while orphaned (%s)" % t2.error)
        t.join(60)
        h.check(t.ok is True and not t.is_alive(),
                "the transfer that ran across the close came back byte-exact (%s)" % t.error)
        t.s.close()
        t2.s.close()
        time.sleep(1)  # the worker sees both closes before the report below

        # Another local user cannot take the worker over.
        got = as_nobody(path)
        h.check(got == "eof", "a uid-65534 peer gets the socket closed unread (%s)" % got)
        line = w.wait_log("reattach refused", timeout=10)
        h.check("reason=wrong_uid" in line and "uid=%d" % NOBODY in line,
                "the refusal is logged with the uid (%s)" % line)
        h.check(w.p.poll() is None, "the worker still runs after the refused peer")

        # Root re-attaches: a report at once, covering the whole life.
        ctl2 = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ctl2.connect(path)
        rep2 = report_of(ctl2)
        w.wait_log("supervisor attached", timeout=10)
        h.check(rep2["seq"] == rep1["seq"] + 1, "re-attach report follows the last one (seq %d -> %d)"
                % (rep1["seq"], rep2["seq"]))
        h.check(rep2["handoffs"] == 1 and rep2["direct_handoffs"] == 1 and rep2["accepted"] == 2
                and rep2["handshake_ok"] == 2,
                "re-attach report counts both clients (%s)" % {k: rep2[k] for k in (
                    "handoffs", "direct_handoffs", "accepted", "handshake_ok")})
        h.check(rep2["bytes_client_to_dc"] == long_total + 100000
                and rep2["bytes_dc_to_client"] == long_total + 100000,
                "re-attach report's bytes cover the whole life (%d)" % rep2["bytes_client_to_dc"])
        h.check(rep2["active"] == 0, "both clients counted closed (active %d)" % rep2["active"])
        h.check(w.count("supervisor gone") == 1, "`supervisor gone` logged once")

        def via_ctl2(dgram, fd):
            cc.send(ctl2, dgram, fd)

        t3 = Transfer(gate_port, h.SIMPLE_SECRET, 50000)
        hand_over(via_ctl2, gate, h.SIMPLE_SECRET)
        t3.start()
        t3.join(30)
        h.check(t3.ok is True, "the new controller hands over a client (%s)" % t3.error)
        t3.s.close()
        rep3 = report_of_request(ctl2)
        h.check(rep3["handoffs"] == 2 and rep3["seq"] == rep2["seq"] + 1,
                "the new controller's report-request is answered (%d)" % rep3["handoffs"])

        # An idle client stays open; the controller goes and never comes back.
        idle = Transfer(gate_port, h.SIMPLE_SECRET, 1000)
        hand_over(via_lane, gate, h.SIMPLE_SECRET)
        idle.run()
        h.check(idle.ok is True, "the idle client relayed its first bytes")
        ctl2.close()
        gone_at = time.monotonic()
        w.wait_log("supervisor gone", timeout=10)
        w.wait_log("supervisor did not return", timeout=ORPHAN_S + 10)
        idle.s.settimeout(ORPHAN_S + DRAIN_S + 15)
        try:
            end = idle.s.recv(1)
            closed = "eof" if end == b"" else "data"
        except ConnectionResetError:
            closed = "reset"
        except socket.timeout:
            closed = "timeout"
        h.check(closed == "eof", "the idle client is closed in order by the drain (%s)" % closed)
        try:
            rc = w.p.wait(DRAIN_S + 15)
        except subprocess.TimeoutExpired:
            rc = None
        waited = time.monotonic() - gone_at
        h.check(rc == 0, "the worker exits 0 after the orphan timeout (%s)" % rc)
        h.check(waited >= ORPHAN_S - 0.5, "not before the orphan timeout (%.1f s)" % waited)
        idle.s.close()
        try:
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            probe.connect(path)
            refused = False
        except (ConnectionRefusedError, FileNotFoundError):
            refused = True
        h.check(refused, "a connect after the exit is refused (the supervisor's sign of a dead worker)")
    finally:
        for x in workers:
            x.stop()
        h.cleanup(dc, dirs=[workdir])
        gate.close()
    h.finish()


def report_of_request(sock):
    cc.send(sock, cc.report_request())
    return report_of(sock)


if __name__ == "__main__":
    main()
