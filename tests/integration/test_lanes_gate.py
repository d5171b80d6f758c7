#!/usr/bin/python3
"""Direct lanes, gate side (docs/worker-control.md, Lane/GateLane/GateCredit/GateDirect),
with this script playing the supervisor and speaking its own codec
(control_codec.py). Real clients (obfuscated2, fake TLS) connect.

Gate (mtwarden-gate, stderr kept in a file):
 a. GateLane(allow_until=2): two clients arrive at the lane's other end as
    Handoffs (exact bytes, peer, a working client fd), the third comes as
    GateHandoff, preceded by a GateDirect naming the first two;
 b. GateCredit raising allow_until lets one more through; a client right
    after it (over the credit) comes as GateHandoff after its GateDirect;
 c. a credit for another lane number is ignored (also close=1); a lone
    direct handoff is told by the timer; close=1 drops the lane (EOF on its
    other end) and a later credit for it changes nothing;
 d. the worker closing its end: the next client falls back (nothing lost),
    later ones too; a full lane (tiny SO_SNDBUF) falls back but stays;
 e. GateLane with a pipe, a TCP socket or a stream socket is rejected with a
    log line and does not replace a good lane; a new GateLane replaces the
    user's lane; a user removed from the table loses its lane; a second
    user's lane carries fake TLS; an unconnected lane socket falls back;
    a burst of 12 clients over allow_until=5: all 5 direct ones are told
    before the first GateHandoff;
 f. the gate's report counts handoffs and direct_handoffs as seen here.
"""

import os
import socket
import time

import control_codec as cc
import harness as h
from lanes_common import *  # noqa: F401,F403


class Gate:
    def __init__(self, mask_port, listen, log_path):
        self.ctl, child = seqpacket_pair()
        argv = [GATE, "--control-fd", str(child.fileno()), "--mask", "127.0.0.1:%d" % mask_port,
                "--handshake-timeout", "2", "--log-level", "warn", "--per-ip-rate", "0",
                "--listen-fd", "%d:%d" % (listen.fileno(), LISTENER)]
        self.proc = LoggedProc(argv, [child.fileno(), listen.fileno()], "gate", log_path)
        child.close()
        self.pending = []  # messages read while waiting for a report
        self.seen = {"handoffs": 0, "direct": 0}

    def send_table(self, generation, text):
        fd = os.memfd_create("gate-table", os.MFD_CLOEXEC)
        try:
            os.write(fd, text.encode())
            cc.send(self.ctl, cc.gate_table(generation), fd)
        finally:
            os.close(fd)

    def send(self, dgram, fd=None):
        cc.send(self.ctl, dgram, fd)

    def _recv(self, timeout):
        data, fds = cc.recv(self.ctl, timeout)
        mtype, msg = cc.decode(data)
        return mtype, msg, fds

    def report(self):
        """Sends ReportRequest; messages before the report are kept for next()."""
        self.send(cc.report_request())
        while True:
            mtype, msg, fds = self._recv(10)
            if mtype == cc.REPORT:
                return msg
            self.pending.append((mtype, msg, fds))

    def next(self, timeout=10):
        """The next (type, fields, fds) from the gate other than a report, or None."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.time() + timeout
        while True:
            try:
                mtype, msg, fds = self._recv(max(0.01, deadline - time.time()))
            except socket.timeout:
                return None
            if mtype != cc.REPORT:
                return mtype, msg, fds



def take_lane(lane_end, timeout=10):
    """The next datagram on the worker's end of a lane: (bytes, fds, time), or None."""
    try:
        data, fds = cc.recv(lane_end, timeout)
    except socket.timeout:
        return None
    return data, fds, time.time()


def check_lane(gate, taken, client, sent, what):
    """`taken` (from take_lane) must be a plain Handoff of `client`."""
    if taken is None:
        h.check(False, "%s: arrived over the lane (timeout)" % what)
        return False
    data, fds, _ = taken
    mtype, msg = cc.decode(data) if data else (None, None)
    ok = mtype == cc.HANDOFF and len(fds) == 1
    h.check(ok, "%s: arrived over the lane as Handoff + 1 fd (type %s, %d fds)" % (what, mtype, len(fds)))
    if not ok:
        for fd in fds:
            os.close(fd)
        return False
    gate.seen["direct"] += 1
    h.check(msg["listener_id"] == LISTENER, "%s: listener id %d" % (what, msg["listener_id"]))
    h.check(msg["data"] == sent, "%s: exact consumed bytes (%d of %d)" % (what, len(msg["data"]), len(sent)))
    h.check(msg["peer"] == client.getsockname(), "%s: peer %s" % (what, msg["peer"]))
    check_client_fd(fds[0], client, what)
    return True


