#!/usr/bin/python3
"""Supervisor end to end, middle-proxy mode with ad tags (docs/worker.md
"Middle-proxy mode", docs/configuration.md [middle]):

1. the supervisor fetches the proxy secret and proxy-multi.conf from a local
   HTTP server at start (a tag is in use) and stores them under
   state_dir/middle;
2. ann (created over the API with an ad_tag) relays through the test middle
   proxy (tests/tools/middle_proxy.py, in the sandbox's "internet"): the
   middle proxy sees ann's tag on her PROXY_REQs; bob (no tag) goes direct:
   the middle proxy sees nothing of him;
3. PATCH ann's ad_tag to null while her connection is open: that connection
   keeps working through the middle proxy; her next one goes direct;
4. a truncated download (a config cut mid-line, then an answer cut short of
   its Content-Length) keeps the last good copy on disk and in use; the
   failure is counted and reported as an event;
5. restart with the HTTP source gone: the stored copy is used, a tagged
   connection relays through the middle proxy again;
6. the middle proxy down: a tagged client goes direct (fallback, counted);
   the middle proxy back: after the fail-fast window new clients go through
   it again.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import http.server
import os
import socket
import struct
import sys
import threading
import time

import harness as h
import sandbox as sb
from test_supervisor_api import Api

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_middle_proxy import RawClient  # noqa: E402

TOOL = os.path.join(h.SOURCE_DIR, "tests", "tools", "middle_proxy.py")
ANN = "6123456789abcdef0123456789abcdef"
BOB = "7123456789abcdef0123456789abcdef"
TAG = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


class Source:
    """The material over HTTP on 127.0.0.1: /secret and /v4, each with a
    mode: "good", "cut" (a body that validates badly) or "short" (a
    Content-Length larger than what is sent, then the connection closes)."""

    def __init__(self, secret, config):
        self.secret = secret
        self.config = config
        self.mode = {"/secret": "good", "/v4": "good"}
        self.hits = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                body = {"/secret": outer.secret, "/v4": outer.config.encode()}.get(self.path)
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                mode = outer.mode[self.path]
                if mode == "cut":
                    body = body[: len(body) - 7]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) + (100 if mode == "short" else 0)))
                self.end_headers()
                self.wfile.write(body)
                if mode == "short":
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class MiddleProc:
    """tests/tools/middle_proxy.py in the sandbox's internet namespace, on a fixed port."""

    def __init__(self, d, secret_file, port, record_name="middle-requests.log"):
        self.record = os.path.join(d, record_name)
        self.port = port
        self.p = sb.Proc(sb.in_inet(["/usr/bin/python3", TOOL, "--secret-file", secret_file,
                                     "--listen", "%s:%d" % (sb.INET_ADDR, port),
                                     "--record", self.record]), name="middle-proxy")
        self.p.wait_line("listening ")

    def requests(self):
        """[(conn_id, tag)] of every PROXY_REQ so far."""
        try:
            with open(self.record) as f:
                return [tuple(l.split()[:2]) for l in f if l.strip()]
        except OSError:
            return []

    def stop(self):
        self.p.stop()


def proxy_multi_conf(port, dcs=(2,)):
    """proxy-multi.conf naming the middle proxy on `port` for each DC in
    `dcs`, default DC 2."""
    return "".join("proxy_for %d %s:%d;\n" % (dc, sb.INET_ADDR, port) for dc in dcs) + "default 2;\n"


def start_middle(env, users, stall_timeout_ms, conf_head="", dcs=(2,)):
    """A random proxy secret (kept in env.dir/proxy-secret.bin), a
    MiddleProc with it on a free port, a Source serving the secret and
    conf_head + proxy_multi_conf(its port, dcs), and env's config: `users`
    and [middle] fetching from that source. Returns (mp, src, secret,
    secret_file, config); stops what it started when a step fails."""
    secret = os.urandom(128)
    secret_file = os.path.join(env.dir, "proxy-secret.bin")
    with open(secret_file, "wb") as f:
        f.write(secret)
    mp = MiddleProc(env.dir, secret_file, sb.free_port())
    src = None
    try:
        config = conf_head + proxy_multi_conf(mp.port, dcs)
        src = Source(secret, config)
        env.write_config(users, sections={"middle": {"proxy_secret": src.url("/secret"),
                                                     "proxy_config": src.url("/v4"),
                                                     "proxy_config_v6": "",
                                                     "stall_timeout_ms": stall_timeout_ms,
                                                     "fetch_timeout_ms": 2000}})
    except BaseException:
        if src:
            src.stop()
        mp.stop()
        raise
    return mp, src, secret, secret_file, config


