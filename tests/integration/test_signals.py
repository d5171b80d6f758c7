#!/usr/bin/python3
"""SIGTERM drains: new connections are refused, an active transfer completes,
then the worker exits 0. SIGHUP re-reads --secrets-file: a new secret works
at once, the active transfer is not dropped, and a bad file keeps the old
secrets."""

import os
import signal
import socket
import threading
import time

import harness as h


def start_transfer(port, secret, total, pause):
    result = {}

    def run():
        result["ok"] = h.echo_session(port, secret, total=total, chunk=8192, pause=pause)

    t = threading.Thread(target=run)
    t.start()
    return t, result


def sighup_case(dc_port, d):
    secrets = os.path.join(d, "secrets.txt")
    with open(secrets, "w") as f:
        f.write("# initial\n%s\n" % h.SIMPLE_SECRET)
    stats = os.path.join(d, "stats-hup.json")
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secrets-file", secrets,
                               "--stats-file", stats, "--mask-discard-timeout", "1", "--log-level", "warn"] + h.dc_flags(dc_port))
    try:
        port = ports[0]
        h.check(not h.echo_session(port, h.OTHER_SECRET, total=1024), "unknown secret fails before reload")
        t, res = start_transfer(port, h.SIMPLE_SECRET, 40 * 8192, 0.05)
        time.sleep(0.5)
        with open(secrets, "w") as f:
            f.write("%s\n%s  # bob\n" % (h.SIMPLE_SECRET, h.OTHER_SECRET))
        w.signal(signal.SIGHUP)
        time.sleep(0.5)
        h.check(h.echo_session(port, h.OTHER_SECRET, total=4096), "secret added by SIGHUP works")
        with open(secrets, "w") as f:
            f.write("this is not a secret\n")
        w.signal(signal.SIGHUP)
        time.sleep(0.5)
        h.check(h.echo_session(port, h.OTHER_SECRET, total=4096), "bad file keeps the old secrets")
        t.join(60)
        h.check(res.get("ok") is True, "active transfer survived SIGHUP intact")
        s = h.wait_stats(stats, lambda s: s["closed"] >= 4)  # the file lags up to 1 s
        h.check(s["closed"] == 4 and s["handshake_ok"] == 3 and s["fail_unknown_tag"] == 1,
                "counters after reloads (%s)" % s)
    finally:
        h.cleanup(w)


def sigterm_case(dc_port, d):
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                               "--drain-timeout", "30", "--log-level", "info"] + h.dc_flags(dc_port))
    try:
        port = ports[0]
        t, res = start_transfer(port, h.SIMPLE_SECRET, 40 * 8192, 0.05)
        time.sleep(0.5)
        w.signal(signal.SIGTERM)
        time.sleep(0.5)
        refused = False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            refused = True
        h.check(refused, "listener closed while draining")
        h.check(w.p.poll() is None, "worker still running while a transfer is active")
        t.join(60)
        h.check(res.get("ok") is True, "active transfer completed during the drain")
        try:
            code = w.wait(15)
        except Exception:
            code = None
        h.check(code == 0, "worker exited 0 after the drain (%s)" % code)
    finally:
        h.cleanup(w)


def drain_deadline_case(dc_port):
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                               "--drain-timeout", "1", "--log-level", "warn"] + h.dc_flags(dc_port))
    try:
        c = h.Obfs2Client(h.SIMPLE_SECRET)
        s = h.connect(ports[0])
        s.sendall(c.init)
        time.sleep(0.3)
        t0 = time.time()
        w.signal(signal.SIGTERM)
        code = w.wait(15)
        h.check(code == 0 and time.time() - t0 < 5, "idle connection cut at the drain deadline, exit 0")
        s.close()
    finally:
        h.cleanup(w)


def main():
    d = h.tmpdir()
    dc, dc_port = h.start_fake_dc()
    try:
        sighup_case(dc_port, d)
        sigterm_case(dc_port, d)
        drain_deadline_case(dc_port)
    finally:
        h.cleanup(dc, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
