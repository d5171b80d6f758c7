#!/usr/bin/python3
"""The worker's egress on loopback (--egress-file, docs/worker.md "Egress"),
with real microsocks instances as SOCKS5 upstreams:

- bad upstreams: one answers garbage (an HTTP error), one accepts and never
  answers, one refuses: each client connection fails over to microsocks, and
  each failure is logged with its reason;
- weights: with 3:1 the first choice splits new connections within
  statistical bounds;
- health checks: a killed microsocks is marked down within the health
  interval without any client traffic, new connections all go to the other
  one, and it comes back up once it listens again;
- live egress (managed worker, control message 15 from
  tests/integration/control_codec.py): a worker started direct takes
  microsocks for new connections, a transfer through it continues while
  the egress is replaced, a bad egress file is rejected and the previous
  one kept, an upstream marked down makes the worker send a report unasked,
  and an empty list goes direct again.

Everything stays on 127.0.0.1; no root needed.
"""

import os
import shutil
import socket
import subprocess
import threading
import time

import control_codec as cc
import harness as h

SECRET = h.SIMPLE_SECRET


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_microsocks(port):
    p = subprocess.Popen(["microsocks", "-i", "127.0.0.1", "-p", str(port)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        r = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True, text=True)
        if r.stdout.strip():
            return p
        time.sleep(0.05)
    raise RuntimeError("microsocks did not listen on %d" % port)


class BadServer(threading.Thread):
    """A listener that answers every connection with `answer` (None: never answers)."""

    def __init__(self, answer):
        super().__init__(daemon=True)
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.answer is None:
                self.held.append(c)  # stalls: open, silent
                continue
            try:
                c.recv(64)
                c.sendall(self.answer)
            except OSError:
                pass
            c.close()


def egress_text(policy, ups):
    line = "policy " + " ".join("%s=%s" % kv for kv in policy.items())
    out = [line]
    for name, port, weight in ups:
        out.append("upstream name=%s type=socks5 address=127.0.0.1:%d weight=%d" % (name, port, weight))
    return "\n".join(out) + "\n"


def start_worker(d, tag, egress, extra=()):
    path = os.path.join(d, "egress-%s.txt" % tag)
    with open(path, "w") as f:
        f.write(egress)
    stats = os.path.join(d, "stats-%s.json" % tag)
    err = open(os.path.join(d, "worker-%s.log" % tag), "w")
    argv = [h.WORKER, "--bind", "127.0.0.1:0", "--secret", SECRET, "--egress-file", path,
            "--stats-file", stats] + list(extra)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True)
    line = p.stdout.readline()
    port = int(line.rsplit(":", 1)[1])
    return p, port, stats, os.path.join(d, "worker-%s.log" % tag)


def ups(stats):
    return {u["name"]: u for u in h.read_stats(stats).get("upstreams", [])}


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def send_egress(ctl, generation, text):
    fd = os.memfd_create("egress")
    try:
        os.write(fd, text.encode())
        cc.send(ctl, cc.egress(generation), fd)
    finally:
        os.close(fd)


