#!/usr/bin/python3
"""Direct lanes, worker side (docs/worker-control.md, Lane), with this
script playing the supervisor and speaking its own codec (control_codec.py).

Worker (managed mode, --log-level info, stderr kept in a file):
 g. Lane + a Handoff over it: the client's session echoes through the fake
    DC; direct_handoffs=1, handoffs unchanged;
 h. SetLimits, Reload or Lane sent on a lane are not applied and close that
    lane (EOF, then EPIPE); the control socket still answers; a non-SEQPACKET
    Lane fd is rejected with a log line;
 i. garbage, a Handoff without its fd or an oversized datagram closes only
    that lane; another lane still works; at most 8 lanes are open; drain
    closes the lanes.
"""

import os
import socket
import time

import control_codec as cc
import harness as h
from lanes_common import *  # noqa: F401,F403
from test_managed import hand_over  # a client session handed over a socket of ours


def worker_report(parent):
    cc.send(parent, cc.report_request())
    data, fds = cc.recv(parent, 10)
    for fd in fds:
        os.close(fd)
    mtype, rep = cc.decode(data)
    assert mtype == cc.REPORT, mtype
    return rep


def open_lane(parent, lane):
    """Sends Lane with the worker's end; returns the gate's end."""
    gate_end, worker_end = seqpacket_pair()
    cc.send(parent, cc.lane(lane), worker_end.fileno())
    worker_end.close()
    return gate_end


def lane_handoff(parent, listen):
    """g: a client over a lane, counted as a direct handoff; returns the lane."""
    # g. a Handoff over a lane
    l1 = open_lane(parent, 1)
    t0 = int(time.time())
    h.check(hand_over(l1, listen, h.SIMPLE_SECRET, 100000), "g: client over a lane echoes intact")
    rep = worker_report(parent)
    # The clients section (docs/worker-control.md): the client closed, so no
    # address stays open and its end is timed.
    deadline = time.monotonic() + 5
    while rep.get("clients", {}).get("open") and time.monotonic() < deadline:
        time.sleep(0.1)
        rep = worker_report(parent)
    cl = rep.get("clients") or {}
    h.check(cl.get("open") == [] and t0 <= cl.get("last_close", 0) <= time.time() + 1
            and cl.get("truncated") is False,
            "g: report's clients section: none open, last close timed (%r, since %d)" % (cl, t0))
    h.check(rep["direct_handoffs"] == 1 and rep["handoffs"] == 0 and rep["handshake_ok"] == 1
            and rep["bytes_client_to_dc"] == 100000,
            "g: report direct_handoffs=1 handoffs=0 (%d/%d)" % (rep["direct_handoffs"], rep["handoffs"]))
    h.check(hand_over(parent, listen, h.SIMPLE_SECRET, 5000), "g: control handoff still works")
    rep = worker_report(parent)
    h.check(rep["direct_handoffs"] == 1 and rep["handoffs"] == 1,
            "g: control handoff counted as handoffs (%d/%d)" % (rep["direct_handoffs"], rep["handoffs"]))
    return l1


def lane_not_control(parent, listen, w, l1):
    """h: control messages on a lane are not applied and close it."""
    # h. control messages on a lane: not applied, the lane closes.
    rep = worker_report(parent)
    l2 = open_lane(parent, 2)
    cc.send(l2, cc.set_limits(max_connections=1, idle_timeout_ms=1, handshake_timeout_ms=1))
    h.check(is_eof(l2), "h: SetLimits on a lane: the lane closes (EOF)")
    h.check(send_fails_epipe(l2), "h: then sending on it fails with EPIPE")
    l3 = open_lane(parent, 3)
    cc.send(l3, cc.reload([h.OTHER_SECRET]))
    h.check(is_eof(l3), "h: Reload on a lane: the lane closes")
    l4 = open_lane(parent, 4)
    inner_gate, inner_worker = seqpacket_pair()
    cc.send(l4, cc.lane(5), inner_worker.fileno())
    inner_worker.close()
    h.check(is_eof(l4), "h: Lane on a lane: the lane closes")
    h.check(is_eof(inner_gate, 2), "h: Lane on a lane: its fd is not opened as a lane")
    for s in (l2, l3, l4, inner_gate):
        s.close()
    rep2 = worker_report(parent)
    h.check(rep2["seq"] == rep["seq"] + 1 and w.alive(), "h: worker up, control socket answers")
    h.check("limits set" not in w.log(), "h: no 'limits set' in the worker's log")
    h.check(hand_over(parent, listen, h.SIMPLE_SECRET, 5000),
            "h: the Reload sent on a lane was not applied (old secret works)")
    h.check(hand_over(l1, listen, h.SIMPLE_SECRET, 5000), "h: lane 1 still works")
    cc.send(parent, cc.set_limits(idle_timeout_ms=600000))
    h.check(w.wait_log("limits set"), "h: SetLimits on the control socket is logged")
    lines = [x for x in w.log().splitlines() if "limits set" in x]
    h.check(len(lines) == 1 and "idle_timeout_ms=600000" in lines[0]
            and re.search(r"max_connections=1\b", lines[0]) is None
            and re.search(r"handshake_timeout_ms=1\b", lines[0]) is None,
            "h: only the control socket's limits applied (%s)" % lines)
    r, wr = os.pipe()
    cc.send(parent, cc.lane(7), r)
    os.close(r)
    os.close(wr)
    worker_report(parent)
    h.check("lane rejected lane=7 reason=not_a_seqpacket_socket" in w.log(),
            "h: a non-SEQPACKET Lane fd is rejected with a log line")


