#!/usr/bin/python3
"""Masking against a real web server: Debian's nginx (TLS 1.3, a self-signed
certificate for mask.test) is the mask site, and the shipped default routes
to it: no [mask] address, the user's fake-TLS domain mask.test on port 443
(resolved through the sandbox's own /etc/hosts). For the same probes, what a
client sees through mtwarden (supervisor, gate, a fake-TLS-only listener) is
compared with what it sees from nginx directly: a plain HTTP request, a
ClientHello with a wrong HMAC, one naming an unknown SNI, one without an
SNI, an SSH banner and a truncated hello must get nginx's own answer,
byte for byte (the HTTP Date header aside: it names the second), and the
same close (FIN or reset). An authenticated fake-TLS client (mtcute) still
relays through the same listener. With nginx gone, a probe is counted as
mask_unreachable and logged; a target that does not answer is given up
after [mask] connect_timeout_ms, not the kernel's SYN timeout.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root
and nginx-light (scripts/deps.sh --test).
"""

import os
import re
import socket
import time

import harness as h
import mask_site as ms
import sandbox as sb

DOMAIN = ms.DOMAIN
SECRET = ms.SECRET
OTHER = ms.OTHER


# Accepts, reads what comes, and closes with SO_LINGER 0: a reset.
RESETTER = r"""
import socket, struct, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 0))
s.listen(16)
print("listening %d" % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        c.recv(4096)
    except OSError:
        pass
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
"""


def ask(addr, data, half_close=True, timeout=8):
    """Sends `data`; returns (bytes read, how it ended: fin | rst | open)."""
    r = ms.exchange(addr, data, half_close, timeout)
    return r["answer"], r["how"]


def status_counter(env, name):
    s = env.status()
    return (s.get("gate") or {}).get("counters", {}).get(name, 0)


