#!/usr/bin/python3
"""The gate (mtwarden-gate), with this script playing the supervisor: it binds
the public listening sockets and a SOCK_SEQPACKET control pair, spawns the
gate with them inherited, sends the user table in a memfd (GateTable) and
checks, using its own codec of docs/worker-control.md (control_codec.py):

 1. obfuscated2 (abridged, dd/padded) and fake-TLS clients are handed over
    (GateHandoff) with the right user, the bytes they sent, and their socket;
 2. an HTTP probe and random bytes reach the mask host byte-exact;
 3. a replayed hello goes to the mask host;
 4. GateMask: a socket sent back is masked with exactly the given bytes;
 5. a bad table keeps the old one, a good one replaces it;
 6. ReportRequest -> Report with plausible counters;
 7. a ":tls" listener masks obfuscated2 clients and passes fake TLS;
 8. a storm of garbage connections leaves the gate's fd count unchanged;
 9. closing the control socket makes the gate exit 0 within 2 s (and SIGTERM
    does the same for a second gate);
10. with --replay-fd, a hello accepted before a restart of the gate is
    masked as a replay after it (the cache came back from the file).
"""

import asyncio
import os
import signal
import socket
import time

import control_codec as cc
import harness as h

GATE = os.environ.get("MTW_GATE", "build/hg/gate/mtwarden-gate")

USER_SIMPLE, USER_DD, USER_TLS = 101, 202, 4000000000
DD_SECRET = "dd" + h.OTHER_SECRET
TABLE = """# test users
%d %s

%d %s
%d %s
""" % (USER_SIMPLE, h.SIMPLE_SECRET, USER_DD, DD_SECRET, USER_TLS, h.TLS_SECRET)

ALL_LISTENER, TLS_LISTENER = 5, 7


def listen_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    return s


class Gate:
    def __init__(self, mask_port, listeners, extra=(), pass_fds=()):
        """listeners: [(socket, ":ID[:PROTOCOLS]" suffix)]."""
        self.ctl, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [GATE, "--control-fd", str(child.fileno()), "--mask", "127.0.0.1:%d" % mask_port,
                "--handshake-timeout", "2", "--log-level", "warn"] + list(extra)
        fds = [child.fileno()] + list(pass_fds)
        for sock, suffix in listeners:
            argv += ["--listen-fd", "%d%s" % (sock.fileno(), suffix)]
            fds.append(sock.fileno())
        self.proc = h.Proc(argv, pass_fds=fds, name="gate")
        child.close()

    def send_table(self, generation, text):
        fd = os.memfd_create("gate-table", os.MFD_CLOEXEC)
        try:
            os.write(fd, text.encode())  # the position stays at EOF: the gate must pread
            cc.send(self.ctl, cc.gate_table(generation), fd)
        finally:
            os.close(fd)

    def report(self):
        cc.send(self.ctl, cc.report_request())
        data, fds = cc.recv(self.ctl, timeout=10)
        for fd in fds:
            os.close(fd)
        mtype, rep = cc.decode(data)
        assert mtype == cc.REPORT, mtype
        return rep

    def next_handoff(self, timeout=10):
        """The next GateHandoff: (fields, socket object for the passed fd), or (None, None)."""
        try:
            data, fds = cc.recv(self.ctl, timeout=timeout)
        except socket.timeout:
            return None, None
        mtype, msg = cc.decode(data)
        if mtype != cc.GATE_HANDOFF or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return None, None
        s = socket.socket(fileno=fds[0])
        s.settimeout(10)
        return msg, s

    def no_handoff(self, timeout=1.0):
        msg, s = self.next_handoff(timeout)
        if s is not None:
            s.close()
        return msg is None


