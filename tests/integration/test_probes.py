#!/usr/bin/python3
"""Active probes land at the mask host byte-exact and get its answer: an HTTP
GET, random bytes, a ClientHello for a wrong secret, a replayed valid
ClientHello, a ClientHello with an old timestamp, a wrong SNI, a protocol
that --allow forbids, and a slow client that stalls in its hello (mirrored to
the mask, which answers it before the handshake deadline).
Also: with no mask host, a probe is read and discarded, not closed at once."""

import os
import socket
import time

import harness as h

OTHER_TLS = "ee" + "aa" * 16 + h.TLS_DOMAIN.encode().hex()


def probe_case(port, record_dir, name, data, half_close=True):
    before = h.mask_records(record_dir)
    answer = h.probe(port, data, half_close=half_close)
    got = h.wait_new_record(record_dir, before)
    h.check(got == data, "%s: mask got the %d bytes byte-exact (got %s)"
            % (name, len(data), None if got is None else len(got)))
    h.check(answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"mask-answer\n"),
            "%s: prober got the mask's answer (%r)" % (name, answer[:40]))


def valid_hello_gets_server_hello(port, hello):
    s = h.connect(port)
    try:
        s.sendall(hello)
        head = h.recv_exact(s, 3)
        return head == b"\x16\x03\x03"
    finally:
        s.close()


def main():
    d = h.tmpdir()
    rec = os.path.join(d, "mask")
    os.mkdir(rec)
    stats = os.path.join(d, "stats.json")
    dc, dc_port = h.start_fake_dc()
    mask, mask_port = h.start_fake_mask(rec)
    w, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET,
                               "--mask", "127.0.0.1:%d" % mask_port, "--allow", "tls",
                               "--handshake-timeout", "2", "--stats-file", stats,
                               "--log-level", "warn"] + h.dc_flags(dc_port))
    w2 = None
    try:
        port = ports[0]
        probe_case(port, rec, "http get", b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
        probe_case(port, rec, "random bytes", os.urandom(300))
        probe_case(port, rec, "wrong secret hello", h.client_hello(OTHER_TLS))
        valid = h.client_hello(h.TLS_SECRET)
        h.check(valid_hello_gets_server_hello(port, valid), "valid hello gets a ServerHello")
        probe_case(port, rec, "replayed hello", valid)
        probe_case(port, rec, "old timestamp hello",
                   h.client_hello(h.TLS_SECRET, ts=int(time.time()) - 3600))
        probe_case(port, rec, "wrong sni hello", h.client_hello(h.TLS_SECRET, sni="other.example.org"))
        probe_case(port, rec, "obfuscated2 while tls-only",
                   h.Obfs2Client(h.TLS_SECRET[2:34]).init + os.urandom(32))
        t0 = time.time()
        probe_case(port, rec, "slow client hits handshake deadline",
                   h.client_hello(h.TLS_SECRET)[:100], half_close=False)
        took = time.time() - t0
        # Mirrored to the mask after --mask-mirror-after (250 ms): the mask's
        # answer, not our 2 s deadline, ends it (docs/masking.md).
        h.check(took < 1.5, "stalled probe answered by the mask before our 2 s deadline (%.2f s)" % took)
        s = h.wait_stats(stats, lambda s: s["masked"] >= 8)
        h.check(s["fail_bad_hmac"] >= 1 and s["fail_replay"] == 1 and s["fail_clock_skew"] == 1
                and s["fail_wrong_sni"] == 1 and s["fail_not_allowed"] + s["fail_unknown_tag"] >= 1
                and s["fail_timeout"] == 1 and s["masked"] == 8,
                "failure counters by reason: %s" % s)
        h.check(s["masked_bytes_from_mask"] > 0 and s["masked_bytes_to_mask"] > 0,
                "masked bytes counted")

        # No mask host: the probe is read and discarded, then closed after the timeout.
        w2, p2 = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET,
                                 "--mask-discard-timeout", "2", "--log-level", "warn"])
        c = h.connect(p2[0])
        c.sendall(os.urandom(200))
        c.settimeout(1.0)
        try:
            early = c.recv(1)
            still_open = False
        except socket.timeout:
            still_open = True
        h.check(still_open, "no mask: connection not closed at once (%s)" % (None if still_open else early))
        c.settimeout(10)
        t0 = time.time()
        closed = c.recv(1) == b""
        h.check(closed and time.time() - t0 < 5, "no mask: closed after the discard timeout")
        c.close()
    finally:
        h.cleanup(w, w2, mask, dc, dirs=[d])
    h.finish()


if __name__ == "__main__":
    main()
