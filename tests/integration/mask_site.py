"""The mask site of the tests against a real web server (test_mask_nginx.py,
test_fidelity.py, test_doctor.py): Debian's nginx with TLS 1.3 and a
self-signed certificate for mask.test, per ../shared/docs/test-components.md
§1, on :443 in the sandbox's inet namespace (tests/integration/sandbox.py)
and reached by name through the sandbox's own /etc/hosts; the supervisor's
[mask] for it; and how the tests send an input and read the answer, to
compare what a client sees through mtwarden with what nginx answers itself.
"""

import os
import re
import socket
import struct
import time

import harness as h
import sandbox as sb

DOMAIN = "mask.test"
SECRET = "ee" + "4d61736b54657374536563726574303f" + DOMAIN.encode().hex()
OTHER = "ee" + "aa" * 16 + DOMAIN.encode().hex()
NGINX = "/usr/sbin/nginx"


def have_nginx():
    """True when nginx is installed; a failed check (with the remedy) when not."""
    if os.access(NGINX, os.X_OK):
        return True
    h.check(False, "nginx installed (apt-get install nginx-light; scripts/deps.sh --test)")
    return False


def make_cert(d, base, name=DOMAIN, key="rsa", days=7):
    """A self-signed certificate for `name`: d/BASE.crt and its key
    d/BASE.key, RSA 2048 (key="rsa") or ECDSA P-256 (key="ec")."""
    newkey = ["-newkey", "rsa:2048"] if key == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    sb.run(["openssl", "req", "-x509"] + newkey + ["-nodes", "-days", str(days),
            "-subj", "/CN=" + name, "-addext", "subjectAltName=DNS:" + name,
            "-keyout", os.path.join(d, base + ".key"), "-out", os.path.join(d, base + ".crt")])


SERVER = """  server {{
    listen {addr}:{port} ssl; server_name {name}; root {d}/www;
    ssl_protocols TLSv1.3; client_header_timeout 3s;
    ssl_certificate {d}/{cert}.crt; ssl_certificate_key {d}/{cert}.key;
  }}
"""


def start_nginx(d, servers=None):
    """nginx in the inet namespace, its files under `d`, one TLS 1.3 server
    per (port, server_name, cert) of `servers`, where the certificate is
    d/CERT.crt (make_cert). Default: mask.test on 443 with a fresh RSA
    certificate d/rsa.crt."""
    for sub in ("www", "logs", "tmp"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    if servers is None:
        make_cert(d, "rsa")
        servers = [(443, DOMAIN, "rsa")]
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
""".format(d=d) + "".join(SERVER.format(d=d, addr=sb.INET_ADDR, port=port, name=name, cert=cert)
                           for port, name, cert in servers) + "}\n")
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


def start_for(env):
    """nginx as mask.test for the sandbox.Setup `env`, its files under
    env.dir/nginx; returns its Proc (the caller stops it)."""
    hosts_file(env.dir)
    return start_nginx(os.path.join(env.dir, "nginx"))


def mask_section(connect_timeout_ms, probe_handshakes):
    """The config's [mask] as shipped (no address: the user's fake-TLS
    domain on 443), with the profile probe on."""
    return {"mask": {"address": "", "connect_timeout_ms": connect_timeout_ms,
                     "discard_timeout_ms": 1000, "probe": True,
                     "probe_handshakes": probe_handshakes}}


def measured_profile(env, timeout):
    """Waits until the supervisor reports a measured mask profile; returns
    the status's profiles of mask.test (empty when none came in time)."""
    s = env.wait_status(lambda s: any(p.get("source") == "measured"
                                      for p in s.get("mask_profiles", [])), timeout=timeout)
    return [p for p in (s or {}).get("mask_profiles", []) if p.get("domain") == DOMAIN]


# ------------------------------------------------------------------ answers


def canonical_http(answer):
    """An HTTP answer's Date header names the second it was sent."""
    return re.sub(rb"\r\nDate: [^\r]*\r\n", b"\r\nDate: -\r\n", answer)


def records(data):
    """[(type, version, body)] of the whole TLS records in data, and the rest."""
    out, i = [], 0
    while i + 5 <= len(data):
        n = int.from_bytes(data[i + 3:i + 5], "big")
        if i + 5 + n > len(data):
            break
        out.append((data[i], data[i + 1:i + 3], data[i + 5:i + 5 + n]))
        i += 5 + n
    return out, data[i:]


def data_segs_in(s):
    """tcp_info.tcpi_data_segs_in: segments with payload received."""
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
        return struct.unpack_from("<I", info, 152)[0]
    except OSError:
        return None


def exchange(addr, data, half_close=True, timeout=6, quiet=0.0, first_only=False,
             connect=socket.create_connection):
    """Sends data (then shuts down its side if half_close); returns
    dict(answer, how: fin | rst | open, ttfb, took, segs). quiet > 0: stop
    reading once the socket is silent for that long (a TLS server waits for
    the client's Finished) and report how='open'. first_only: stop at the
    first bytes (the time to the answer is all that counts). `connect`
    (addr, timeout) opens the socket."""
    s = connect(addr, timeout)
    out = bytearray()
    how = "open"
    t0 = time.monotonic()
    ttfb = None
    try:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        while True:
            if quiet and out:
                s.settimeout(quiet)
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
            if ttfb is None:
                ttfb = time.monotonic() - t0
            out += chunk
            if first_only:
                break
        took = time.monotonic() - t0
        segs = data_segs_in(s)
    finally:
        s.close()
    return {"answer": bytes(out), "how": how, "ttfb": ttfb, "took": took, "segs": segs}


def fake_answer(addr, secret, hello, connect=socket.create_connection):
    """The answer to the authenticated `hello`: (HMAC verified, [(type,
    len)] of its records, AppData body, ttfb, data segments, ServerHello
    body), or None when no connection or fewer than three records came."""
    try:
        s = connect(addr, 5)
    except OSError:
        return None
    data = b""
    t0 = time.monotonic()
    ttfb = None
    try:
        s.sendall(hello)
        while len(records(data)[0]) < 3:
            c = s.recv(65536)
            if not c:
                break
            if ttfb is None:
                ttfb = time.monotonic() - t0
            data += c
        segs = data_segs_in(s)
    except OSError:
        return None
    finally:
        s.close()
    recs, _ = records(data)
    if len(recs) < 3:
        return None
    raw = b"".join(bytes([t]) + v + len(b).to_bytes(2, "big") + b for t, v, b in recs[:3])
    ok = h.verify_server_hello(secret, hello, raw)
    return ok, [(t, len(b)) for t, _, b in recs], recs[2][2], ttfb, segs, recs[0][2]
