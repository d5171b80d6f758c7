#!/usr/bin/python3
"""--flight-segment N (`[mask] flight_segment_bytes`): the fake-TLS answer
leaves in segments of at most N bytes, the relay's data afterwards at full
size (standalone worker on loopback, no sandbox needed).

The client counts the segments with payload it received
(tcp_info.tcpi_data_segs_in): the answer of a worker with N = 200 takes at
least ceil(answer / 200) of them, the same answer without the flag one or
two (loopback's MSS is about 64 KiB); then 256 KiB echoed through the relay
must take far fewer segments than 256 KiB / 200 would. A value outside
64..1400 is refused at start with the flag named.
"""

import math
import os
import socket
import struct
import subprocess

import harness as h

SEGMENT = 200
ECHO = 256 * 1024


def data_segs_in(s):
    """tcp_info.tcpi_data_segs_in: segments with payload received."""
    info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
    return struct.unpack_from("<I", info, 152)[0]


def answer_and_segments(port):
    """(answer bytes, data segments it came in, echo segments, echo intact)."""
    c = h.FakeTlsClient(h.TLS_SECRET)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        hello = h.client_hello(c.secret, sni=bytes.fromhex(c.secret[34:]).decode())
        s.sendall(hello)
        answer = bytearray()
        for want in (0x16, 0x14, 0x17):
            t, body = h.read_tls_record(s)
            if t != want:
                return None
            answer += bytes([t]) + b"\x03\x03" + struct.pack(">H", len(body)) + body
        if not h.verify_server_hello(c.secret, hello, bytes(answer)):
            return None
        segs = data_segs_in(s)
        data = os.urandom(ECHO)
        s.sendall(c.first_flight(data))
        intact = c.read_plain(s, ECHO) == data
        return len(answer), segs, data_segs_in(s) - segs, intact
    finally:
        s.close()


def run(extra):
    dc, dc_port = h.start_fake_dc()
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET,
                               "--log-level", "warn"] + extra + h.dc_flags(dc_port))
    try:
        return [answer_and_segments(ports[0]) for _ in range(5)]
    finally:
        h.cleanup(w, dc)


def main():
    plain = run([])
    small = run(["--flight-segment", str(SEGMENT)])
    h.check(all(plain) and all(small), "every answer verified (HMAC) and every echo ran")
    if all(plain) and all(small):
        for (n, segs, _, ok) in plain:
            h.check(segs <= 2 and ok, "without the flag: a %d-byte answer in %d segment(s), "
                    "echo intact" % (n, segs))
        for (n, segs, echo_segs, ok) in small:
            want = math.ceil(n / SEGMENT)
            h.check(segs >= want, "--flight-segment %d: a %d-byte answer in %d segments "
                    "(at least %d)" % (SEGMENT, n, segs, want))
            h.check(ok and echo_segs < ECHO // SEGMENT // 4,
                    "--flight-segment %d: %d KiB echoed in %d segments, full size after "
                    "the answer (small ones would take %d)" % (SEGMENT, ECHO // 1024, echo_segs,
                                                               ECHO // SEGMENT))
    for bad in ("10", "63", "1401", "many"):
        r = subprocess.run([h.WORKER, "--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET,
                            "--flight-segment", bad], capture_output=True, text=True, timeout=10)
        rc, err = r.returncode, r.stdout + r.stderr
        h.check(rc != 0 and "--flight-segment" in err,
                "--flight-segment %s refused at start (exit %s, names the flag)" % (bad, rc))
    h.finish()


if __name__ == "__main__":
    main()
