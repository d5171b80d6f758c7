#!/usr/bin/python3
"""mtwarden-webfront, the HTTPS front of the WEB proxy, on loopback with a
self-signed certificate, a real mtwarden-worker as each stream's backend
and the fake DC echoing behind it. This script plays Telegram's app and our
bridge page's carrier (webproxy_client.py, written from the contract):

 1. the bridge URL of a plain and of a dd user gives the bridge page (no
    redirect, CSP, no-store, an inline script with the bootstrap token);
 2. a carrier: HELLO -> exactly one WELCOME; three streams at once carry
    obfuscated2 sessions (abridged for the plain user, padded intermediate
    for dd) through the worker to the fake DC and back, byte-exact;
 3. 5 MiB each way on one stream: the app's 4 MiB window is only refilled
    by the relay's WINDOWs (and the relay's by the app's);
 4. a bootstrap token works once; a spent, forged or missing token, a wrong
    capability, a non-canonical bridge URL and ordinary probes all get the
    decoy site (files of --decoy-dir), byte-identical to what a probe of
    the same path gets;
 5. a hostile frame closes that carrier only; a parallel one keeps working;
 6. the certificate and key files replaced on disk are served to new
    connections, while a session opened before keeps working;
 7. the session cap per user refuses one more carrier;
 0. the front runs under the gate's seccomp filter;
 8. a second front with a 1 s idle timeout: an idle session gets BYE and is
    closed, and its slot is free again.
"""

import os
import shutil
import signal
import time

import harness as h
import webproxy_client as wp

WEBFRONT = os.environ.get("MTW_WEBFRONT", "build/asan/webfront/mtwarden-webfront")
HOST = "proxy.example.com"
DD_SECRET = "dd" + h.OTHER_SECRET
USERS = "# id secret\n7 %s\n9 %s\n" % (h.SIMPLE_SECRET, DD_SECRET)