def worker_counter(api, name, counter):
    st = api.get("/v1/users/%s/status" % name).json
    return (st.get("worker_counters") or {}).get(counter, 0)


def user_events(api, name):
    """The kinds of the middle-mode events recorded for one user, oldest first."""
    evs = api.get("/v1/events?limit=1000").json["events"]
    return [e["kind"] for e in evs
            if e["user"] == name and e["kind"] in ("middle_fallback", "middle_restored")]


def wait_for(pred, timeout, poll=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(poll)
    return pred()


def echo_ok(port, secret):
    c = None
    try:
        c = RawClientFor(port, secret)
        return c.echo(512)
    except (OSError, ConnectionError, struct.error):
        return False
    finally:
        if c:
            c.close()


class RawClientFor(RawClient):
    """RawClient (intermediate framing over obfuscated2) with a given secret."""

    def __init__(self, port, secret, dc=2):
        self.abridged = False
        self.c = h.Obfs2Client(secret, tag=b"\xee" * 4, dc=dc)
        self.s = h.connect(port, timeout=20)
        self.s.sendall(self.c.init)


def test():
    env = sb.Setup("middle", pool="10.215.0.0/16", prefix="mtm", nat=False, uid_first=340000)
    src = mp = None
    try:
        mp, src, secret, secret_file, config = start_middle(
            env, [{"name": "bob", "secret": BOB}], stall_timeout_ms=1000, conf_head="# test\n")
        mp_port = mp.port
        env.start()
        env.require_running(["bob"])
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        h.check(src.hits == {}, "no tag anywhere: nothing fetched (%s)" % src.hits)

        # 1. A user with a tag: the material is fetched and stored.
        r = api.post("/v1/users", {"name": "ann", "secrets": [ANN], "ad_tag": TAG.upper()})
        h.check(r.status == 201 and r.json.get("ad_tag") == TAG,
                "POST /v1/users with ad_tag: 201, stored in canonical form (%s)" % r.body[:200])
        bad = api.patch("/v1/users/ann", {"ad_tag": "xyz"})
        h.check(bad.status == 400 and "ad_tag" in bad.body.decode(),
                "PATCH ad_tag \"xyz\": 400 naming ad_tag (%s)" % bad.body[:200])
        env.require_running(["ann", "bob"])
        stored = os.path.join(env.state_dir, "middle")
        h.check(wait_for(lambda: os.path.exists(os.path.join(stored, "proxy-multi.conf")), 10),
                "material fetched and stored under state_dir/middle")
        with open(os.path.join(stored, "proxy-multi.conf")) as f:
            h.check(f.read() == config, "stored proxy-multi.conf is the served one")
        with open(os.path.join(stored, "proxy-secret"), "rb") as f:
            h.check(f.read() == secret, "stored proxy-secret is the served one")
        h.check(os.stat(stored).st_mode & 0o777 == 0o700, "state_dir/middle is 0700")

        # 2. ann via the middle proxy, with her tag; bob direct.
        h.check(wait_for(lambda: echo_ok(env.port, ANN), 15), "ann: echo through the middle proxy")
        reqs = mp.requests()
        h.check(len(reqs) >= 1 and all(t == TAG for _, t in reqs),
                "the middle proxy saw ann's tag on every PROXY_REQ (%s)" % reqs[:4])
        n = len(reqs)
        h.check(echo_ok(env.port, BOB), "bob (no tag): echo direct")
        h.check(len(mp.requests()) == n, "the middle proxy saw nothing of bob")
        h.check(wait_for(lambda: worker_counter(api, "ann", "middle_relays") >= 1, 5),
                "ann's status: middle_relays counted")
        h.check(worker_counter(api, "bob", "middle_relays") == 0, "bob's status: no middle relay")

        # 3. Remove ann's tag while her connection is open.
        held = RawClientFor(env.port, ANN)
        h.check(held.echo(300), "ann: a held connection through the middle proxy")
        before = len(mp.requests())
        r = api.patch("/v1/users/ann", {"ad_tag": None})
        h.check(r.status == 200 and r.json.get("ad_tag") is None, "PATCH ad_tag null: 200")
        time.sleep(0.5)
        h.check(held.echo(300) and held.echo(5000), "the held connection still works after the tag went")
        after_held = len(mp.requests())
        h.check(after_held > before, "... still through the middle proxy (%d -> %d requests)"
                % (before, after_held))
        h.check(echo_ok(env.port, ANN), "ann: a new connection works")
        h.check(len(mp.requests()) == after_held, "... and goes direct (no new PROXY_REQ)")
        held.close()
        r = api.patch("/v1/users/ann", {"ad_tag": TAG})
        h.check(r.status == 200, "PATCH the tag back: 200")
        h.check(wait_for(lambda: echo_ok(env.port, ANN) and len(mp.requests()) > after_held, 10),
                "the tag back: new connections go through the middle proxy again")

        # 4. Truncated downloads keep the last good copy.
        src.config = "proxy_for 2 %s:%d;\nproxy_for 4 %s:%d;\n" % (sb.INET_ADDR, mp_port + 1,
                                                                  sb.INET_ADDR, mp_port + 1)
        for mode in ("cut", "short"):
            src.mode["/v4"] = mode
            hits = src.hits.get("/v4", 0)
            r = api.post("/v1/reload")
            h.check(r.status == 200, "reload (a refresh round): 200")
            h.check(wait_for(lambda: src.hits.get("/v4", 0) > hits, 10), "%s: the config asked again" % mode)
            time.sleep(0.5)
            with open(os.path.join(stored, "proxy-multi.conf")) as f:
                h.check(f.read() == config, "%s download: the stored copy is the last good one" % mode)
        st = api.get("/v1/status").json
        mid = st.get("middle") or {}
        h.check(mid.get("refresh_failures", 0) >= 2 and mid.get("ready") is True and mid.get("last_error"),
                "server status: refresh failures counted, material still ready (%s)" % mid)
        evs = [e["kind"] for e in api.get("/v1/events?limit=1000").json["events"]]
        h.check("middle_material_failed" in evs, "event middle_material_failed recorded")
        h.check(echo_ok(env.port, ANN), "ann still relays through the kept material")
        metrics = api.get("/metrics").body.decode()
        h.check("mtwarden_middle_material_refresh_failures_total" in metrics and
                'mtwarden_user_middle_relays_total{user="ann"}' in metrics,
                "/metrics has the material and per-user middle counters")

        # 5. Restart without the source: the stored copy is used.
        src.stop()
        src = None
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        before = len(mp.requests())
        env.start()
        env.require_running(["ann", "bob"])
        h.check(wait_for(lambda: echo_ok(env.port, ANN) and len(mp.requests()) > before, 15),
                "restart without the source: ann relays through the middle proxy (stored copy)")
        with open(os.path.join(stored, "proxy-multi.conf")) as f:
            h.check(f.read() == config, "the stored copy survived the failed refresh at start")

        # 6. Middle proxy down: fallback to direct, and back.
        mp.stop()
        time.sleep(0.3)
        fallbacks = worker_counter(api, "ann", "middle_fallbacks")
        t0 = time.monotonic()
        h.check(echo_ok(env.port, ANN), "middle proxy down: ann's new connection works (direct)")
        h.check(time.monotonic() - t0 < 5, "... within %.1f s (fail fast)" % (time.monotonic() - t0))
        h.check(echo_ok(env.port, ANN), "... and the next one too")
        h.check(wait_for(lambda: worker_counter(api, "ann", "middle_fallbacks") >= fallbacks + 2, 5),
                "fallbacks counted in ann's status")
        h.check(wait_for(lambda: "middle_fallback" in user_events(api, "ann"), 5),
                "event middle_fallback recorded for ann (%s)" % user_events(api, "ann"))
        mp = MiddleProc(env.dir, secret_file, mp_port)
        before = len(mp.requests())
        h.check(wait_for(lambda: echo_ok(env.port, ANN) and len(mp.requests()) > before, 20, poll=0.5),
                "middle proxy back: ann relays through it again")
        h.check(wait_for(lambda: user_events(api, "ann")[-1:] == ["middle_restored"], 5),
                "event middle_restored recorded after it (%s)" % user_events(api, "ann"))
        h.check("middle_fallback" not in user_events(api, "bob"), "bob (no tag) has no fallback event")
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
    finally:
        if src:
            src.stop()
        if mp:
            mp.stop()
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_middle")
