#!/usr/bin/python3
"""Real peers through the worker: telethon (abridged, intermediate,
randomized intermediate) and mtcute (fake TLS, verifies our ServerHello HMAC),
with fast mode on and off. Packets of many sizes must echo intact and the
fake DC must have seen the DC index each client asked for."""

import json
import os
import subprocess

import harness as h

SIZES = "4,8,12,16,60,64,252,256,508,512,1020,1024,4096,16380,16384,65536,262144"
TLS_SIZES = "8,12,16,60,64,252,512,1024,2808,2812,2876,2880,4096,16380,16384,65536,262144"


def run_peer(argv, what):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        h.check(False, what + ": peer timed out")
        return None
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "{}"
    try:
        res = json.loads(line)
    except ValueError:
        res = {}
    h.check(r.returncode == 0 and res.get("ok") is True,
            "%s: echo intact (%s)" % (what, line[:300] if r.returncode else "packets=%s" % res.get("packets")))
    if r.returncode != 0 and r.stderr:
        print(r.stderr[-2000:], flush=True)
    return res


def last_record(path):
    with open(path) as f:
        lines = f.read().splitlines()
    return lines[-1] if lines else ""


def telethon_runs(port, record, fast):
    peer = os.path.join(h.peers_dir(), "telethon_echo.py")
    cases = [("abridged", h.SIMPLE_SECRET, 2), ("intermediate", h.SIMPLE_SECRET, 4),
             ("randomized", "dd" + h.SIMPLE_SECRET, -3)]
    for mode, secret, dc in cases:
        what = "telethon %s fast=%s dc=%d" % (mode, fast, dc)
        run_peer(["/usr/bin/python3", peer, "--host", "127.0.0.1", "--port", str(port),
                  "--secret", secret, "--mode", mode, "--dc", str(dc), "--sizes", SIZES,
                  "--fast-aes", "--timeout", "60"], what)
        h.check(last_record(record).startswith("dc=%d " % dc) and last_record(record).split()[2:3] == ["ok"],
                what + ": fake DC saw dc index (%s)" % last_record(record))


def mtcute_run(port, record, fast):
    peer = os.path.join(h.peers_dir(), "mtcute_echo.mjs")
    if not os.path.isdir(os.path.join(h.peers_dir(), "node_modules", "@mtcute")):
        h.check(False, "mtcute installed (cd tests/peers && npm ci --ignore-scripts)")
        return
    what = "mtcute fake-tls fast=%s" % fast
    run_peer(["node", peer, "--host", "127.0.0.1", "--port", str(port), "--secret", h.TLS_SECRET,
              "--dc", "5", "--sizes", TLS_SIZES, "--timeout", "60"], what)
    h.check(last_record(record).startswith("dc=5 "), what + ": fake DC saw dc 5")


def main():
    d = h.tmpdir()
    record = os.path.join(d, "dc.log")
    dc, dc_port = h.start_fake_dc(record=record)
    workers = []
    try:
        for fast in ("on", "off"):
            stats = os.path.join(d, "stats-%s.json" % fast)
            w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                                       "--secret", h.TLS_SECRET, "--fast-mode", fast,
                                       "--stats-file", stats, "--log-level", "warn"]
                                      + h.dc_flags(dc_port))
            workers.append(w)
            telethon_runs(ports[0], record, fast)
            mtcute_run(ports[0], record, fast)
            s = h.wait_stats(stats, lambda s: s["active"] == 0 and s["closed"] >= 4)
            h.check(s["handshake_ok"] == 4 and s["fail_bad_hmac"] + s["fail_unknown_tag"] + s["fail_not_mtproxy"] == 0,
                    "fast=%s: 4 handshakes, no failures (%s)" % (fast, json.dumps(s)))
            h.check(s["bytes_client_to_dc"] > 1000000 and s["bytes_dc_to_client"] > 1000000,
                    "fast=%s: bytes counted both ways" % fast)
            w.signal(15)
            h.check(w.wait(30) == 0, "fast=%s: worker exits 0 on SIGTERM" % fast)
    finally:
        h.cleanup(dc, *workers, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