def main():
    work = h.tmpdir()
    decoy = os.path.join(work, "site")
    os.mkdir(decoy)
    with open(os.path.join(decoy, "index.html"), "w") as f:
        f.write("<html><body><h1>Bakery on the corner</h1></body></html>\n")
    with open(os.path.join(decoy, "404.html"), "w") as f:
        f.write("<html><body>No such page.</body></html>\n")
    users = os.path.join(work, "users")
    with open(users, "w") as f:
        f.write(USERS)
    cert, key = wp.make_cert(work, "live", HOST)
    cert_b, key_b = wp.make_cert(work, "renewed", HOST)

    dc, dc_port = h.start_fake_dc()
    worker, ports = h.start_worker(["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET,
                                    "--secret", DD_SECRET, "--log-level", "warn"]
                                   + h.dc_flags(dc_port))
    lsock = h.socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    port = lsock.getsockname()[1]
    front = h.Proc([WEBFRONT, "--listen-fd", str(lsock.fileno()), "--cert", cert, "--key", key,
                    "--host", HOST, "--users", users, "--backend", "127.0.0.1:%d" % ports[0],
                    "--decoy-dir", decoy, "--cert-check-interval", "200ms",
                    "--max-sessions-per-user", "3", "--log-level", "info"],
                   pass_fds=(lsock.fileno(),), name="webfront")
    try:
        deadline = time.time() + 20
        while True:
            try:
                wp.http_get(port, HOST, "/")
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

        with open("/proc/%d/status" % front.pid) as f:
            h.check("Seccomp:\t2" in f.read(), "the front runs under the seccomp filter")

        # 1. The bridge page.
        status, headers, page = wp.http_get(port, HOST, "/?bridge=" + wp.capability(h.SIMPLE_SECRET, HOST))
        h.check(status == 200, "bridge page: 200 at the exact bridge URL (got %d)" % status)
        h.check(headers.get("cache-control") == "no-store", "bridge page: no-store")
        csp = headers.get("content-security-policy", "")
        h.check("script-src 'nonce-" in csp and "frame-ancestors" in csp, "bridge page: CSP")
        h.check(b"TelegramWebProxy" in page and b"tproxy-android-init" in page,
                "bridge page: speaks the app boundary")
        h.check(wp.bootstrap_of(page) is not None, "bridge page: carries a bootstrap token")
        status, _, _ = wp.http_get(port, HOST, "/?bridge=" + wp.capability(DD_SECRET, HOST))
        h.check(status == 200, "bridge page for the dd user")

        # 2. Streams through the worker to the fake DC.
        carrier, token = wp.open_carrier(port, h.SIMPLE_SECRET)
        h.check(carrier is not None and carrier.upgraded, "carrier upgraded (101)")
        h.check(carrier.headers.get("sec-websocket-protocol") == "tproxy-v1." + token,
                "carrier: the subprotocol is echoed")
        app = wp.App(carrier)
        h.check(app.welcome == [(wp.WELCOME, 0, b"")], "exactly one WELCOME, alone")
        for sid in (11, 12, 13):
            app.open(sid, h.SIMPLE_SECRET, b"\xef" * 4)
        ok = True
        for rnd in range(4):
            for sid in (11, 12, 13):
                ok = ok and app.echo(sid, os.urandom(3000 + 1000 * sid + rnd))
        h.check(ok, "three streams echo through worker and fake DC")

        dd_carrier, _ = wp.open_carrier(port, DD_SECRET)
        dd_app = wp.App(dd_carrier)
        dd_app.open(21, DD_SECRET, b"\xdd" * 4)
        h.check(dd_app.echo(21, os.urandom(40000)), "dd user: padded-intermediate stream echoes")

        # 3. Past the initial windows, both ways.
        total, ok = 0, True
        while total < 5 * 1024 * 1024 and ok:
            ok = app.echo(12, os.urandom(256 * 1024))
            total += 256 * 1024
        h.check(ok, "5 MiB each way on one stream: WINDOW credit flows both ways")

        # 4. Tokens and the decoy.
        again = wp.Carrier(port, HOST, token)
        h.check(again.status == 404 and not again.upgraded, "a spent bootstrap token: decoy 404")
        again.close()
        forged = wp.Carrier(port, HOST, "A" * 55)
        h.check(forged.status == 404, "a forged token: decoy 404")
        forged.close()
        not_found = wp.http_get(port, HOST, "/nothing-here")
        index = wp.http_get(port, HOST, "/")
        for target in ("/api/v1/ws", "/index.php", "/wp-login.php"):
            st, _, body = wp.http_get(port, HOST, target)
            h.check(st == 404 and body == not_found[2], "decoy 404 for %s" % target)
        # The bridge's path is the site's root: a wrong capability is a query
        # on "/", answered with the index page exactly as any other query.
        for target in ("/?bridge=" + "B" * 43, "/?bridge=" + wp.capability(h.SIMPLE_SECRET, HOST) + "&x=1",
                       "/?bridge=" + wp.capability(h.SIMPLE_SECRET, "other.example.com"), "/?q=1"):
            st, _, body = wp.http_get(port, HOST, target)
            h.check(st == 200 and body == index[2], "decoy index for %s" % target[:40])
        st, _, body = wp.http_get(port, HOST, "/")
        h.check(st == 200 and b"Bakery" in body, "a probe of / gets the decoy's index.html")
        st, _, body = wp.http_get(port, HOST, "/", method="POST")
        h.check(st == 405, "a POST gets 405 from the decoy")

        # 5. A hostile frame ends its carrier only.
        bad, _ = wp.open_carrier(port, h.SIMPLE_SECRET)
        bad_app = wp.App(bad)
        bad.send(wp.frame(0x42, 0, b""))
        h.check(bad.recv() is None, "an unknown frame type closes that carrier")
        bad.close()
        h.check(app.echo(11, os.urandom(5000)), "the other carrier still works")

        # 6. Certificate replaced on disk.
        h.check(wp.peer_cert_sha256(port, HOST) == wp.der_sha256(cert), "serves the configured cert")
        shutil.copy(cert_b, cert + ".tmp")
        shutil.copy(key_b, key + ".tmp")
        os.rename(key + ".tmp", key)
        os.rename(cert + ".tmp", cert)
        want = wp.der_sha256(cert_b)
        deadline, got = time.time() + 10, None
        while time.time() < deadline:
            got = wp.peer_cert_sha256(port, HOST)
            if got == want:
                break
            time.sleep(0.2)
        h.check(got == want, "the renewed certificate is served to new connections")
        h.check(app.echo(13, os.urandom(7000)), "a session opened before the renewal keeps working")
        with open(key, "w") as f:
            f.write("not a key\n")
        time.sleep(1)
        h.check(wp.peer_cert_sha256(port, HOST) == want, "a broken key file keeps the old context")

        # 7. Session cap per user (3): app, bad (closed) -> two more fit, the third not.
        c2, _ = wp.open_carrier(port, h.SIMPLE_SECRET)
        c3, _ = wp.open_carrier(port, h.SIMPLE_SECRET)
        c4, _ = wp.open_carrier(port, h.SIMPLE_SECRET)
        h.check(c2.upgraded and c3.upgraded and not c4.upgraded, "a 4th session of a user is refused")
        for c in (c2, c3, c4, dd_carrier, carrier):
            c.close()

        front.signal(signal.SIGTERM)
        h.check(front.wait(10) == 0, "SIGTERM: exit 0")

        # 8. Idle deadline.
        lsock2 = h.socket.socket()
        lsock2.bind(("127.0.0.1", 0))
        lsock2.listen(16)
        port2 = lsock2.getsockname()[1]
        idle = h.Proc([WEBFRONT, "--listen-fd", str(lsock2.fileno()), "--cert", cert_b, "--key",
                       key_b, "--host", HOST, "--users", users, "--backend",
                       "127.0.0.1:%d" % ports[0], "--session-idle-timeout", "1",
                       "--max-sessions-per-user", "1", "--log-level", "warn"],
                      pass_fds=(lsock2.fileno(),), name="webfront-idle")
        try:
            deadline = time.time() + 20
            while True:
                try:
                    wp.http_get(port2, HOST, "/")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.2)
            c1, _ = wp.open_carrier(port2, h.SIMPLE_SECRET)
            idle_app = wp.App(c1)
            started = time.time()
            got = []
            while True:
                batch = c1.recv()
                if batch is None:
                    break
                got += [f[0] for f in wp.frames(batch)]
            took = time.time() - started
            h.check(got == [wp.BYE] and 0.8 <= took <= 5,
                    "an idle session gets BYE, then the close (%s after %.1f s)" % (got, took))
            c2, _ = wp.open_carrier(port2, h.SIMPLE_SECRET)
            h.check(c2 is not None and c2.upgraded, "the timed-out session's slot is free again")
            c1.close()
            c2.close()
        finally:
            idle.stop()
            lsock2.close()
    finally:
        h.cleanup(front, worker, dc, dirs=(work,))
    h.finish()


if __name__ == "__main__":
    main()
