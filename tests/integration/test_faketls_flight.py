#!/usr/bin/python3
"""A fake-TLS client's first flight after the ServerHello, whatever its size,
reaches the DC (standalone worker, no sandbox needed).

The client sends its ClientHello, checks the ServerHello and then, in one
write, CCS + the obfuscated2 init + its first data in application-data
records, from 1 byte to 256 KiB of data, around the 17 KiB handshake buffer
in particular; and the same flights sent in the ClientHello's own write,
without waiting for the answer (the handshake then starts with bytes past
the hello). Every connection must get its data echoed and the worker must
count no handshake failure. Before the fix a flight of 17 KiB or more that was
all in the socket when the worker read it filled the handshake buffer in one
read, and the worker took the full buffer for "no init" (fail_bad_tls_init).
The same through the gate, supervisor and workers, under load:
test_supervisor_faketls_burst.py.
"""

import concurrent.futures
import os
import socket

import harness as h

# Flight = 6 (CCS) + records of 64 + size bytes; 17408 is kHandshakeBytes.
SIZES = [1, 1000, 16000, 17000, 17300, 17350, 17400, 17500, 20000, 32768, 65536, 262144]
PER_SIZE = 8


def one(port, size, pipelined=False):
    c = h.FakeTlsClient(h.TLS_SECRET)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        data = os.urandom(size)
        if pipelined:  # the flight in the same write as the ClientHello
            if not c.handshake(s, pipelined=c.first_flight(data)):
                return "no valid ServerHello"
        else:
            if not c.handshake(s):
                return "no valid ServerHello"
            s.sendall(c.first_flight(data))
        return None if c.read_plain(s, size) == data else "echo differs"
    except (OSError, ConnectionError) as e:
        return str(e)
    finally:
        s.close()


def main():
    d = h.tmpdir()
    stats = os.path.join(d, "stats.json")
    dc, dc_port = h.start_fake_dc()
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET,
                               "--stats-file", stats, "--mask-discard-timeout", "1",
                               "--log-level", "warn"] + h.dc_flags(dc_port))
    try:
        jobs = [(size, piped) for piped in (False, True) for size in SIZES for _ in range(PER_SIZE)]
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            results = list(ex.map(lambda j: (j, one(ports[0], *j)), jobs))
        for piped in (False, True):
            for size in SIZES:
                bad = [why for j, why in results if j == (size, piped) and why is not None]
                h.check(not bad, "%d-byte first flight data %s, %d clients: all echoed (%d failed%s)"
                        % (size, "with the ClientHello" if piped else "after the ServerHello",
                           PER_SIZE, len(bad), ", e.g. " + bad[0] if bad else ""))
        s = h.wait_stats(stats, lambda s: s["handshake_ok"] >= len(jobs), timeout=10)
        fails = {k: v for k, v in s.items() if k.startswith("fail_") and v}
        h.check(s["handshake_ok"] == len(jobs) and not fails,
                "worker: %d handshakes ok, no failure (%s)" % (s["handshake_ok"], fails))
    finally:
        h.cleanup(w, dc, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