def lane_garbage_and_cap(parent, listen, w):
    """i: garbage closes one lane; at most 8; returns the open lanes."""
    # i. garbage closes only its lane.
    la, lb = open_lane(parent, 8), open_lane(parent, 9)
    la.send(b"MTWC\x01garbage, not a datagram")
    h.check(is_eof(la), "i: garbage on a lane closes it")
    lc = open_lane(parent, 10)
    lc.send(cc.handoff(1, ("127.0.0.1", 1), b"x"))  # a Handoff without its fd
    h.check(is_eof(lc), "i: a Handoff without an fd closes the lane")
    h.check(hand_over(lb, listen, h.SIMPLE_SECRET, 5000), "i: another lane still works")
    ld = open_lane(parent, 11)
    ld.send(b"\0" * 70000)  # over the 64 KiB control datagram cap
    h.check(is_eof(ld), "i: an oversized datagram closes the lane")
    la.close()
    lc.close()
    ld.close()
    # At most 8 lanes: l1 and lb are open, add 6, the ninth is refused.
    time.sleep(0.3)  # the closed lanes' loops saw their EOF
    more = [open_lane(parent, 20 + i) for i in range(6)]
    worker_report(parent)
    h.check(all(nothing_waiting(x, 0.2) for x in more), "i: lanes up to 8 stay open")
    ninth = open_lane(parent, 30)
    h.check(is_eof(ninth), "i: a ninth lane is refused (EOF)")
    h.check(w.wait_log("lane rejected lane=30 reason=too_many_lanes"), "i: and logged")
    ninth.close()
    more.pop().close()
    time.sleep(0.3)
    again = open_lane(parent, 31)
    h.check(hand_over(again, listen, h.SIMPLE_SECRET, 5000), "i: a lane closed makes room for one")
    rep = worker_report(parent)
    h.check(rep["direct_handoffs"] == 4 and rep["handoffs"] == 2,
            "i: report direct_handoffs=4 handoffs=2 (%d/%d)" % (rep["direct_handoffs"], rep["handoffs"]))
    return [lb, again] + more


def worker_tests(d):
    parent, child = seqpacket_pair()
    dc, dc_port = h.start_fake_dc(expect_dc=3)
    w = LoggedProc([h.WORKER, "--control-fd", str(child.fileno()), "--secret", h.SIMPLE_SECRET,
                    "--log-level", "info"] + h.dc_flags(dc_port), [child.fileno()], "worker",
                   os.path.join(d, "worker.log"))
    child.close()
    listen = socket.socket()  # "the gate's" listener for hand_over
    listen.bind(("127.0.0.1", 0))
    listen.listen(16)
    parent.settimeout(10)
    try:
        rep = worker_report(parent)
        h.check(rep["seq"] == 1 and rep["handoffs"] == 0, "worker: ready")

        l1 = lane_handoff(parent, listen)
        lane_not_control(parent, listen, w, l1)
        others = lane_garbage_and_cap(parent, listen, w)
        # Drain closes every lane.
        parent.shutdown(socket.SHUT_WR)
        h.check(all(is_eof(x) for x in [l1] + others), "drain: every lane closes")
        code = w.wait(30)
        h.check(code == 0, "drain: worker exits 0 (%s)" % code)
        for x in [l1] + others:
            x.close()
    finally:
        if h.FAILURES:
            print("---- worker log\n" + w.log()[-6000:], flush=True)
        h.cleanup(w, dc)
        listen.close()
        parent.close()



def main():
    d = h.tmpdir()
    try:
        worker_tests(d)
    finally:
        h.cleanup(dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