def expect_lane(gate, lane_end, client, sent, what):
    return check_lane(gate, take_lane(lane_end), client, sent, what)


def expect_handoff(gate, client, sent, user, what, direct_first=None):
    """The client must come as GateHandoff on the control socket; with
    `direct_first` = [(user, lane, client)], a GateDirect naming exactly
    those must come first."""
    got = gate.next()
    if direct_first is not None:
        h.check(got is not None and got[0] == cc.GATE_DIRECT,
                "%s: GateDirect first (got %s)" % (what, got and got[0]))
        if got is not None and got[0] == cc.GATE_DIRECT:
            want = [{"user": u, "lane": ln, "peer": c.getsockname()} for u, ln, c in direct_first]
            h.check(got[1]["entries"] == want, "%s: GateDirect entries %s" % (what, got[1]["entries"]))
            got = gate.next()
    if got is None or got[0] != cc.GATE_HANDOFF or len(got[2]) != 1:
        h.check(False, "%s: came as GateHandoff (got %s)" % (what, got and got[0]))
        if got is not None:
            for fd in got[2]:
                os.close(fd)
        return False
    _, msg, fds = got
    gate.seen["handoffs"] += 1
    h.check(msg["user"] == user and msg["listener_id"] == LISTENER and msg["data"] == sent
            and msg["peer"] == client.getsockname(),
            "%s: GateHandoff user=%d, exact bytes, peer" % (what, msg["user"]))
    check_client_fd(fds[0], client, what)
    return True


def expect_direct(gate, entries, what, timeout=2):
    got = gate.next(timeout)
    want = [{"user": u, "lane": ln, "peer": c.getsockname()} for u, ln, c in entries]
    h.check(got is not None and got[0] == cc.GATE_DIRECT and got[1]["entries"] == want,
            "%s: GateDirect %s (got %s)" % (what, want, got and got[1]))


def new_lane(gate, user, lane, allow_until, sndbuf=None):
    """Sends GateLane with the gate's end; returns the worker's end."""
    gate_end, worker_end = seqpacket_pair()
    if sndbuf is not None:
        gate_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    gate.send(cc.gate_lane(user, lane, allow_until), gate_end.fileno())
    gate_end.close()
    gate.report()  # handled in order: the lane is set once this is answered
    return worker_end


def lane_credit(gate, port):
    """a, b: allow_until and GateCredit; returns the lane (11)."""
    # a. allow_until=2: two over the lane, the third the old way, told
    # first. Each client starts once the previous one was handed over
    # (so the order is known), well within the GateDirect window.
    lane1 = new_lane(gate, USER, 11, 2)
    c1, s1 = new_client(port)
    t1 = take_lane(lane1)
    c2, s2 = new_client(port)
    t2 = take_lane(lane1)
    c3, s3 = new_client(port)
    check_lane(gate, t1, c1, s1, "a: client 1")
    check_lane(gate, t2, c2, s2, "a: client 2")
    expect_handoff(gate, c3, s3, USER, "a: client 3 (over allow_until)",
                   direct_first=[(USER, 11, c1), (USER, 11, c2)])
    h.check(nothing_waiting(lane1), "a: nothing more on the lane")

    # b. more credit: one more over the lane; the next the old way, after
    # the GateDirect that names the first.
    gate.send(cc.gate_credit(USER, 11, allow_until=3))
    c4, s4 = new_client(port)
    t4 = take_lane(lane1)
    c5, s5 = new_client(port)
    check_lane(gate, t4, c4, s4, "b: credit raised to 3")
    expect_handoff(gate, c5, s5, USER, "b: over the new credit", direct_first=[(USER, 11, c4)])
    return lane1


def credit_rules(gate, port, lane1):
    """c: credits for other lanes, the timer, close=1."""
    # c. credits for another lane number are ignored.
    gate.send(cc.gate_credit(USER, 99, allow_until=cc.UNLIMITED))
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "c: credit for lane 99 ignored")
    h.check(nothing_waiting(lane1), "c: nothing on lane 11")
    gate.send(cc.gate_credit(USER, 99, close=True))
    gate.send(cc.gate_credit(USER, 11, allow_until=10))
    c, s = new_client(port)
    taken = take_lane(lane1)
    got = gate.next(2)
    told = time.time()
    check_lane(gate, taken, c, s, "c: close for lane 99 ignored, lane 11 credited")
    h.check(got is not None and got[0] == cc.GATE_DIRECT
            and got[1]["entries"] == [{"user": USER, "lane": 11, "peer": c.getsockname()}],
            "c: a lone direct handoff is told by the timer (%s)" % (got and got[1]))
    if taken is not None:
        h.check(told - taken[2] < 1.0, "c: GateDirect %.3fs after the handoff (window 0.1s)"
                % (told - taken[2]))
    gate.send(cc.gate_credit(USER, 11, close=True))
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "c: lane closed by credit close=1")
    h.check(is_eof(lane1), "c: the lane's other end sees EOF after close=1")
    lane1.close()
    gate.send(cc.gate_credit(USER, 11, allow_until=100))
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "c: a credit for the closed lane changes nothing")


