#!/usr/bin/python3
"""mtwarden-webfront in managed mode, with this script playing the
supervisor (control_codec.py, written from docs/worker-control.md): the
front gets its users in a gate-table memfd, and hands every WEB stream over
as a gate-handoff carrying one end of a socketpair; the script forwards each
to the user's own managed mtwarden-worker as a plain handoff, as the
supervisor does with the gate's. Checks:

 1. until the first gate-table no capability is known (decoy); after it and
    a report-request, the report arrives and the bridge page is served;
 2. streams of two users (plain and dd) reach their own worker, echo through
    the fake DC byte-exact, and are counted in that worker's report
    (handoffs, handshake_ok, bytes both ways): WEB streams are ordinary
    client connections of the user;
 3. each gate-handoff names the user and the browser's address;
 4. a stream whose inner handshake uses another user's secret is refused by
    that worker (the app gets CLOSE), the other streams go on;
 5. a new gate-table without a user: that user's capability gets the decoy;
 6. closing the control socket stops the front (exit 0).
"""

import os
import socket
import threading
import time

import control_codec as cc
import harness as h
import webproxy_client as wp

WEBFRONT = os.environ.get("MTW_WEBFRONT", "build/asan/webfront/mtwarden-webfront")
HOST = wp.HOST
DD_SECRET = "dd" + h.OTHER_SECRET
PLAIN_USER, DD_USER = 7, 9


def memfd(text):
    fd = os.memfd_create("table")
    os.write(fd, text.encode())
    return fd


def send_table(ctl, generation, text):
    fd = memfd(text)
    cc.send(ctl, cc.gate_table(generation), fd)
    os.close(fd)


def request_report(ctl):
    cc.send(ctl, cc.report_request())
    while True:
        data, fds = cc.recv(ctl, timeout=10)
        for fd in fds:
            os.close(fd)
        mtype, body = cc.decode(data)
        if mtype == cc.REPORT:
            return body


class Supervisor:
    """Forwards the front's gate-handoffs to the users' workers."""

    def __init__(self, front_ctl, workers):
        self.front_ctl = front_ctl
        self.workers = workers  # user -> control socket
        self.handoffs = []
        self.reports = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data, fds = cc.recv(self.front_ctl, timeout=0.2)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data and not fds:
                return
            mtype, body = cc.decode(data)
            if mtype == cc.REPORT:
                with self.lock:
                    self.reports.append(body)
                continue
            if mtype != cc.GATE_HANDOFF:
                continue
            with self.lock:
                self.handoffs.append(body)
            sock = self.workers.get(body["user"])
            if sock is not None:
                cc.send(sock, cc.handoff(body["listener_id"], body["peer"], body["data"]), fds[0])
            for fd in fds:
                os.close(fd)

    def report(self):
        n = len(self.reports)
        cc.send(self.front_ctl, cc.report_request())
        deadline = time.time() + 10
        while time.time() < deadline:
            with self.lock:
                if len(self.reports) > n:
                    return self.reports[-1]
            time.sleep(0.05)
        raise RuntimeError("no report from the front")


def worker_report(ctl):
    cc.send(ctl, cc.report_request())
    data, _ = cc.recv(ctl, timeout=10)
    return cc.decode(data)[1]