def live_egress(d, dcs, m1_port):
    """A managed worker with a listener of its own, started without upstreams."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stats = os.path.join(d, "stats-live.json")
    log = os.path.join(d, "worker-live.log")
    err = open(log, "w")
    w = subprocess.Popen([h.WORKER, "--bind", "127.0.0.1:0", "--secret", SECRET, "--control-fd",
                          str(child.fileno()), "--stats-file", stats] + dcs,
                         stdout=subprocess.PIPE, stderr=err, text=True, pass_fds=[child.fileno()])
    child.close()
    port = int(w.stdout.readline().rsplit(":", 1)[1])
    try:
        h.check(h.echo_session(port, SECRET, total=16 * 1024), "live: direct before any egress")
        policy = {"health_interval_ms": 0, "health_dc": 32770, "failures": 1,
                  "retry_min_ms": 60000, "retry_max_ms": 60000, "fallback_direct": 0}
        send_egress(parent, 1, egress_text(policy, [("micro", m1_port, 1)]))
        deadline = time.time() + 5
        while time.time() < deadline and "egress applied generation=1" not in read(log):
            time.sleep(0.05)
        h.check("egress applied generation=1" in read(log), "live: the worker applied egress generation 1")
        result = {}
        t = threading.Thread(target=lambda: result.update(ok=h.echo_session(
            port, SECRET, total=2 * 1024 * 1024, chunk=16384, pause=0.01)))
        t.start()
        s = h.wait_stats(stats, lambda s: {x["name"]: x for x in s.get("upstreams", [])}
                         .get("micro", {}).get("connects", 0) >= 1)
        h.check({x["name"]: x for x in (s or {}).get("upstreams", [])}.get("micro", {}).get("connects") == 1,
                "live: the new connection went through microsocks")
        send_egress(parent, 2, "policy nonsense=1\n")
        dead_port = free_port()
        send_egress(parent, 3, egress_text(policy, [("dead", dead_port, 1)]))
        # The dead upstream fails the next connection and is marked down: a
        # report comes unasked.
        h.check(not h.echo_session(port, SECRET, total=1024), "live: a new connection fails through the dead upstream")
        rep = None
        deadline = time.time() + 5
        while time.time() < deadline and rep is None:
            try:
                data, _ = cc.recv(parent, timeout=1)
            except socket.timeout:
                continue
            mtype, body = cc.decode(data)
            if mtype == cc.REPORT and any(u["name"] == "dead" and not u["up"] for u in body["upstreams"]):
                rep = body
        h.check(rep is not None, "live: the worker reported the dead upstream down without being asked")
        t.join(60)
        h.check(result.get("ok") is True, "live: the transfer through microsocks continued across two changes")
        text = read(log)
        h.check("egress rejected generation=2" in text and "kept=previous" in text,
                "live: a bad egress is rejected, the previous kept")
        send_egress(parent, 4, egress_text(policy, []))
        deadline = time.time() + 5
        while time.time() < deadline and "egress applied generation=4" not in read(log):
            time.sleep(0.05)
        h.check(h.echo_session(port, SECRET, total=16 * 1024), "live: an empty egress goes direct again")
    finally:
        parent.close()  # the worker drains and exits
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
        err.close()


def main():
    if not shutil.which("microsocks"):
        h.check(False, "microsocks installed (scripts/deps.sh --test)")
        h.finish()
    d = h.tmpdir()
    dc, dc_port = h.start_fake_dc("echo")
    procs = []
    try:
        dcs = []
        for n in range(1, 6):
            dcs += ["--dc", "%d=127.0.0.1:%d" % (n, dc_port)]

        # 1. Garbage, stall, refused: failover to microsocks with reasons.
        m1_port = free_port()
        m1 = start_microsocks(m1_port)
        procs.append(m1)
        garbage = BadServer(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        stall = BadServer(None)
        dead_port = free_port()
        policy = {"health_interval_ms": 0, "health_dc": 32770, "failures": 1,
                  "retry_min_ms": 60000, "retry_max_ms": 60000, "fallback_direct": 0}
        w, port, stats, log = start_worker(d, "bad", egress_text(policy, [
            ("garbage", garbage.port, 1000), ("stall", stall.port, 1000), ("dead", dead_port, 1000),
            ("micro", m1_port, 1)]), dcs + ["--dc-connect-timeout", "1"])
        procs.append(w)
        h.check(h.echo_session(port, SECRET, total=64 * 1024), "client relays through microsocks after three bad upstreams")
        h.check(h.echo_session(port, SECRET, total=16 * 1024), "the next client goes straight to microsocks")
        # The stats file is rewritten each second: wait for the counts to land
        # (a connection's bytes count once its session has ended, a moment
        # after the client saw its last echo).
        s = h.wait_stats(stats, lambda s: sum(x["connects"] + x["marked_down"]
                                              for x in s.get("upstreams", [])) >= 5
                         and sum(x["bytes_up"] for x in s.get("upstreams", [])) >= 80 * 1024)
        u = {x["name"]: x for x in s.get("upstreams", [])}
        h.check(all(u[n]["up"] is False and u[n]["marked_down"] == 1 for n in ("garbage", "stall", "dead")),
                "garbage, stall and dead are marked down (%s)" % u)
        h.check(u["micro"]["connects"] == 2 and u["micro"]["up"] is True, "micro carried both (%s)" % u["micro"])
        h.check(u["micro"]["bytes_up"] >= 80 * 1024 and u["micro"]["bytes_down"] >= 80 * 1024,
                "micro's byte counters (%d up, %d down)" % (u["micro"]["bytes_up"], u["micro"]["bytes_down"]))
        w.terminate()
        w.wait(30)
        text = read(log)
        h.check('upstream failed upstream=garbage dc=2 error="socks5 method reply: version byte 72"' in text,
                "garbage logged as not SOCKS")
        h.check('upstream failed upstream=stall dc=2 error="timeout"' in text, "stall logged as timeout")
        h.check('upstream failed upstream=dead dc=2 error="connect 127.0.0.1:%d: Connection refused"' % dead_port
                in text, "dead logged as refused")

        # 2. Weights 3:1 and health checks.
        m2_port = free_port()
        m2 = start_microsocks(m2_port)
        procs.append(m2)
        policy = {"health_interval_ms": 300, "health_dc": 32770, "failures": 1,
                  "retry_min_ms": 500, "retry_max_ms": 1000, "fallback_direct": 0}
        w, port, stats, log = start_worker(d, "health", egress_text(policy, [
            ("m1", m1_port, 3), ("m2", m2_port, 1)]), dcs)
        procs.append(w)
        n = 60
        ok = sum(1 for _ in range(n) if h.echo_session(port, SECRET, total=1024))
        h.check(ok == n, "%d of %d connections through m1/m2" % (ok, n))
        s = h.wait_stats(stats, lambda s: sum(x["connects"] for x in s.get("upstreams", [])) >= n)
        u = {x["name"]: x for x in s.get("upstreams", [])}
        c1 = u["m1"]["connects"]
        # Expected 45 of 60; sigma = sqrt(60 * 0.75 * 0.25) = 3.35; 4 sigma either way.
        h.check(abs(c1 - 45) <= 13.4 and c1 + u["m2"]["connects"] == n,
                "weights 3:1: m1 took %d of %d (expected 45 +- 13)" % (c1, n))
        h.check(u["m1"]["health_ok"] > 0 and u["m2"]["health_ok"] > 0, "health checks pass on both")

        m1.terminate()
        m1.wait(10)
        t0 = time.time()
        s = h.wait_stats(stats, lambda s: {x["name"]: x for x in s["upstreams"]}["m1"]["up"] is False, timeout=5)
        took = time.time() - t0
        u = {x["name"]: x for x in s["upstreams"]}
        h.check(u["m1"]["up"] is False and u["m1"]["health_failed"] >= 1 and took < 2.5,
                "killed m1 marked down by a health check in %.2f s (interval 0.3 s)" % took)
        before = u["m2"]["connects"]
        ok = sum(1 for _ in range(10) if h.echo_session(port, SECRET, total=1024))
        s = h.wait_stats(stats, lambda s: {x["name"]: x for x in s["upstreams"]}["m2"]["connects"] >= before + 10)
        u = {x["name"]: x for x in s["upstreams"]}
        h.check(ok == 10 and u["m2"]["connects"] == before + 10 and u["m1"]["failures"] == u["m1"]["health_failed"],
                "all 10 new connections went to m2, none tried the down m1 (%s)" % u)
        m1 = start_microsocks(m1_port)
        procs.append(m1)
        s = h.wait_stats(stats, lambda s: {x["name"]: x for x in s["upstreams"]}["m1"]["up"] is True, timeout=5)
        h.check({x["name"]: x for x in s["upstreams"]}["m1"]["up"] is True,
                "m1 is up again after it listens again (retry back-off <= 1 s)")
        text = read(log)
        h.check("upstream marked down upstream=m1" in text and "upstream up again upstream=m1" in text,
                "the worker logs m1 going down and coming back")

        # 3. Live egress over the control socket.
        live_egress(d, dcs, m1_port)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        dc.stop()
        shutil.rmtree(d, ignore_errors=True)
    h.finish()


if __name__ == "__main__":
    main()