def worker_end_closes(gate, port):
    """d: the lane is gone: fallback, nothing lost."""
    # d. the worker's end closes: fallback, nothing lost.
    lane2 = new_lane(gate, USER, 12, cc.UNLIMITED)
    c6, s6 = new_client(port)
    expect_lane(gate, lane2, c6, s6, "d: unlimited lane")
    lane2.close()
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "d: worker end closed: falls back",
                   direct_first=[(USER, 12, c6)])
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "d: later clients too")


def full_lane(gate, port):
    """d: EAGAIN on the lane: fallback, the lane stays."""
    # A full lane (EAGAIN): that client falls back, the lane stays.
    lane3 = new_lane(gate, USER, 13, cc.UNLIMITED, sndbuf=1)
    queued, fallback = [], None  # peers told in GateDirect; the client that fell back
    for i in range(40):
        c, s = new_client(port)
        me = c.getsockname()
        got = gate.next(3)
        while got is not None and got[0] == cc.GATE_DIRECT:
            queued += [e["peer"] for e in got[1]["entries"]]
            if me in queued:
                break
            got = gate.next(3)
        if got is not None and got[0] == cc.GATE_HANDOFF:
            gate.pending.insert(0, got)
            fallback = (c, s)
            break
        if me not in queued:
            h.check(False, "d: full lane: client %d neither direct nor handed over" % i)
            break
    h.check(fallback is not None and len(queued) >= 1,
            "d: full lane: %d over the lane, then one falls back" % len(queued))
    if fallback is not None:
        expect_handoff(gate, fallback[0], fallback[1], USER, "d: full lane: fallback")
    drained = []
    while len(drained) < len(queued):
        try:
            data, fds = cc.recv(lane3, 5)
        except socket.timeout:
            break
        for fd in fds:
            os.close(fd)
        gate.seen["direct"] += 1
        drained.append(cc.decode(data)[1]["peer"])
    h.check(drained == queued, "d: full lane: the queued handoffs are all there (%d)" % len(drained))
    c, s = new_client(port)
    expect_lane(gate, lane3, c, s, "d: full lane: kept, used again once drained")
    expect_direct(gate, [(USER, 13, c)], "d: full lane")
    lane3.close()
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "e: lane 13 gone")


def bad_lane_fds(gate, port):
    """e: GateLane fds that are not SEQPACKET sockets."""
    # e. GateLane with the wrong kind of fd: rejected, nothing changes.
    r, w = os.pipe()
    gate.send(cc.gate_lane(USER, 14, cc.UNLIMITED), r)
    os.close(r)
    os.close(w)
    tcp = socket.socket()
    gate.send(cc.gate_lane(USER, 15, cc.UNLIMITED), tcp.fileno())
    tcp.close()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    gate.send(cc.gate_lane(USER, 16, cc.UNLIMITED), a.fileno())
    a.close()
    gate.report()
    h.check(gate.proc.alive(), "e: gate up after bad GateLane fds")
    log = gate.proc.log()
    for n in (14, 15, 16):
        h.check("lane rejected user=%d lane=%d reason=not_a_seqpacket_socket" % (USER, n) in log,
                "e: lane %d rejected with a log line" % n)
    h.check(is_eof(b, 2), "e: the stream socket was closed by the gate")
    b.close()
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "e: rejected lanes: old path")


def lane_replaced(gate, port):
    """e: replacement, a second user, table removal, unconnected lane."""
    lane4 = new_lane(gate, USER, 17, cc.UNLIMITED)
    r, w = os.pipe()
    gate.send(cc.gate_lane(USER, 18, cc.UNLIMITED), r)
    os.close(r)
    os.close(w)
    gate.report()
    c7, s7 = new_client(port)
    expect_lane(gate, lane4, c7, s7, "e: a rejected GateLane does not replace a good lane")
    expect_direct(gate, [(USER, 17, c7)], "e: lane 17")
    lane6 = new_lane(gate, USER, 19, cc.UNLIMITED)
    h.check(is_eof(lane4), "e: a new GateLane for the user closes the old lane")
    lane4.close()
    c, s = new_client(port)
    expect_lane(gate, lane6, c, s, "e: the new lane is used")
    expect_direct(gate, [(USER, 19, c)], "e: lane 19")
    lane5 = new_lane(gate, USER_TLS, 20, 1)
    c8, s8 = new_client(port, tls=True)
    t8 = take_lane(lane5)
    c9, s9 = new_client(port, tls=True)
    check_lane(gate, t8, c8, s8, "e: fake TLS over user %d's lane" % USER_TLS)
    expect_handoff(gate, c9, s9, USER_TLS, "e: second user over its allow_until",
                   direct_first=[(USER_TLS, 20, c8)])
    # A user removed from the table loses its lane.
    gate.send_table(2, "%d %s\n" % (USER_TLS, h.TLS_SECRET))
    gate.send_table(3, TABLE)
    gate.report()
    h.check(is_eof(lane6), "e: user removed from the table: its lane closes")
    h.check(nothing_waiting(lane5), "e: the other user's lane stays open")
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "e: user back in the table: old path")
    lane6.close()
    lane5.close()
    # An unconnected SEQPACKET socket passes the type check; the first
    # send fails and that client falls back.
    loose = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    gate.send(cc.gate_lane(USER, 21, cc.UNLIMITED), loose.fileno())
    loose.close()
    gate.report()
    c, s = new_client(port)
    expect_handoff(gate, c, s, USER, "e: unconnected SEQPACKET lane: falls back")