def main():
    work = h.tmpdir()
    cert, key = wp.make_cert(work, "live", HOST)
    dc, dc_port = h.start_fake_dc()
    workers, procs, ctls = {}, [], {}
    for user, secret in ((PLAIN_USER, h.SIMPLE_SECRET), (DD_USER, DD_SECRET)):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        w, _ = h.start_worker(["--control-fd", str(child.fileno()), "--secret", secret,
                               "--mask-discard-timeout", "1",
                               "--log-level", "warn"] + h.dc_flags(dc_port),
                              pass_fds=[child.fileno()], expect_listen=0)
        child.close()
        procs.append(w)
        workers[user] = parent
    front_parent, front_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    front = h.Proc([WEBFRONT, "--listen-fd", str(lsock.fileno()), "--control-fd",
                    str(front_child.fileno()), "--listener-id", "3", "--cert", cert, "--key", key,
                    "--host", HOST, "--log-level", "info"],
                   pass_fds=(lsock.fileno(), front_child.fileno()), name="webfront")
    front_child.close()
    sup = None
    try:
        # 1. No table yet: the decoy; then the table and the report.
        cap = "/?bridge=" + wp.capability(h.SIMPLE_SECRET, HOST)
        deadline = time.time() + 20
        while True:
            try:
                before = wp.http_get(port, HOST, cap)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        h.check(before[0] == 200 and b"TelegramWebProxy" not in before[2],
                "before the first gate-table every capability gets the decoy")
        send_table(front_parent, 1, "# users\n%d %s\n%d %s\n" % (PLAIN_USER, h.SIMPLE_SECRET,
                                                                 DD_USER, DD_SECRET))
        rep = request_report(front_parent)
        h.check(rep["seq"] == 1, "the front answers report-request (seq 1)")
        sup = Supervisor(front_parent, workers)

        # 2, 3. Streams of two users, each through its own worker.
        carrier, _ = wp.open_carrier(port, h.SIMPLE_SECRET)
        h.check(carrier is not None and carrier.upgraded, "plain user: carrier open")
        app = wp.App(carrier)
        for sid in (101, 102):
            app.open(sid, h.SIMPLE_SECRET, b"\xef" * 4)
        ok = all(app.echo(sid, os.urandom(50000 + sid)) for sid in (101, 102))
        h.check(ok, "plain user: two streams echo through the user's worker")
        dd_carrier, _ = wp.open_carrier(port, DD_SECRET)
        dd_app = wp.App(dd_carrier)
        dd_app.open(201, DD_SECRET, b"\xdd" * 4)
        h.check(dd_app.echo(201, os.urandom(70000)), "dd user: stream echoes through its worker")
        total = 0
        while total < 5 * 1024 * 1024:
            if not app.echo(101, os.urandom(262144)):
                break
            total += 262144
        h.check(total >= 5 * 1024 * 1024, "5 MiB each way through a handed-over stream")

        with sup.lock:
            users = sorted(hd["user"] for hd in sup.handoffs)
            peers = {hd["peer"][0] if hd["peer"] else None for hd in sup.handoffs}
            listeners = {hd["listener_id"] for hd in sup.handoffs}
        h.check(users == [PLAIN_USER, PLAIN_USER, DD_USER],
                "one gate-handoff per stream, with its user (%s)" % users)
        h.check(peers == {"127.0.0.1"}, "gate-handoffs carry the browser's address (%s)" % peers)
        h.check(listeners == {3}, "gate-handoffs carry --listener-id")
        plain = worker_report(workers[PLAIN_USER])
        h.check(plain["handoffs"] == 2 and plain["handshake_ok"] == 2,
                "the plain user's worker counts both streams (%s)" % plain)
        h.check(plain["bytes_client_to_dc"] >= 5 * 1024 * 1024 + 100000 and
                plain["bytes_dc_to_client"] == plain["bytes_client_to_dc"],
                "the user's worker counts the stream bytes both ways")
        dd = worker_report(workers[DD_USER])
        h.check(dd["handoffs"] == 1 and dd["bytes_client_to_dc"] == 70000,
                "the dd user's worker counts its stream")

        # 4. A stream keyed with another user's secret: that worker refuses it.
        app.open(103, h.OTHER_SECRET, b"\xef" * 4)
        app.send_raw(103, app.streams[103]["obfs"].seal(os.urandom(64)))
        deadline = time.time() + 30
        while not app.streams[103]["closed"] and time.time() < deadline:
            app.pump()
        h.check(app.streams[103]["closed"], "a stream with a foreign secret gets CLOSE")
        h.check(app.echo(102, os.urandom(3000)), "the session's other streams go on")

        front_rep = sup.report()
        h.check(front_rep["handoffs"] == 4, "the front's report counts its gate-handoffs (%s)"
                % front_rep["handoffs"])

        # 5. A table without the dd user.
        send_table(front_parent, 2, "%d %s\n" % (PLAIN_USER, h.SIMPLE_SECRET))
        sup.report()
        st, _, body = wp.http_get(port, HOST, "/?bridge=" + wp.capability(DD_SECRET, HOST))
        h.check(st == 200 and b"TelegramWebProxy" not in body, "a removed user's capability: decoy")
        st, _, body = wp.http_get(port, HOST, cap)
        h.check(b"TelegramWebProxy" in body, "the remaining user's bridge page still served")
        carrier.close()
        dd_carrier.close()

        # 6. The supervisor goes away.
        sup.stop = True
        sup.t.join(5)
        front_parent.shutdown(socket.SHUT_RDWR)
        h.check(front.wait(15) == 0, "closing the control socket stops the front (exit 0)")
    finally:
        if sup:
            sup.stop = True
        h.cleanup(front, *procs, dc, dirs=(work,))
        front_parent.close()
        for s in workers.values():
            s.close()
    h.finish()


if __name__ == "__main__":
    main()
