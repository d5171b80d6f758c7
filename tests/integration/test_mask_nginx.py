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
import shutil
import socket
import subprocess
import time

import harness as h
import sandbox as sb

DOMAIN = "mask.test"
SECRET = "ee" + "4d61736b54657374536563726574303f" + DOMAIN.encode().hex()
OTHER = "ee" + "aa" * 16 + DOMAIN.encode().hex()
NGINX = "/usr/sbin/nginx"


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


def start_nginx(d):
    """nginx per ../shared/docs/test-components.md §1 in the inet namespace, on :443."""
    for sub in ("www", "logs", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    sb.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "7",
            "-subj", "/CN=" + DOMAIN, "-addext", "subjectAltName=DNS:" + DOMAIN,
            "-keyout", os.path.join(d, "rsa.key"), "-out", os.path.join(d, "rsa.crt")])
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("<h1>mask.test ok</h1>\n")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""user root; worker_processes 1; daemon off;
pid {d}/nginx.pid; error_log {d}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log {d}/logs/access.log;
  client_body_temp_path {d}/tmp/body; proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi; uwsgi_temp_path {d}/tmp/uwsgi; scgi_temp_path {d}/tmp/scgi;
  types {{ text/html html; }}
  server {{
    listen {addr}:443 ssl; server_name {dom}; root {d}/www;
    ssl_protocols TLSv1.3;
    client_header_timeout 3s;
    ssl_certificate {d}/rsa.crt; ssl_certificate_key {d}/rsa.key;
  }}
}}
""".format(d=d, addr=sb.INET_ADDR, dom=DOMAIN))
    sb.run(sb.in_inet([NGINX, "-t", "-q", "-c", conf, "-p", d]))
    p = sb.Proc(sb.in_inet([NGINX, "-c", conf, "-p", d]), name="nginx",
                stderr_path=os.path.join(d, "logs", "stderr.log"))
    pid = os.path.join(d, "nginx.pid")
    for _ in range(100):
        if os.path.exists(pid) and os.path.getsize(pid) > 0:
            return p
        time.sleep(0.1)
    raise RuntimeError("nginx did not start")


def hosts_file(d):
    """The sandbox's private /etc/hosts: mask.test is nginx's address."""
    path = os.path.join(d, "hosts")
    with open("/etc/hosts") as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text + "\n%s %s\n" % (sb.INET_ADDR, DOMAIN))
    sb.run(["mount", "--bind", path, "/etc/hosts"])


def ask(addr, data, half_close=True, timeout=8):
    """Sends `data`; returns (bytes read, how it ended: fin | rst | open)."""
    s = socket.create_connection(addr, timeout=timeout)
    out = bytearray()
    how = "open"
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "rst"
                break
            if not chunk:
                how = "fin"
                break
            out += chunk
    finally:
        s.close()
    return bytes(out), how


def canonical(answer):
    """An HTTP answer's Date header names the second it was sent."""
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", answer)


def no_sni_hello():
    """A hello from h.client_hello with its SNI extension removed (lengths fixed)."""
    full = bytearray(h.client_hello(OTHER, sni=DOMAIN))
    name = DOMAIN.encode()
    sni_ext = len(name) + 9
    # record 5 + handshake header 4 + version 2 + random 32 + sid 33 + suites 8 + compression 2
    ext_len_at = 5 + 4 + 2 + 32 + 33 + 8 + 2
    ext_start = ext_len_at + 2
    out = full[:ext_start] + full[ext_start + sni_ext:]
    ext_len = int.from_bytes(full[ext_len_at:ext_start], "big") - sni_ext
    out[ext_len_at:ext_start] = ext_len.to_bytes(2, "big")
    hs_len = int.from_bytes(full[6:9], "big") - sni_ext
    out[6:9] = hs_len.to_bytes(3, "big")
    out[3:5] = (len(out) - 5).to_bytes(2, "big")
    return bytes(out)