def check_handoff(gate, port, sent, user, listener, what):
    """Connects, sends `sent`, expects a handoff of that socket for `user`."""
    c = h.connect(port)
    try:
        c.sendall(sent)
        msg, s = gate.next_handoff()
        h.check(msg is not None, "%s: handed over" % what)
        if msg is None:
            return None
        h.check(msg["user"] == user, "%s: user %d (got %d)" % (what, user, msg["user"]))
        h.check(msg["listener_id"] == listener, "%s: listener id %d" % (what, listener))
        h.check(msg["data"] == sent, "%s: data equals the client's bytes (%d of %d)"
                % (what, len(msg["data"]), len(sent)))
        h.check(msg["peer"] == c.getsockname(), "%s: peer %s" % (what, msg["peer"]))
        s.sendall(b"through-the-fd")
        h.check(h.recv_exact(c, 14) == b"through-the-fd", "%s: the fd is the client's socket" % what)
        c.sendall(b"ping")
        h.check(h.recv_exact(s, 4) == b"ping", "%s: client bytes arrive on the fd" % what)
        s.close()
        return msg
    finally:
        c.close()


def check_masked(gate, port, data, record_dir, what):
    before = h.mask_records(record_dir)
    answer = h.probe(port, data)
    got = h.wait_new_record(record_dir, before)
    h.check(got == data, "%s: mask host got the bytes exactly (%s)"
            % (what, None if got is None else len(got)))
    h.check(answer.endswith(b"mask-answer\n"), "%s: the mask host's answer reached the client" % what)
    h.check(gate.no_handoff(0.3), "%s: no handoff" % what)


async def one_garbage(port, sem, i):
    async with sem:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            if i % 3:
                w.write(os.urandom(64 + (i % 200)))
                await w.drain()
            w.close()
            await w.wait_closed()
        except OSError:
            return False
        return True


async def storm(port, total, parallel):
    sem = asyncio.Semaphore(parallel)
    results = await asyncio.gather(*(one_garbage(port, sem, i) for i in range(total)))
    return sum(1 for r in results if r)


def wait_idle(gate, pred, timeout=30):
    deadline = time.time() + timeout
    while True:
        rep = gate.report()
        if pred(rep) or time.time() > deadline:
            return rep
        time.sleep(0.2)


