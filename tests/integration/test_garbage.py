#!/usr/bin/python3
"""10,000 garbage connections (loopback, at most 200 at a time), then a normal
client still works; the worker did not crash and holds no more fds than
before (counted in /proc/PID/fd)."""

import asyncio
import os

import harness as h

TOTAL = 10000
PARALLEL = 200


async def one_garbage(port, sem):
    async with sem:
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(os.urandom(64 + (os.urandom(1)[0] % 200)))
            await w.drain()
            w.close()
            await w.wait_closed()
        except OSError:
            return False
        return True


async def flood(port):
    sem = asyncio.Semaphore(PARALLEL)
    results = await asyncio.gather(*(one_garbage(port, sem) for _ in range(TOTAL)))
    return sum(1 for r in results if r)


def main():
    d = h.tmpdir()
    stats = os.path.join(d, "stats.json")
    dc, dc_port = h.start_fake_dc()
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                               "--mask-discard-timeout", "30", "--stats-file", stats,
                               "--log-level", "warn"] + h.dc_flags(dc_port))
    try:
        port = ports[0]
        h.check(h.echo_session(port, h.SIMPLE_SECRET, total=64 * 1024), "client works before the flood")
        h.wait_stats(stats, lambda s: s["active"] == 0 and s["closed"] >= 1)
        fds_before = h.count_fds(w.pid)
        ok = asyncio.run(flood(port))
        h.check(ok == TOTAL, "all %d garbage connections were accepted (%d)" % (TOTAL, ok))
        s = h.wait_stats(stats, lambda s: s["active"] == 0 and s["accepted"] >= TOTAL + 1, timeout=60)
        h.check(s["active"] == 0, "every garbage connection closed (%s)" % s)
        h.check(s["masked"] >= TOTAL, "every garbage connection counted as masked/discarded")
        h.check(w.p.poll() is None, "worker still running")
        h.check(h.echo_session(port, h.SIMPLE_SECRET, total=256 * 1024), "client works after the flood")
        h.wait_stats(stats, lambda s: s["active"] == 0 and s["closed"] >= TOTAL + 2)
        fds_after = h.count_fds(w.pid)
        h.check(fds_after <= fds_before, "no fd leak (before=%d after=%d)" % (fds_before, fds_after))
        w.signal(15)
        h.check(w.wait(30) == 0, "worker exits 0")
    finally:
        h.cleanup(w, dc, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