def test():
    if not ms.have_nginx():
        return
    env = sb.Setup("masknginx", pool="10.214.0.0/16", prefix="mtn", nat=False, uid_first=330000)
    nginx = None
    try:
        nginx = ms.start_for(env)
        env.write_config([{"name": "alice", "secret": SECRET}],
                         sections=ms.mask_section(connect_timeout_ms=500, probe_handshakes=3),
                         listeners=[{"bind": "127.0.0.1:%d" % env.port, "protocols": "tls"}])
        env.start()
        env.require_running(["alice"])
        gate = ("127.0.0.1", env.port)
        direct = (sb.INET_ADDR, 443)

        probes = [
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: mask.test\r\n\r\n", True),
            ("wrong HMAC", h.client_hello(OTHER, sni=DOMAIN), True),
            ("unknown SNI", h.client_hello(OTHER, sni="stranger.test"), True),
            # as "wrong HMAC" but without its SNI extension, the padding kept
            ("no SNI", h.client_hello(OTHER, sni=None, pad_to=517 - 9 - len(DOMAIN)), True),
            ("SSH banner", b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", True),
            ("truncated hello", h.client_hello(OTHER, sni=DOMAIN)[:200], True),
            ("HTTP, client keeps its side open", b"GET / HTTP/1.0\r\nHost: mask.test\r\n\r\n",
             False),
        ]
        for name, data, half in probes:
            want, want_how = ask(direct, data, half)
            got, got_how = ask(gate, data, half)
            h.check(len(want) > 0 or want_how != "open", "%s: nginx answers directly (%d bytes, %s)"
                    % (name, len(want), want_how))
            h.check(ms.canonical_http(got) == ms.canonical_http(want) and got_how == want_how,
                    "%s: through mtwarden the same answer as from nginx (%d bytes %s vs %d bytes %s: %r)"
                    % (name, len(got), got_how, len(want), want_how, got[:60]))

        # The supervisor probed nginx as mask.test; the worker's answer to an
        # authenticated hello is one AppData record as large as nginx's
        # whole encrypted first flight (a self-signed leaf: far below the
        # built-in profile's 2790..4390 bytes).
        prof = ms.measured_profile(env, timeout=40)
        h.check(len(prof) == 1 and prof[0]["source"] == "measured" and prof[0]["last_error"] == ""
                and prof[0]["target"] == "%s:443" % DOMAIN,
                "mask.test's profile measured from nginx (%s)" % prof)
        if prof and prof[0]["source"] == "measured":
            lo, hi = prof[0]["flight_wire_min"], prof[0]["flight_wire_max"]
            h.check(os.path.exists(os.path.join(env.state_dir, "mask-profiles", DOMAIN + ".profile")),
                    "the profile is kept on disk")
            got, size = None, None
            for _ in range(50):  # pushed to the worker within about a second
                got = ms.fake_answer(gate, SECRET, h.client_hello(SECRET, sni=DOMAIN))
                size = got and 5 + len(got[2])  # the AppData record on the wire
                if got and lo - 3 <= size <= hi + 3:
                    break
                time.sleep(0.1)
            h.check(got is not None and [t for t, _ in got[1]] == [0x16, 0x14, 0x17],
                    "authenticated hello: ServerHello, CCS, one AppData (%s)" % (got and got[1]))
            h.check(got is not None and lo - 3 <= size <= hi + 3 and size < 2790,
                    "the AppData record is as large as nginx's first flight: %s bytes, nginx "
                    "%d..%d (built-in profile: 2790..4390)" % (size, lo, hi))
            h.check(got is not None and got[0],
                    "the answer carries the HMAC of our secret (verify_server_hello)")

        res = sb.mtcute(env.port, SECRET, what="mtcute fake-tls through the fake-TLS-only listener")
        h.check(res is not None and res.get("ok") is True, "authenticated client relays")

        s = env.wait_status(lambda s: (s.get("gate") or {}).get("counters", {}).get("masked", 0)
                            >= len(probes))
        c = (s or {}).get("gate", {}).get("counters", {})
        h.check(c.get("masked", 0) >= len(probes) and c.get("mask_unreachable", 1) == 0,
                "gate counted %d masked, none unreachable (%s)" % (len(probes), c))

        # nginx gone: counted, logged, the probe read and dropped (not answered).
        nginx.stop()
        nginx = None
        before = status_counter(env, "mask_unreachable")
        got, how = ask(gate, b"GET / HTTP/1.1\r\nHost: mask.test\r\n\r\n", True, timeout=5)
        h.check(got == b"", "unreachable mask: the probe gets no answer (%r, %s)" % (got[:40], how))
        s = env.wait_status(lambda s: s["gate"]["counters"].get("mask_unreachable", 0) > before)
        h.check(s is not None and s["gate"]["counters"].get("mask_unreachable", 0) == before + 1,
                "unreachable mask counted (mask_unreachable %s -> %s)"
                % (before, (s or {}).get("gate", {}).get("counters", {}).get("mask_unreachable")))
        h.check(re.search(r"mask unreachable target=%s:443 error=" % re.escape(DOMAIN),
                          env.log_text()) is not None, "unreachable mask logged with its target")

        # A target that never answers (an address nobody has: ARP fails) is
        # given up after connect_timeout_ms = 500, well before the kernel
        # would. A second listener has its own mask: a server that resets
        # every connection, whose reset must reach the client as a reset.
        resetter = sb.Proc(sb.in_inet(["/usr/bin/python3", "-c", RESETTER, sb.INET_ADDR]),
                           name="resetter")
        reset_port = int(resetter.wait_line("listening ").split()[1])
        env.stop()
        port2 = sb.free_port()
        env.write_config([{"name": "alice", "secret": SECRET}],
                         sections={"mask": {"address": "198.18.0.77:443", "connect_timeout_ms": 500,
                                            "discard_timeout_ms": 1000}},
                         listeners=[{"bind": "127.0.0.1:%d" % env.port, "protocols": "tls"},
                                    {"bind": "127.0.0.1:%d" % port2, "protocols": "tls",
                                     "mask": "%s:%d" % (sb.INET_ADDR, reset_port)}])
        env.start()
        env.require_running(["alice"])
        got, how = ask(("127.0.0.1", port2), b"GET / HTTP/1.1\r\n\r\n", False, timeout=5)
        h.check(how == "rst" and got == b"",
                "the second listener's own mask: its reset reaches the client as a reset (%s)" % how)
        resetter.stop()
        c = socket.create_connection(gate, timeout=5)
        t0 = time.monotonic()
        c.sendall(b"GET / HTTP/1.1\r\n\r\n")
        deadline = t0 + 10
        seen, took = None, None
        while time.monotonic() < deadline and seen is None:
            m = re.search(r"mask unreachable target=198\.18\.0\.77:443 error=(.+?) not_logged_since_last",
                          env.log_text())
            if m:
                seen, took = m.group(1).strip(), time.monotonic() - t0
            time.sleep(0.02)
        c.close()
        h.check(seen == "timed out", "silent target: given up as timed out (%s)" % seen)
        h.check(took is not None and took < 1.5,
                "silent target given up after connect_timeout_ms = 500, not the kernel's "
                "3 s ARP timeout (%s s)" % (None if took is None else "%.2f" % took))
    finally:
        if nginx is not None:
            nginx.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_mask_nginx")