def main():
    d = h.tmpdir()
    mask, mask_port = h.start_fake_mask(d)
    all_sock, tls_sock = listen_socket(), listen_socket()
    port, tls_port = all_sock.getsockname()[1], tls_sock.getsockname()[1]
    # No per-IP limits here: every client is 127.0.0.1 and the storm below
    # (200 at once) exercises the handshake path; the rate limit is checked
    # with the second gate, the per-source caps in test_gate_flood.py.
    gate = Gate(mask_port, [(all_sock, ":%d" % ALL_LISTENER), (tls_sock, ":%d:tls" % TLS_LISTENER)],
                extra=["--per-ip-rate", "0", "--source-handshakes", "0", "--subnet-handshakes", "0"])
    gate2 = None
    try:
        rep = gate.report()  # readiness
        h.check(rep["seq"] == 1 and rep["accepted"] == 0, "ready: first report (%s)" % rep)

        # Before any table every connection is masked.
        early = h.Obfs2Client(h.SIMPLE_SECRET)
        check_masked(gate, port, early.init, d, "before the first table")

        gate.send_table(1, TABLE)
        gate.report()  # the table was handled before this answer

        # 1. identified clients
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_handoff(gate, port, c.init + c.seal(b"first payload!!!"), USER_SIMPLE, ALL_LISTENER,
                      "obfuscated2 abridged")
        c = h.Obfs2Client(DD_SECRET, tag=b"\xdd" * 4)
        check_handoff(gate, port, c.init, USER_DD, ALL_LISTENER, "obfuscated2 dd (padded)")
        hello = h.client_hello(h.TLS_SECRET)
        check_handoff(gate, port, hello, USER_TLS, ALL_LISTENER, "fake TLS")

        # 2. probes
        check_masked(gate, port, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", d, "HTTP probe")
        check_masked(gate, port, b"\x01" + os.urandom(300), d, "random bytes")
        check_masked(gate, port, h.client_hello(h.TLS_SECRET, sni="other.example.org"), d,
                     "fake TLS with a wrong SNI")
        stranger = "ee" + h.OTHER_SECRET + h.TLS_DOMAIN.encode().hex()
        check_masked(gate, port, h.client_hello(stranger), d,
                     "fake TLS with an unknown secret (bad hmac)")
        # Handshake timeout: half an init, then silence (no FIN).
        before = h.mask_records(d)
        slow = h.connect(port)
        half = h.Obfs2Client(h.SIMPLE_SECRET).init[:30]
        slow.sendall(half)
        time.sleep(2.8)
        slow.shutdown(socket.SHUT_WR)
        got = h.wait_new_record(d, before)
        slow.close()
        h.check(got == half, "handshake timeout: the partial init went to the mask host")

        # 3. replays
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_handoff(gate, port, c.init, USER_SIMPLE, ALL_LISTENER, "obfuscated2 original")
        check_masked(gate, port, c.init, d, "obfuscated2 replay")
        hello = h.client_hello(h.TLS_SECRET)
        check_handoff(gate, port, hello, USER_TLS, ALL_LISTENER, "fake TLS original")
        check_masked(gate, port, hello, d, "fake TLS replay")

        # 4. GateMask: the supervisor sends a handed-over socket back.
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        client = h.connect(port)
        client.sendall(c.init)
        msg, s = gate.next_handoff()
        h.check(msg is not None and msg["data"] == c.init, "mask request: handed over first")
        before = h.mask_records(d)
        back = b"bytes the supervisor chose" + msg["data"]
        cc.send(gate.ctl, cc.gate_mask(msg["listener_id"], msg["peer"], back), s.fileno())
        s.close()
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            answer += chunk
        client.close()
        got = h.wait_new_record(d, before)
        h.check(got == back, "mask request: the mask host got exactly the given bytes")
        h.check(answer.endswith(b"mask-answer\n"), "mask request: the client got the mask's answer")

        # 7. listener protocol restriction
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_masked(gate, tls_port, c.init, d, "obfuscated2 on a tls-only listener")
        check_handoff(gate, tls_port, h.client_hello(h.TLS_SECRET), USER_TLS, TLS_LISTENER,
                      "fake TLS on a tls-only listener")

        # 5. a bad table keeps the old one; a good one replaces it
        gate.send_table(2, "%d %s\n300 not-a-secret\n" % (USER_SIMPLE + 1, h.SIMPLE_SECRET))
        gate.report()
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_handoff(gate, port, c.init, USER_SIMPLE, ALL_LISTENER, "after a bad table: old user")
        gate.send_table(3, "%d %s\n" % (777, h.SIMPLE_SECRET))
        gate.report()
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_handoff(gate, port, c.init, 777, ALL_LISTENER, "after a good table: new user id")
        check_masked(gate, port, h.client_hello(h.TLS_SECRET), d, "user removed by the new table")
        gate.send_table(4, TABLE)
        gate.report()

        # 6. report
        rep = wait_idle(gate, lambda r: r["active"] == 0)
        h.check(rep["handoffs"] == 9, "report: handoffs=9 (%d)" % rep["handoffs"])
        h.check(rep["handshake_ok"] == 9, "report: handshake_ok=9 (%d)" % rep["handshake_ok"])
        h.check(rep["mask_requests"] == 1, "report: mask_requests=1 (%d)" % rep["mask_requests"])
        h.check(rep["fail_replay"] == 2, "report: fail_replay=2 (%d)" % rep["fail_replay"])
        h.check(rep["fail_timeout"] == 1, "report: fail_timeout=1 (%d)" % rep["fail_timeout"])
        h.check(rep["fail_not_allowed"] == 1, "report: fail_not_allowed=1 (%d)"
                % rep["fail_not_allowed"])
        h.check(rep["masked"] == 11, "report: masked=11 (%d)" % rep["masked"])
        h.check(rep["accepted"] == 19, "report: accepted=19 (%d)" % rep["accepted"])
        h.check(rep["active"] == 0, "report: active=0")
        h.check(rep["masked_bytes_to_mask"] > 0 and rep["masked_bytes_from_mask"] > 0,
                "report: masked bytes counted")
        h.check(rep["bytes_client_to_dc"] == 0 and rep["overload_closed"] == 0,
                "report: no relay bytes, no overload")

        # 8. garbage storm
        fds_before = h.count_fds(gate.proc.pid)
        total = 2000
        ok = asyncio.run(storm(port, total, 200))
        h.check(ok == total, "storm: %d connections made (%d)" % (total, ok))
        rep = wait_idle(gate, lambda r: r["active"] == 0 and r["accepted"] >= 19 + total, 60)
        h.check(rep["accepted"] == 19 + total and rep["active"] == 0,
                "storm: every connection accepted and closed (%s)" % rep)
        h.check(gate.no_handoff(0.5), "storm: no handoff")
        fds_after = h.count_fds(gate.proc.pid)
        h.check(fds_after <= fds_before, "storm: no fd leak (before=%d after=%d)"
                % (fds_before, fds_after))
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        check_handoff(gate, port, c.init, USER_SIMPLE, ALL_LISTENER, "after the storm")

        # --max-handshakes: a second gate allowing one handshake at a time.
        # No mirror: a handshake still open after --mask-mirror-after (250 ms
        # by default) is mirrored to the mask, whose answer ends it, and the
        # slot it held would be free again before the second connection
        # comes (a failure in about half the runs, by the tick's phase).
        gate2 = Gate(mask_port, [(all_sock, ":1")],
                     extra=["--max-handshakes", "1", "--per-ip-rate", "5", "--mask-mirror-after", "0"])
        gate2.report()
        gate.ctl.close()  # 9. the first gate exits 0 when the control socket closes
        t0 = time.time()
        try:
            code = gate.proc.wait(5)
        except Exception:
            code = None
        h.check(code == 0 and time.time() - t0 < 2.0,
                "control socket closed: gate exits 0 within 2 s (%s, %.2fs)"
                % (code, time.time() - t0))
        gate2.send_table(1, TABLE)
        hold = h.connect(port)  # stays in its handshake
        hold.sendall(b"\x16\x03")
        # The gate must have accepted it and read its first bytes (a
        # plausible start): a handshake not yet read is "unproven", and the
        # next connection would evict it instead of being refused.
        wait_idle(gate2, lambda r: r["active"] >= 1, 10)
        time.sleep(0.3)
        extra = h.connect(port)
        extra.settimeout(5)
        try:
            closed = extra.recv(10) == b""
        except socket.timeout:
            closed = False  # still open after 5 s: not refused
        except OSError:
            closed = True
        extra.close()
        hold.close()
        rep = gate2.report()
        h.check(closed, "max-handshakes: a connection over the limit is closed at once "
                "(evicted_unproven=%d)" % rep["evicted_unproven"])
        h.check(rep["overload_closed"] >= 1, "max-handshakes: counted (%d)" % rep["overload_closed"])
        # --per-ip-rate 5 (burst 10): 40 quick connections from one IP.
        for _ in range(40):
            h.connect(port).close()
        rep = wait_idle(gate2, lambda r: r["rate_limited"] >= 20, 10)
        h.check(rep["rate_limited"] >= 20,
                "per-ip-rate: connections over the rate are closed at accept (%d of 40)" % rep["rate_limited"])
        gate2.proc.signal(signal.SIGTERM)
        t0 = time.time()
        try:
            code = gate2.proc.wait(5)
        except Exception:
            code = None
        h.check(code == 0 and time.time() - t0 < 2.0,
                "SIGTERM: gate exits 0 within 2 s (%s, %.2fs)" % (code, time.time() - t0))

        # 10. The replay cache across a restart: both gates share one file.
        rf = os.open(os.path.join(d, "replay.cache"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        rsock = listen_socket()
        rport = rsock.getsockname()[1]
        kept = h.client_hello(h.TLS_SECRET)
        for run in (1, 2):
            g = Gate(mask_port, [(rsock, ":3")], extra=["--replay-fd", str(rf)], pass_fds=[rf])
            try:
                g.send_table(1, TABLE)
                g.report()
                if run == 1:
                    check_handoff(g, rport, kept, USER_TLS, 3, "replay file: first sight")
                    h.check(os.fstat(rf).st_size == 64 + 12 * 1048576,
                            "replay file: fixed size (%d)" % os.fstat(rf).st_size)
                else:
                    check_masked(g, rport, kept, d, "replay file: the same hello after a restart")
                    fresh = h.client_hello(h.TLS_SECRET)
                    check_handoff(g, rport, fresh, USER_TLS, 3, "replay file: a new hello still passes")
            finally:
                g.ctl.close()
                try:
                    g.proc.wait(5)
                except Exception:
                    g.proc.stop()
        os.close(rf)
    finally:
        h.cleanup(gate.proc, gate2.proc if gate2 else None, mask, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