def burst_ordering(gate, port):
    """Ordering under concurrency."""
    # A burst of 12 over allow_until=5: exactly 5 take the lane, and all
    # 5 are told before the first GateHandoff, whatever the interleaving.
    lane7 = new_lane(gate, USER, 22, 5)
    burst = {}
    for _ in range(12):
        c, s = new_client(port)
        burst[c.getsockname()] = c
    told, handed, told_at_first = [], [], None
    while len(handed) < 7:
        got = gate.next(5)
        if got is None:
            break
        mtype, msg, fds = got
        for fd in fds:
            os.close(fd)
        if mtype == cc.GATE_DIRECT:
            told += [(e["user"], e["lane"], e["peer"]) for e in msg["entries"]]
        elif mtype == cc.GATE_HANDOFF:
            gate.seen["handoffs"] += 1
            told_at_first = len(told) if told_at_first is None else told_at_first
            handed.append(msg["peer"])
    laned = []
    for _ in range(5):
        taken = take_lane(lane7, 5)
        if taken is None:
            break
        for fd in taken[1]:
            os.close(fd)
        gate.seen["direct"] += 1
        laned.append(cc.decode(taken[0])[1]["peer"])
    h.check(told_at_first == 5, "burst: all 5 direct handoffs told before the first GateHandoff (%s)"
            % told_at_first)
    h.check(len(handed) == 7 and len(laned) == 5 and nothing_waiting(lane7),
            "burst: 5 over the lane, 7 the old way (%d, %d)" % (len(laned), len(handed)))
    h.check(sorted(told) == sorted((USER, 22, p) for p in laned),
            "burst: GateDirect names exactly the lane's clients")
    h.check(set(laned) | set(handed) == set(burst), "burst: every client accounted for once")
    for c in burst.values():
        c.close()
    lane7.close()


def gate_counters(gate):
    """f: the report matches what arrived here; EOF stops the gate."""
    # f. counters
    rep = gate.report()
    h.check(rep["handoffs"] == gate.seen["handoffs"], "f: handoffs=%d (seen %d)"
            % (rep["handoffs"], gate.seen["handoffs"]))
    h.check(rep["direct_handoffs"] == gate.seen["direct"], "f: direct_handoffs=%d (seen %d)"
            % (rep["direct_handoffs"], gate.seen["direct"]))
    h.check(rep["handshake_ok"] == gate.seen["handoffs"] + gate.seen["direct"],
            "f: handshake_ok=%d" % rep["handshake_ok"])
    h.check(gate.proc.alive(), "f: gate still up")
    gate.ctl.close()
    h.check(gate.proc.wait(10) == 0, "f: gate exits 0 when the control socket closes")


def gate_tests(d, mask_port):
    listen = socket.socket()
    listen.bind(("127.0.0.1", 0))
    listen.listen(128)
    port = listen.getsockname()[1]
    gate = Gate(mask_port, listen, os.path.join(d, "gate.log"))
    try:
        h.check(gate.report()["seq"] == 1, "gate: ready")
        gate.send_table(1, TABLE)
        gate.report()
        lane1 = lane_credit(gate, port)
        credit_rules(gate, port, lane1)
        worker_end_closes(gate, port)
        full_lane(gate, port)
        bad_lane_fds(gate, port)
        lane_replaced(gate, port)
        burst_ordering(gate, port)
        gate_counters(gate)
    finally:
        if h.FAILURES:
            print("---- gate log\n" + gate.proc.log()[-6000:], flush=True)
        h.cleanup(gate.proc)
        listen.close()




def main():
    d = h.tmpdir()
    mask, mask_port = h.start_fake_mask(d)
    try:
        gate_tests(d, mask_port)
    finally:
        h.cleanup(mask, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
