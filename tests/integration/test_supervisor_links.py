#!/usr/bin/python3
"""Supervisor end to end, client links: with [server] public_host empty and
public_host_lookup set, the supervisor asks the URL once at start and the
API's links carry the address it answered; a lookup that fails (nothing
listening) only logs a warning and the links fall back to a local address.
With two listeners (TLS-only and all protocols), the links written at the
first start are exactly the API's: both ports, in listener order.
The "what is my IP" service is a Python HTTP server in the sandbox's fake
internet; nothing leaves the sandbox.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import os
import sys
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import Api  # noqa: E402  (the API test's HTTP-over-socket client)

ALICE = "8123456789abcdef0123456789abcdef"
ANSWER = "203.0.113.7"


def first_start_links(env, api):
    """Two listeners, TLS-only and all protocols: the links written at the
    first start (user1, a fake-TLS secret) are the API's links, both ports."""
    tls_port, all_port = sb.free_port(), sb.free_port()
    listeners = [{"bind": "127.0.0.1:%d" % tls_port, "protocols": "tls"},
                 {"bind": "127.0.0.1:%d" % all_port, "protocols": "all"}]
    env.write_config([], listeners=listeners,
                     sections={"server": {"public_host": "proxy.example.com", "create_first_user": True}})
    env.start()
    r = api.get("/v1/users/user1/links")
    links = r.json or {}
    h.check(r.status == 200 and links.get("ports") == [tls_port, all_port],
            "the API names both listener ports in listener order (%s)" % links.get("ports"))
    path = os.path.join(env.state_dir, "first-start-secrets.txt")
    text = open(path).read() if os.path.exists(path) else ""
    printed = sorted(l.strip() for l in text.splitlines() if "://" in l)
    wanted = sorted(links.get("tg", []) + links.get("https", []))
    h.check(printed and printed == wanted,
            "the first start's links are the API's (%d printed, %d from the API)" % (len(printed), len(wanted)))
    h.check(any(("port=%d&" % all_port) in l for l in printed), "the second listener's port is printed too")
    h.check(env.stop() == 0, "clean stop")


def test():
    env = sb.Setup("links", pool="10.208.0.0/16", prefix="mtl", nat=False, uid_first=280000)
    try:
        www = os.path.join(env.dir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "ip"), "w") as f:
            f.write(ANSWER + "\n")
        port = sb.free_port()
        srv = sb.Proc(sb.in_inet(["/usr/bin/python3", "-m", "http.server", "--bind", sb.INET_ADDR,
                                  "--directory", www, str(port)]), name="whatismyip")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until the server answers inside the fake internet
            if sb.run(sb.in_inet(["/usr/bin/python3", "-c",
                                  "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)",
                                  "http://%s:%d/ip" % (sb.INET_ADDR, port)]), check=False, quiet=True).returncode == 0:
                break
            time.sleep(0.2)
        users = [{"name": "alice", "secret": ALICE}]
        lookup = "http://%s:%d/ip" % (sb.INET_ADDR, port)
        env.write_config(users, sections={"server": {"public_host": "", "public_host_lookup": lookup}})
        env.start()
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        r = api.get("/v1/users/alice/links")
        links = r.json or {}
        h.check(r.status == 200 and links.get("host") == ANSWER,
                "links use the looked-up public address (%s)" % links.get("host"))
        h.check(all(("server=%s&" % ANSWER) in l for l in links.get("tg", []) + links.get("https", [])),
                "every link names it")
        lines = [l for l in env.log_text().splitlines() if "public address" in l]
        h.check(any(("address=%s" % ANSWER) in l for l in lines), "the lookup is logged (%s)" % lines)
        h.check(env.stop() == 0, "clean stop")

        srv.p.kill()
        srv.p.wait()
        env.start()  # same config: the lookup now fails
        r = api.get("/v1/users/alice/links")
        host = (r.json or {}).get("host")
        h.check(r.status == 200 and host and host != ANSWER,
                "a failed lookup falls back to a local address (%s)" % host)
        h.check("public address lookup failed" in env.log_text(), "the failure is logged as a warning")
        h.check(h.echo_session(env.port, ALICE, total=16 * 1024), "the proxy works regardless")
        h.check(env.stop() == 0, "clean stop")
    finally:
        env.cleanup()
    env = sb.Setup("links2", pool="10.216.0.0/16", prefix="mtk", nat=False, uid_first=320000)
    try:
        first_start_links(env, Api(sock_path=os.path.join(env.run_dir, "api.sock")))
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "links")
