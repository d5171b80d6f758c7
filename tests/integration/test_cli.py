#!/usr/bin/python3
"""Command line: --help documents every flag, bad flags exit 2 with one clear
line, a failed bind exits 1, listeners print "listening ADDR:PORT" (IPv4 and
IPv6), and the proxy links use --public-host with hex and base64url forms."""

import base64
import os
import shutil
import socket
import subprocess

import harness as h

FLAGS = ["--bind", "--secret", "--secrets-file", "--dc", "--mask", "--allow", "--tls-skew",
         "--public-host", "--control-fd", "--fast-mode", "--prefer-ipv6", "--handshake-timeout",
         "--idle-timeout", "--dc-connect-timeout", "--drain-timeout", "--max-connections",
         "--stats-interval", "--stats-file", "--log-level", "--mask-discard-timeout", "--help",
         "--ad-tag", "--proxy-secret", "--proxy-config", "--proxy-config-v6", "--middle-pool", "--public-ip",
         "--middle-stall-timeout", "--orphan-timeout", "--reattach-fd"]


def run(args):
    return subprocess.run([h.WORKER] + args, capture_output=True, text=True, timeout=30)


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def main():
    r = run(["--help"])
    h.check(r.returncode == 0, "--help exits 0")
    missing = [f for f in FLAGS if f not in r.stdout]
    h.check(not missing, "--help documents every flag (missing: %s)" % missing)

    for bad in (["--bogus"], ["--bind", "127.0.0.1:0"], ["--secret", h.SIMPLE_SECRET],
                ["--bind", "127.0.0.1:0", "--secret", "nothex"],
                ["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET, "--fast-mode", "sometimes"],
                ["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET, "--orphan-timeout", "5"],
                ["--control-fd", "3", "--secret", h.SIMPLE_SECRET, "--reattach-fd", "4"]):
        r = run(bad)
        h.check(r.returncode == 2 and r.stderr.startswith("mtwarden-worker: ")
                and "nothex" not in r.stderr, "bad flags %s -> exit 2 (%r)" % (bad[:3], r.stderr[:80]))

    # Middle-proxy files are read at start: a missing or text proxy secret, or
    # a proxy config without proxy_for lines, is a start-up failure (exit 1).
    d = h.tmpdir()
    text_secret = os.path.join(d, "secret.txt")
    with open(text_secret, "w") as f:
        f.write("<html>" + "x" * 200 + "</html>\n")
    good_secret = os.path.join(d, "secret.bin")
    with open(good_secret, "wb") as f:
        f.write(os.urandom(128))
    conf = os.path.join(d, "proxy-multi.conf")
    with open(conf, "w") as f:
        f.write("proxy_for 2 127.0.0.1:8888;\n")
    empty_conf = os.path.join(d, "empty.conf")
    with open(empty_conf, "w") as f:
        f.write("# nothing\n")
    base = ["--bind", "127.0.0.1:0", "--secret", h.SIMPLE_SECRET, "--ad-tag", "ab" * 16]
    for what, extra, needle in (
            ("missing proxy secret", ["--proxy-secret", os.path.join(d, "nope"), "--proxy-config", conf], "nope"),
            ("text proxy secret", ["--proxy-secret", text_secret, "--proxy-config", conf], "proxy secret"),
            ("empty proxy config", ["--proxy-secret", good_secret, "--proxy-config", empty_conf], "proxy config")):
        r = run(base + extra)
        h.check(r.returncode == 1 and needle in r.stderr, "%s -> exit 1 (%r)" % (what, r.stderr[-120:]))
    shutil.rmtree(d, ignore_errors=True)

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    r = run(["--bind", "127.0.0.1:%d" % taken.getsockname()[1], "--secret", h.SIMPLE_SECRET])
    h.check(r.returncode == 1, "bind failure exits 1")
    taken.close()

    args = ["--bind", "127.0.0.1:0", "--secret", h.TLS_SECRET, "--public-host", "proxy.example.org",
            "--log-level", "warn"]
    if has_ipv6():
        args += ["--bind", "[::1]:0"]
    w = h.Proc([h.WORKER] + args, name="worker")
    try:
        l4 = w.wait_line("listening ")
        h.check(l4.startswith("listening 127.0.0.1:"), "IPv4 listener printed (%s)" % l4)
        if has_ipv6():
            l6 = w.wait_line("listening ")
            h.check(l6.startswith("listening [::1]:"), "IPv6 listener printed (%s)" % l6)
        port = l4.rsplit(":", 1)[1]
        hexform = "tg://proxy?server=proxy.example.org&port=%s&secret=%s" % (port, h.TLS_SECRET)
        h.check(w.wait_line("tg://proxy") == hexform, "tg:// link with hex secret")
        h.check(w.wait_line("https://t.me/proxy") == hexform.replace("tg://proxy", "https://t.me/proxy"),
                "t.me link")
        b64 = base64.urlsafe_b64encode(bytes.fromhex(h.TLS_SECRET)).decode().rstrip("=")
        h.check(w.wait_line("tg://proxy").endswith("secret=" + b64), "tg:// link with base64url secret")
        w.signal(15)
        h.check(w.wait(30) == 0, "exit 0 on SIGTERM")
    finally:
        h.cleanup(w)
    h.finish()


if __name__ == "__main__":
    main()
