#!/usr/bin/python3
"""Fake-TLS handshake rate and latency of mtwarden-worker builds, measured in
the same run so the figures compare (docs/masking.md "Answer timing").

    bench/handshake_bench.py BIN [BIN ...] [--duration S] [--procs N] [--reps R]

Each BIN (an mtwarden-worker) runs stand-alone on 127.0.0.1 with one fake-TLS
secret. N client processes each open a connection, send a ClientHello with
the secret's HMAC, read ServerHello, CCS and the AppData record, check the
HMAC and close, as fast as they can for S seconds. Rounds alternate between
the binaries R times (so load from elsewhere on the host hits them alike);
the best round per binary is kept. Prints one JSON line per round and a
table: handshakes per second, latency p50/p90/p99 (ms), and the host's load
average.

    bench/handshake_bench.py BIN --window-entries N [--procs N]

measures the replay cache's effective window under load instead: the
worker runs with --replay-entries N, the clients keep it busy, and one
hello accepted at the start is replayed every 0.25 s until it is accepted
again (its entry fell out). Prints the window, the handshake rate meanwhile
and entries / rate, which it should match. A stand-alone worker has no measured mask profile, so no answer
delay applies: this measures the cost of the answer, not its timing.
"""

import argparse
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import socket
import struct
import subprocess
import sys
import time

SECRET = "ee" + "0123456789abcdef0123456789abcdef" + b"bench.test".hex()


def hello(secret_hex, sni="bench.test"):
    key = bytes.fromhex(secret_hex)[1:17]
    name = sni.encode()
    ext = struct.pack(">HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    ext += struct.pack(">HHB", 0x2B, 3, 2) + b"\x03\x04"
    ext += struct.pack(">HHHHH", 0x33, 38, 36, 0x1D, 32) + os.urandom(32)
    suites = b"\x13\x01\x13\x02\x13\x03"
    body = b"\x03\x03" + b"\0" * 32 + b"\x20" + os.urandom(32) + struct.pack(">H", 6) + suites
    body += b"\x01\x00"
    pad = max(0, 517 - (5 + 4 + len(body) + 2 + len(ext)) - 4)
    ext += struct.pack(">HH", 0x15, pad) + b"\0" * pad
    body += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(body))[1:] + body
    rec = bytearray(b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs)
    d = hmac.new(key, bytes(rec), hashlib.sha256).digest()
    ts = struct.pack("<I", int(time.time()) & 0xFFFFFFFF)
    rec[11:43] = d[:28] + bytes(a ^ b for a, b in zip(d[28:], ts))
    return bytes(rec), key


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        c = s.recv(n - len(out))
        if not c:
            raise ConnectionError("closed")
        out += c
    return out


def exchange(port, h, timeout):
    """Sends hello `h`; the ServerHello, CCS and AppData records as received."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(h)
        ans = b""
        for _ in range(3):
            head = recv_exact(s, 5)
            ans += head + recv_exact(s, int.from_bytes(head[3:5], "big"))
        return ans
    finally:
        s.close()


def verified(h, key, ans):
    """The answer's HMAC (over the hello's random and the zeroed answer) holds."""
    zeroed = ans[:11] + b"\0" * 32 + ans[43:]
    return hmac.new(key, h[11:43] + zeroed, hashlib.sha256).digest() == ans[11:43]


def client(port, until, q):
    lat, bad = [], 0
    while time.monotonic() < until:
        h, key = hello(SECRET)
        t0 = time.monotonic()
        try:
            ans = exchange(port, h, 5)
        except OSError:
            bad += 1
            continue
        lat.append(time.monotonic() - t0)
        if not verified(h, key, ans):
            bad += 1
    q.put((lat, bad))


def start_worker(binary, entries=1048576):
    p = subprocess.Popen([binary, "--bind", "127.0.0.1:0", "--secret", SECRET, "--stats-interval",
                          "0", "--log-level", "error", "--mask-discard-timeout", "1",
                          "--replay-entries", str(entries)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in p.stdout:
        if line.startswith("listening "):
            return p, int(line.split(":")[-1])
    raise RuntimeError("%s did not start" % binary)


def one_round(binary, duration, procs):
    w, port = start_worker(binary)
    try:
        time.sleep(0.3)
        q = mp.Queue()
        until = time.monotonic() + duration
        ps = [mp.Process(target=client, args=(port, until, q)) for _ in range(procs)]
        [p.start() for p in ps]
        res = [q.get() for _ in ps]
        [p.join() for p in ps]
    finally:
        w.terminate()
        w.wait()
    lat = sorted(x for r in res for x in r[0])
    bad = sum(r[1] for r in res)

    def pct(f):
        return lat[min(len(lat) - 1, int(f * len(lat)))] * 1e3 if lat else 0.0
    return {"binary": binary, "handshakes": len(lat), "failed": bad,
            "rate_per_s": len(lat) / duration, "p50_ms": pct(.5), "p90_ms": pct(.9),
            "p99_ms": pct(.99), "loadavg": os.getloadavg()[0]}


def answered(port, h, key, timeout=0.5):
    """True when `h` gets a fake-TLS answer (not a replay)."""
    try:
        ans = exchange(port, h, timeout)
    except OSError:
        return False
    return verified(h, key, ans)


def window(binary, entries, procs, limit=600):
    w, port = start_worker(binary, entries)
    try:
        time.sleep(0.3)
        h, key = hello(SECRET)
        assert answered(port, h, key, 5), "the first hello is accepted"
        t0 = time.monotonic()
        q = mp.Queue()
        until = t0 + limit
        ps = [mp.Process(target=client, args=(port, until, q)) for _ in range(procs)]
        [p.start() for p in ps]
        took = None
        while time.monotonic() < until:
            time.sleep(0.25)
            if answered(port, h, key):
                took = time.monotonic() - t0
                break
        [p.terminate() for p in ps]
        [p.join() for p in ps]
    finally:
        w.terminate()
        w.wait()
    return took


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--window-entries", type=int, default=0)
    a = ap.parse_args()
    if a.window_entries:
        # The rate under the same load, measured first, then the window.
        rate = one_round(a.binaries[0], a.duration, a.procs)["rate_per_s"]
        took = window(a.binaries[0], a.window_entries, a.procs)
        print("| entries | handshakes/s | window measured s | entries / rate s | load avg |")
        print("|---|---|---|---|---|")
        print("| %d | %.0f | %s | %.1f | %.1f |" % (
            a.window_entries, rate, "%.1f" % took if took else "> limit",
            a.window_entries / rate if rate else 0, os.getloadavg()[0]))
        return
    best = {}
    for _ in range(a.reps):
        for b in a.binaries:
            r = one_round(b, a.duration, a.procs)
            print(json.dumps(r), file=sys.stderr, flush=True)
            if b not in best or r["rate_per_s"] > best[b]["rate_per_s"]:
                best[b] = r
    base = best[a.binaries[0]]["rate_per_s"] or 1
    print("| binary | handshakes/s | vs first | p50 ms | p90 ms | p99 ms | failed | load avg |")
    print("|---|---|---|---|---|---|---|---|")
    for b in a.binaries:
        r = best[b]
        print("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %.1f |" % (
            b, r["rate_per_s"], r["rate_per_s"] / base, r["p50_ms"], r["p90_ms"], r["p99_ms"],
            r["failed"], r["loadavg"]))


if __name__ == "__main__":
    main()