def fake_tls_flight(addr, secret):
    """Sends an authenticated hello; returns ([(type, length)], hmac ok,
    wire bytes of the AppData record) or None."""
    hello = h.client_hello(secret, sni=DOMAIN)
    try:
        s = socket.create_connection(addr, timeout=5)
    except OSError:
        return None
    try:
        s.sendall(hello)
        recs, raw = [], b""
        for _ in range(3):
            head = h.recv_exact(s, 5)
            body = h.recv_exact(s, int.from_bytes(head[3:5], "big"))
            recs.append((head[0], len(body)))
            raw += head + body
        return recs, h.verify_server_hello(secret, hello, raw), 5 + recs[-1][1]
    except (OSError, ConnectionError, ValueError):
        return None
    finally:
        s.close()


def status_counter(env, name):
    s = env.status()
    return (s.get("gate") or {}).get("counters", {}).get(name, 0)


def test():
    if not os.access(NGINX, os.X_OK):
        h.check(False, "nginx installed (apt-get install nginx-light; scripts/deps.sh --test)")
        return
    env = sb.Setup("masknginx", pool="10.214.0.0/16", prefix="mtn", nat=False, uid_first=330000)
    nginx_dir = os.path.join(env.dir, "nginx")
    nginx = None
    try:
        hosts_file(env.dir)
        nginx = start_nginx(nginx_dir)
        env.write_config([{"name": "alice", "secret": SECRET}],
                         sections={"mask": {"address": "", "connect_timeout_ms": 500,
                                            "discard_timeout_ms": 1000, "probe": True,
                                            "probe_handshakes": 3}},
                         listeners=[{"bind": "127.0.0.1:%d" % env.port, "protocols": "tls"}])
        env.start()
        env.require_running(["alice"])
        gate = ("127.0.0.1", env.port)
        direct = (sb.INET_ADDR, 443)

        probes = [
            ("plain HTTP", b"GET / HTTP/1.1\r\nHost: mask.test\r\n\r\n", True),
            ("wrong HMAC", h.client_hello(OTHER, sni=DOMAIN), True),
            ("unknown SNI", h.client_hello(OTHER, sni="stranger.test"), True),
            ("no SNI", no_sni_hello(), True),
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
            h.check(canonical(got) == canonical(want) and got_how == want_how,
                    "%s: through mtwarden the same answer as from nginx (%d bytes %s vs %d bytes %s: %r)"
                    % (name, len(got), got_how, len(want), want_how, got[:60]))

        # The supervisor probed nginx as mask.test; the worker's answer to an
        # authenticated hello is one AppData record as large as nginx's
        # whole encrypted first flight (a self-signed leaf: far below the
        # built-in profile's 2790..4390 bytes).
        s = env.wait_status(lambda s: any(p.get("source") == "measured"
                                          for p in s.get("mask_profiles", [])), timeout=40)
        prof = [p for p in (s or {}).get("mask_profiles", []) if p.get("domain") == DOMAIN]
        h.check(len(prof) == 1 and prof[0]["source"] == "measured" and prof[0]["last_error"] == ""
                and prof[0]["target"] == "%s:443" % DOMAIN,
                "mask.test's profile measured from nginx (%s)" % prof)
        if prof and prof[0]["source"] == "measured":
            lo, hi = prof[0]["flight_wire_min"], prof[0]["flight_wire_max"]
            h.check(os.path.exists(os.path.join(env.state_dir, "mask-profiles", DOMAIN + ".profile")),
                    "the profile is kept on disk")
            got = None
            for _ in range(50):  # pushed to the worker within about a second
                got = fake_tls_flight(gate, SECRET)
                if got and lo - 3 <= got[2] <= hi + 3:
                    break
                time.sleep(0.1)
            h.check(got is not None and [t for t, _ in got[0]] == [0x16, 0x14, 0x17],
                    "authenticated hello: ServerHello, CCS, one AppData (%s)" % (got and got[0]))
            h.check(got is not None and lo - 3 <= got[2] <= hi + 3 and got[2] < 2790,
                    "the AppData record is as large as nginx's first flight: %s bytes, nginx "
                    "%d..%d (built-in profile: 2790..4390)" % (got and got[2], lo, hi))
            h.check(got is not None and got[1],
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
