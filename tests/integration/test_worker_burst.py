#!/usr/bin/python3
"""A burst of relayed connections opened together, held, closed together,
twice, then clients still relay intact bytes: the worker returns a burst's
memory when its connections close (conn/memory_return.h: buffer pool,
malloc_trim, and the Asio reactor records of closed sockets, freed on the
tick after; under ASan a record freed while still in use is an error).
Byte accounting stays exact: the counters equal the payload the clients
sent and got back. Memory figures themselves: bench/burst_bench.sh (ASan's
allocator does not return memory the way glibc's does)."""

import os
import socket
import time

import harness as h

BURST = 300
PAYLOAD = 4096


def open_relayed(port):
    """One client past the handshake with one verified echo; returns (sock, bytes)."""
    c = h.Obfs2Client(h.SIMPLE_SECRET)
    s = h.connect(port)
    s.sendall(c.init)
    data = os.urandom(PAYLOAD)
    s.sendall(c.seal(data))
    back = c.open(h.recv_exact(s, PAYLOAD))
    h.check(back == data, "echo intact through a burst connection")
    return s


def burst(port, stats, closed_before):
    socks = []
    try:
        for _ in range(BURST):
            socks.append(open_relayed(port))
        s = h.wait_stats(stats, lambda s: s["active"] == BURST)
        h.check(s["active"] == BURST, "%d connections held at once (%s)" % (BURST, s["active"]))
    finally:
        for s in socks:
            s.close()
    s = h.wait_stats(stats, lambda s: s["active"] == 0 and s["closed"] >= closed_before + BURST)
    h.check(s["active"] == 0, "every burst connection closed")
    return s["closed"]


def main():
    d = h.tmpdir()
    stats = os.path.join(d, "stats.json")
    dc, dc_port = h.start_fake_dc()
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                               "--stats-file", stats, "--log-level", "warn"]
                              + h.dc_flags(dc_port))
    try:
        port = ports[0]
        closed = burst(port, stats, 0)
        # The return marks the reactor records on the tick that sees no
        # connection and frees them on the next (250 ms apart).
        time.sleep(1.0)
        closed = burst(port, stats, closed)
        time.sleep(1.0)
        h.check(h.echo_session(port, h.SIMPLE_SECRET, total=1024 * 1024),
                "a 1 MiB transfer after the bursts comes back intact")
        total = (2 * BURST) * PAYLOAD + 1024 * 1024
        s = h.wait_stats(stats, lambda s: s["active"] == 0 and s["bytes_dc_to_client"] >= total)
        h.check(s["bytes_client_to_dc"] == total,
                "client->DC bytes counted exactly (%d, sent %d)" % (s["bytes_client_to_dc"], total))
        h.check(s["bytes_dc_to_client"] == total,
                "DC->client bytes counted exactly (%d, echoed %d)" % (s["bytes_dc_to_client"], total))
        h.check(w.p.poll() is None, "worker still running")
        w.signal(15)
        h.check(w.wait(30) == 0, "worker exits 0")
    finally:
        h.cleanup(w, dc, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
