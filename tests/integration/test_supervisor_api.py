#!/usr/bin/python3
"""Supervisor end to end, management HTTP API (docs/api.md) against the real
daemon, over <run_dir>/api.sock and over TCP with the bearer token:

1. user life cycle: POST (with limits and our own obfuscated2 secret), list,
   status running, links, an echo through the proxy, PATCH, disable (then
   masked byte-exact), enable, DELETE (cell gone, masked again);
2. a limit change reaches the cell's htb class (host side: rate_down, cell
   side: rate_up) within 1 s;
3. secret rotation with grace_s = 3: old and new secrets work during the
   grace; after it (+ one sweep) the old one goes to the mask host byte-exact;
4. usage history (by=day, by=month) survives a SIGTERM + restart;
5. a table of bad requests: each gets the right status and error.code, and
   the SQLite store (users, secrets, usage_period, usage_daily) is unchanged;
6. TCP: the token is printed once at first start; 401 without it, 200 with
   it; token rotation is 403 over TCP, 200 over the socket, the old token
   then gets 401 (and the new one survives the restart);
7. /metrics passes `promtool check metrics` and has mtwarden_user_bytes_total
   for every user;
8. the PNG QR code decodes (zbarimg) to links.tg[0].

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time

import harness as h
import sandbox as sb

CFG = "c723456789abcdef0123456789abcdef"     # declared in the file: read-only over the API
ANN = "a723456789abcdef0123456789abcdef"
BEA = "b723456789abcdef0123456789abcdef"
CAT = "dd" + "d723456789abcdef0123456789abcdef"  # a dd secret; stored as canonical hex
DAN = "e723456789abcdef0123456789abcdef"
GRACE_S = 3
TOKEN_RE = re.compile(r"^mtw_[A-Za-z0-9_-]{43}$")


# ------------------------------------------------------------------ clients


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def code(self):
        return ((self.json or {}).get("error") or {}).get("code") if isinstance(self.json, dict) else None

    def field(self):
        return ((self.json or {}).get("error") or {}).get("field") if isinstance(self.json, dict) else None

    def __repr__(self):
        return "%d %s" % (self.status, self.body[:300].decode("utf-8", "replace").strip())


class Api:
    """One request per connection, over the Unix socket or TCP."""

    def __init__(self, sock_path=None, tcp_port=None, token=None):
        self.sock_path = sock_path
        self.tcp_port = tcp_port
        self.token = token

    def conn(self, timeout=10):
        if self.sock_path:
            return UnixHTTPConnection(self.sock_path, timeout=timeout)
        return http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=timeout)

    def req(self, method, path, body=None, raw=None, ctype="application/json", headers=None, token=None):
        hdrs = dict(headers or {})
        data = None
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None and ctype is not None:
            hdrs["Content-Type"] = ctype
        tok = token if token is not None else self.token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        c = self.conn()
        try:
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            return Resp(r.status, r.getheaders(), r.read())
        finally:
            c.close()

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.req("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.req("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)


def wait_api(api, path, pred, timeout=15, poll=0.1):
    deadline = time.monotonic() + timeout
    r = None
    while True:
        try:
            r = api.get(path)
            if pred(r):
                return r
        except OSError:
            pass
        if time.monotonic() > deadline:
            return r
        time.sleep(poll)


def state_is(state):
    return lambda r: r.status == 200 and r.json.get("state") == state


def tag_for(secret):
    """dd secrets only accept the padded-intermediate tag (proto/identify.cpp)."""
    return b"\xdd" * 4 if len(secret) == 34 and secret[:2].lower() == "dd" else b"\xef" * 4


def client(secret):
    return h.Obfs2Client(secret, tag=tag_for(secret), dc=2)


class Stream:
    """One obfuscated2 connection through the proxy to the echo DC."""

    def __init__(self, port, secret, timeout=10):
        self.c = client(secret)
        self.s = h.connect(port, timeout=timeout)
        self.s.sendall(self.c.init)

    def roundtrip(self, n=4096):
        try:
            data = os.urandom(n)
            self.s.sendall(self.c.seal(data))
            return self.c.open(h.recv_exact(self.s, n)) == data
        except (OSError, ConnectionError) as e:
            print("roundtrip failed: %s" % e, flush=True)
            return False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def echo(port, secret, total=64 * 1024, chunk=16384, timeout=10):
    """An echo session with the tag the secret needs; True when every byte came back."""
    try:
        st = Stream(port, secret, timeout=timeout)
    except OSError as e:
        print("echo connect failed: %s" % e, flush=True)
        return False
    try:
        sent = 0
        while sent < total:
            n = min(chunk, total - sent)
            if not st.roundtrip(n):
                return False
            sent += n
        return True
    finally:
        st.close()


def masked_probe(env, secret, what, text=b"should reach the mask host"):
    """A new obfuscated2 connection with `secret`: the mask gets it byte-exact."""
    before = h.mask_records(env.mask_dir)
    cl = client(secret)
    payload = cl.init + cl.seal(text * 8)
    h.probe(env.port, payload)
    got = h.wait_new_record(env.mask_dir, before, timeout=5)
    h.check(got == payload, "%s: masked byte-exact (%s)" % (
        what, "no record" if got is None else "%d of %d bytes, equal=%s" % (len(got), len(payload), got == payload)))
    return got == payload


def try_masked(env, secret, timeout=3.0):
    """One probe; True when the mask host got it byte-exact, False when it did not."""
    before = h.mask_records(env.mask_dir)
    cl = client(secret)
    payload = cl.init + cl.seal(b"rotated out?" * 16)
    try:
        h.probe(env.port, payload, timeout=timeout)
    except OSError:
        pass
    got = h.wait_new_record(env.mask_dir, before, timeout=0.4)
    return got == payload


def tc_rate(argv):
    r = sb.run(argv, check=False)
    return r.stdout


# ------------------------------------------------------------------ store


def dump_store(env):
    """users, secrets, usage_period, usage_daily rows (no events table)."""
    db = os.path.join(env.state_dir, "state.db")
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        out = {}
        for table, order in (("users", "id"), ("secrets", "secret"), ("usage_period", "user_id, period_start"),
                             ("usage_daily", "user_id, day")):
            out[table] = c.execute("SELECT * FROM %s ORDER BY %s" % (table, order)).fetchall()
        return out
    finally:
        c.close()


# ------------------------------------------------------------------ scenarios


def scenario_failed_start_keeps_no_token(env):
    """A first start whose API port is taken fails: no token is stored or shown."""
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", env.api_port))
    busy.listen(1)
    try:
        r = subprocess.run(env.argv(), capture_output=True, text=True, timeout=60, preexec_fn=sb._pdeathsig)
    finally:
        busy.close()
    secrets = os.path.join(env.state_dir, "first-start-secrets.txt")
    shown = open(secrets).read() if os.path.exists(secrets) else ""
    h.check(r.returncode == 1 and "api" in r.stderr, "a start with the API port taken fails (%s %r)"
            % (r.returncode, r.stderr.strip()[-200:]))
    h.check(not os.path.exists(os.path.join(env.state_dir, "api_token.sha256")),
            "the failed start stored no token hash")
    h.check(token_from(r.stdout.splitlines()) is None and "bearer token" not in shown,
            "the failed start showed no token")


def scenario_tcp_token(env, api, token):
    h.check(token is not None and TOKEN_RE.match(token or "") is not None,
            "first start printed the API bearer token (%s...)" % ((token or "none")[:8]))
    path = os.path.join(env.state_dir, "api_token.sha256")
    st = os.stat(path)
    with open(path) as f:
        stored = f.read().strip()
    h.check(stat.S_IMODE(st.st_mode) == 0o600, "api_token.sha256 mode 0600 (%o)" % stat.S_IMODE(st.st_mode))
    h.check(token is not None and stored == hashlib.sha256(token.encode()).hexdigest(),
            "api_token.sha256 holds the SHA-256 of the token, not the token")
    h.check(token is None or token not in env.log_text(), "the token is not in the supervisor log")
    tcp = Api(tcp_port=env.api_port)
    r = tcp.get("/v1/status")
    h.check(r.status == 401 and r.code() == "unauthorized" and r.header("WWW-Authenticate") == "Bearer",
            "TCP without a token: 401 unauthorized, WWW-Authenticate: Bearer (%r, %s)" % (r, r.header("WWW-Authenticate")))
    r = tcp.get("/metrics")
    h.check(r.status == 401, "TCP /metrics without a token: 401 (%d)" % r.status)
    r = tcp.get("/v1/status", token="mtw_" + "A" * 43)
    h.check(r.status == 401 and r.code() == "unauthorized", "TCP with a wrong token: 401 (%r)" % r)
    r = tcp.get("/v1/status", headers={"Authorization": "Basic " + (token or "")})
    h.check(r.status == 401, "TCP with the token as Basic auth: 401 (%d)" % r.status)
    r = tcp.get("/v1/status", token=token)
    h.check(r.status == 200 and r.json.get("version") is not None and r.json.get("gate_ready") is True,
            "TCP with the token: 200 server status, gate ready (%r)" % r)
    r = tcp.get("/v1/users", token=token)
    h.check(r.status == 200 and [u["name"] for u in r.json["users"]] == ["cfg"], "TCP GET /v1/users: cfg only (%r)" % r)
    r = tcp.post("/v1/token/rotate", token=token)
    h.check(r.status == 403 and r.code() == "forbidden", "POST /v1/token/rotate over TCP: 403 forbidden (%r)" % r)
    r = tcp.get("/v1/status", token=token)
    h.check(r.status == 200, "the token still works after the refused rotation (%d)" % r.status)
    r = api.post("/v1/token/rotate")
    new = (r.json or {}).get("token") if r.status == 200 else None
    h.check(r.status == 200 and new is not None and TOKEN_RE.match(new) and new != token
            and r.header("Cache-Control") == "no-store",
            "POST /v1/token/rotate over the socket: 200, a new mtw_ token, Cache-Control no-store (%d %s)"
            % (r.status, r.header("Cache-Control")))
    r = tcp.get("/v1/status", token=token)
    h.check(r.status == 401 and r.code() == "unauthorized", "the old token now gets 401 (%r)" % r)
    r = tcp.get("/v1/status", token=new)
    h.check(r.status == 200, "the new token gets 200 (%d)" % r.status)
    with open(path) as f:
        stored = f.read().strip()
    h.check(new is not None and stored == hashlib.sha256(new.encode()).hexdigest(),
            "api_token.sha256 now holds the new token's hash")
    return new


def scenario_lifecycle(env, api):
    t0 = time.monotonic()
    r = api.post("/v1/users", {"name": "ann", "secrets": [ANN], "comment": "life cycle",
                               "limits": {"rate_down": "20mbit", "rate_up": "20mbit", "max_connections": 10,
                                          "quota": "10GiB"}})
    u = r.json if r.status == 201 else {}
    h.check(r.status == 201 and u.get("name") == "ann" and u.get("origin") == "runtime"
            and [s["secret"] for s in u.get("secrets", [])] == [ANN] and u.get("enabled") is True,
            "POST /v1/users ann: 201, runtime, our secret (%r)" % r)
    lim = u.get("limits", {})
    h.check(lim.get("rate_down_bps") == 20_000_000 and lim.get("rate_up_bps") == 20_000_000
            and lim.get("max_connections") == 10 and lim.get("quota_bytes") == 10 * 2**30,
            "ann's resolved limits (%s)" % lim)
    h.check(set(u.get("overrides", {})) == {"rate_down_bps", "rate_up_bps", "max_connections", "quota_bytes"},
            "ann's overrides are exactly the keys sent (%s)" % sorted(u.get("overrides", {})))
    r = api.get("/v1/users")
    names = [x["name"] for x in (r.json or {}).get("users", [])]
    h.check(r.status == 200 and "ann" in names and "cfg" in names, "GET /v1/users lists ann and cfg (%s)" % names)
    r = wait_api(api, "/v1/users/ann/status", state_is("running"), timeout=10, poll=0.05)
    dt = time.monotonic() - t0
    st = r.json if r and r.status == 200 else {}
    sb.log("ann running %.2f s after POST" % dt)
    h.check(st.get("state") == "running" and dt < 5 and st.get("cell") and st.get("worker_pid"),
            "ann's status: running within %.2f s, with a cell and worker (%s)" % (dt, st.get("state")))
    h.check((st.get("cell") or {}).get("shaper_down_bps") == 20_000_000,
            "ann's cell shaped to 20 Mbit/s down (%s)" % (st.get("cell") or {}).get("shaper_down_bps"))
    ann_ns = (st.get("cell") or {}).get("netns")
    r = api.get("/v1/users/ann/links")
    links = r.json if r.status == 200 else {}
    tg = links.get("tg") or []
    h.check(r.status == 200 and links.get("ports") == [env.port] and links.get("host") == "127.0.0.1"
            and len(tg) >= 1 and tg[0].startswith("tg://proxy?") and ANN in tg[0]
            and len(links.get("https") or []) == len(tg),
            "GET links: host 127.0.0.1, port %d, tg link with ann's secret (%s)" % (env.port, tg[:1]))
    m = re.search(r"[?&]secret=([0-9a-fA-F]+)", tg[0] if tg else "")
    link_secret = m.group(1) if m else None
    link_port = re.search(r"[?&]port=(\d+)", tg[0] if tg else "")
    h.check(link_port is not None and int(link_port.group(1)) == env.port, "the tg link names our port")
    ok = link_secret is not None and echo(env.port, link_secret, total=256 * 1024)
    h.check(ok, "an obfuscated2 echo through the proxy with the link's secret")

    r = api.patch("/v1/users/ann", {"comment": "patched", "limits": {"max_connections": 5, "quota": None}})
    u = r.json if r.status == 200 else {}
    h.check(r.status == 200 and u.get("comment") == "patched" and u["limits"]["max_connections"] == 5
            and u["limits"]["quota_bytes"] == 0 and "quota_bytes" not in u["overrides"],
            "PATCH ann: comment, max_connections 5, quota back to the default (%r)" % r)
    r = api.get("/v1/users/ann")
    h.check(r.status == 200 and r.json.get("comment") == "patched", "GET /v1/users/ann shows the patch")
    h.check(echo(env.port, ANN, total=64 * 1024), "ann still works after the PATCH")

    r = api.post("/v1/users/ann/disable")
    h.check(r.status == 200 and r.json.get("enabled") is False, "POST disable: 200, enabled false (%r)" % r)
    r = wait_api(api, "/v1/users/ann/status", state_is("disabled"), timeout=5)
    h.check(r is not None and r.status == 200 and r.json.get("state") == "disabled" and r.json.get("cell") is None,
            "ann's status: disabled, no cell (%r)" % r)
    masked_probe(env, ANN, "disabled ann's connection")
    r = api.post("/v1/users/ann/enable", raw=b"{}")
    h.check(r.status == 200 and r.json.get("enabled") is True, "POST enable {}: 200, enabled true (%r)" % r)
    r = wait_api(api, "/v1/users/ann/status", state_is("running"), timeout=10, poll=0.05)
    h.check(r is not None and r.status == 200 and r.json.get("state") == "running", "ann running again after enable")
    ok = False
    t_e = time.monotonic()
    while time.monotonic() - t_e < 5 and not ok:
        ok = echo(env.port, ANN, total=64 * 1024)
        if not ok:
            time.sleep(0.1)
    h.check(ok, "ann works again after enable")

    ann_ns = ((r.json or {}).get("cell") or {}).get("netns") or ann_ns
    r = api.delete("/v1/users/ann")
    h.check(r.status == 204 and r.body == b"", "DELETE ann: 204, empty body (%r)" % r)
    r = api.get("/v1/users/ann")
    h.check(r.status == 404 and r.code() == "not_found", "GET ann after DELETE: 404 (%r)" % r)
    # The host veth goes with the namespace, asynchronously: the kernel's
    # netns cleanup deletes it once the killed worker has left.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        # The name goes at once; the host end of the veth when the kernel's
        # asynchronous netns cleanup has run (netns/cell.cpp, Cell::destroy).
        ns, links_, _ = sb.cell_objects(env.prefix)
        if ann_ns not in ns and len(links_) == 1:
            break
        time.sleep(0.1)
    ns, links_, _ = sb.cell_objects(env.prefix)
    h.check(ann_ns is not None and ann_ns not in ns and len(ns) == 1 and len(links_) == 1,
            "ann's cell %s gone; only cfg's cell left (%s %s)" % (ann_ns, ns, links_))
    masked_probe(env, ANN, "deleted ann's connection")


def wait_tc(argv, needle, timeout=3.0):
    t0 = time.monotonic()
    out = ""
    while time.monotonic() - t0 < timeout:
        out = tc_rate(argv)
        if needle in out:
            return time.monotonic() - t0, out
        time.sleep(0.01)
    return None, out


def scenario_tc(env, api):
    r = api.post("/v1/users", {"name": "bea", "secrets": [BEA], "limits": {"rate_down": "10mbit", "rate_up": "10mbit"}})
    h.check(r.status == 201, "POST bea: 201 (%r)" % r)
    r = wait_api(api, "/v1/users/bea/status", state_is("running"), timeout=10, poll=0.05)
    cell = ((r.json or {}) if r else {}).get("cell") or {}
    host_if, netns = cell.get("host_if"), cell.get("netns")
    h.check(host_if is not None and netns is not None, "bea running with a cell (%s, %s)" % (host_if, netns))
    if not host_if:
        return {}
    host_argv = ["tc", "class", "show", "dev", host_if]
    cell_argv = ["ip", "netns", "exec", netns, "tc", "class", "show", "dev", "eth0"]
    out_h, out_c = tc_rate(host_argv), tc_rate(cell_argv)
    h.check(sb.tc_rate_text(10_000_000) in out_h and sb.tc_rate_text(10_000_000) in out_c,
            "bea's htb classes at the wire rate of 10 Mbit/s payload on both sides (%s | %s)" % (out_h.strip()[:100], out_c.strip()[:100]))
    figures = {}
    t0 = time.monotonic()
    r = api.patch("/v1/users/bea", {"limits": {"rate_down": "3mbit"}})
    t_ans = time.monotonic() - t0
    dt, out = wait_tc(host_argv, sb.tc_rate_text(3_000_000))
    total = None if dt is None else dt + t_ans
    figures["rate_down"] = (t_ans, total)
    sb.log("rate_down 3mbit: PATCH answered in %.1f ms, tc shows it %s ms after the request"
           % (t_ans * 1e3, "%.1f" % (total * 1e3) if total is not None else "never (3 s)"))
    h.check(r.status == 200 and r.json["limits"]["rate_down_bps"] == 3_000_000,
            "PATCH bea rate_down 3mbit: 200 (%r)" % r)
    h.check(total is not None and total < 1.0,
            "host-side htb class of bea (%s) at 3Mbit within 1 s (%s; %s)"
            % (host_if, "%.3f s" % total if total is not None else "not seen", out.strip()[:120]))
    h.check(sb.tc_rate_text(10_000_000) in tc_rate(cell_argv), "bea's cell-side (up) class untouched by rate_down")
    t0 = time.monotonic()
    r = api.patch("/v1/users/bea", {"limits": {"rate_up": "3mbit"}})
    t_ans = time.monotonic() - t0
    dt, out = wait_tc(cell_argv, sb.tc_rate_text(3_000_000))
    total = None if dt is None else dt + t_ans
    figures["rate_up"] = (t_ans, total)
    sb.log("rate_up 3mbit: PATCH answered in %.1f ms, tc shows it %s ms after the request"
           % (t_ans * 1e3, "%.1f" % (total * 1e3) if total is not None else "never (3 s)"))
    h.check(r.status == 200 and r.json["limits"]["rate_up_bps"] == 3_000_000, "PATCH bea rate_up 3mbit: 200 (%r)" % r)
    h.check(total is not None and total < 1.0,
            "cell-side htb class of bea (%s eth0) at 3Mbit within 1 s (%s; %s)"
            % (netns, "%.3f s" % total if total is not None else "not seen", out.strip()[:120]))
    r = api.get("/v1/users/bea/status")
    c = (r.json or {}).get("cell") or {}
    h.check(c.get("shaper_up_bps") == 3_000_000 and c.get("shaper_down_bps") == 3_000_000
            and r.json.get("rate_up_bps") == 3_000_000 and r.json.get("rate_down_bps") == 3_000_000,
            "bea's status: shaper and rates in force 3 Mbit/s both ways (%s)" % c)
    return figures


def scenario_rotation(env, api):
    r = api.post("/v1/users", {"name": "cat", "secrets": [CAT]})
    old = r.json["secrets"][0]["secret"] if r.status == 201 else None
    h.check(r.status == 201 and old == CAT, "POST cat with a dd secret: 201, stored as %s (%r)" % (old, r))
    r = wait_api(api, "/v1/users/cat/status", state_is("running"), timeout=10, poll=0.05)
    h.check(r is not None and r.json.get("state") == "running", "cat running")
    h.check(echo(env.port, CAT, total=64 * 1024), "cat works with its first secret")
    figures = {}
    wall0 = time.time()
    t_rot = time.monotonic()
    r = api.post("/v1/users/cat/rotate", {"grace_s": GRACE_S})
    secs = (r.json or {}).get("secrets", []) if r.status == 200 else []
    new = secs[-1]["secret"] if secs else None
    h.check(r.status == 200 and len(secs) == 2 and secs[0]["secret"] == CAT and new != CAT,
            "rotate grace_s=%d: 200, old then new secret (%r)" % (GRACE_S, r))
    exp = secs[0].get("expires_at") if secs else None
    h.check(exp is not None and abs(exp - (wall0 + GRACE_S)) <= 1.5 and secs[-1].get("expires_at") is None,
            "the old secret's expires_at is now + %d s (%s vs %.0f), the new one has none" % (GRACE_S, exp, wall0 + GRACE_S))
    h.check(new is not None and new.startswith("dd") and len(new) == 34,
            "the generated secret is of the same kind as the old (dd...) (%s)" % new)
    if not new:
        return figures
    r = api.get("/v1/users/cat/links")
    tg = (r.json or {}).get("tg", [])
    h.check(r.status == 200 and any(new in l for l in tg), "cat's links carry the new secret")
    ok_new = echo(env.port, new, total=64 * 1024)
    t_a = time.monotonic() - t_rot
    ok_old = echo(env.port, CAT, total=64 * 1024)
    t_b = time.monotonic() - t_rot
    h.check(ok_new, "the new secret works at once (%.2f s after the rotation)" % t_a)
    h.check(ok_old, "the old secret still works during the grace (%.2f s after the rotation)" % t_b)
    # A connection opened during the grace period lives on past it.
    st = Stream(env.port, CAT, timeout=10)
    h.check(st.roundtrip(1024), "a connection with the old secret opened in the grace period echoes")
    while time.monotonic() - t_rot < 1.5:
        time.sleep(0.05)
    ok_old2 = echo(env.port, CAT, total=16 * 1024)
    h.check(ok_old2, "the old secret still works %.2f s after the rotation" % (time.monotonic() - t_rot))
    # Poll: when does the old secret go to the mask host?
    t_masked = None
    last_ok = None
    while time.monotonic() - t_rot < GRACE_S + 5:
        if try_masked(env, CAT):
            t_masked = time.monotonic() - t_rot
            break
        last_ok = time.monotonic() - t_rot
        time.sleep(0.1)
    figures["old_last_served"] = last_ok
    figures["old_masked"] = t_masked
    sb.log("rotation: old secret last served %s s, masked from %s s after the rotation (grace %d s, expires_at %s)"
           % ("%.2f" % last_ok if last_ok else "-", "%.2f" % t_masked if t_masked else "never", GRACE_S, exp))
    h.check(t_masked is not None and t_masked <= GRACE_S + 2.5,
            "the old secret goes to the mask host byte-exact within grace + 2.5 s (%s)"
            % ("%.2f s" % t_masked if t_masked else "not within %d s" % (GRACE_S + 5)))
    # expires_at has whole-second resolution (now truncated + grace_s), so the
    # stored deadline may lie up to 1 s short of rotation + grace_s; the old
    # secret must at least keep working until that stored deadline.
    eff = (exp or 0) - wall0
    figures["effective_grace"] = eff
    h.check(t_masked is None or wall0 + t_masked >= (exp or 0) - 0.05,
            "... and not before its stored expires_at (masked %.2f s after the rotation, expires_at - rotation = %.2f s)"
            % (t_masked or 0, eff))
    if eff < GRACE_S:
        sb.log("note: grace_s=%d gave an effective grace of %.2f s (expires_at = truncated now + grace_s)" % (GRACE_S, eff))
    masked_probe(env, CAT, "after the grace, the old secret")
    h.check(st.roundtrip(1024), "the connection opened during the grace still echoes after it")
    st.close()
    h.check(echo(env.port, new, total=64 * 1024), "the new secret works after the grace")
    r = api.get("/v1/users/cat")
    secs = (r.json or {}).get("secrets", [])
    h.check(r.status == 200 and [s["secret"] for s in secs] == [new], "after the sweep cat has only the new secret (%s)"
            % [s["secret"][:8] for s in secs])
    r = api.get("/v1/events?after=0&limit=1000")
    evs = (r.json or {}).get("events", [])
    kinds = [(e.get("user"), e.get("kind")) for e in evs]
    want = [("ann", "user_created"), ("ann", "user_disabled"), ("cat", "secret_rotated"), ("cat", "secret_expired")]
    h.check(r.status == 200 and all(k in kinds for k in want)
            and all(evs[i]["seq"] < evs[i + 1]["seq"] for i in range(len(evs) - 1)),
            "GET /v1/events: oldest first, has %s (%s)" % (want, kinds[-12:]))
    last = evs[-1]["seq"] if evs else 0
    r = api.get("/v1/events?after=%d" % last)
    h.check(r.status == 200 and r.json.get("events") == [], "GET /v1/events?after=<last seq>: empty")
    return figures


def scenario_metrics_qr(env, api):
    r = api.get("/metrics")
    ctype = r.header("Content-Type")
    h.check(r.status == 200 and ctype == "text/plain; version=0.0.4; charset=utf-8",
            "GET /metrics: 200, %s" % ctype)
    text = r.body.decode()
    users = [u["name"] for u in api.get("/v1/users").json["users"]]
    missing = [(u, d) for u in users for d in ("up", "down")
               if not re.search(r'^mtwarden_user_bytes_total\{[^}]*user="%s"[^}]*direction="%s"|'
                                r'^mtwarden_user_bytes_total\{[^}]*direction="%s"[^}]*user="%s"'
                                % (u, d, d, u), text, re.M)]
    h.check(not missing, "mtwarden_user_bytes_total up/down for every user %s (missing %s)" % (users, missing))
    promtool = shutil.which("promtool")
    h.check(promtool is not None, "promtool installed (scripts/deps.sh --test: prometheus)")
    if promtool:
        p = subprocess.run([promtool, "check", "metrics"], input=r.body, capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode(errors="replace").strip()
        h.check(p.returncode == 0 and out == "", "promtool check metrics: clean (rc %d, %r)" % (p.returncode, out[:500]))

    # QR of cat's first tg link.
    links = api.get("/v1/users/cat/links").json
    tg0 = links["tg"][0]
    r = api.get("/v1/users/cat/qr?format=png")
    h.check(r.status == 200 and r.header("Content-Type") == "image/png" and r.body[:8] == b"\x89PNG\r\n\x1a\n",
            "GET qr?format=png: 200 image/png (%d bytes)" % len(r.body))
    zbar = shutil.which("zbarimg")
    h.check(zbar is not None, "zbarimg installed (scripts/deps.sh --test: zbar-tools)")
    if zbar:
        fd, path = tempfile.mkstemp(suffix=".png")
        with os.fdopen(fd, "wb") as f:
            f.write(r.body)
        p = subprocess.run([zbar, "--raw", "-q", path], capture_output=True, text=True, timeout=30)
        os.unlink(path)
        got = p.stdout.strip()
        h.check(p.returncode == 0 and got == tg0, "zbarimg decodes the PNG to links.tg[0] (%r)" % got[:120])
    r = api.get("/v1/users/cat/qr?format=svg")
    h.check(r.status == 200 and r.header("Content-Type") == "image/svg+xml" and b"<svg" in r.body,
            "GET qr?format=svg: 200 image/svg+xml")


def usage_today(api, name):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    month = today[:7]
    d = api.get("/v1/users/%s/usage?by=day" % name)
    m = api.get("/v1/users/%s/usage?by=month" % name)
    di = (d.json or {}).get("items", []) if d.status == 200 else []
    mi = (m.json or {}).get("items", []) if m.status == 200 else []
    dd = di[-1] if di and di[-1]["date"] == today else None
    mm = mi[-1] if mi and mi[-1]["date"] == month else None
    return d, m, dd, mm, len(di), len(mi)


def scenario_usage_restart(env, api):
    r = api.post("/v1/users", {"name": "dan", "secrets": [DAN]})
    h.check(r.status == 201, "POST dan: 201")
    r = wait_api(api, "/v1/users/dan/status", state_is("running"), timeout=10, poll=0.05)
    h.check(r is not None and r.json.get("state") == "running", "dan running")
    n = 2 * 1024 * 1024
    h.check(echo(env.port, DAN, total=n, chunk=65536), "dan echoes 2 MiB")
    time.sleep(2.2)  # at least one sweep after the traffic
    d, m, dd, mm, nd, nm = usage_today(api, "dan")
    h.check(d.status == 200 and d.json.get("by") == "day" and nd == 30 and dd is not None
            and dd["bytes_up"] >= n and dd["bytes_down"] >= n and dd["bytes_total"] == dd["bytes_up"] + dd["bytes_down"],
            "usage by=day: 30 items, today has >= 2 MiB each way (%s)" % dd)
    h.check(m.status == 200 and m.json.get("by") == "month" and nm == 12 and mm is not None
            and mm["bytes_total"] >= dd["bytes_total"] if dd and mm else False,
            "usage by=month: 12 items, this month >= today (%s)" % mm)
    st = api.get("/v1/users/dan/status").json
    h.check(st["quota"]["used_bytes"] >= 2 * n, "dan's status quota.used_bytes >= 4 MiB (%s)" % st["quota"]["used_bytes"])
    return dd, mm


def bad_requests(env, api):
    """(what, method, path, kwargs, status, field or None)."""
    big = json.dumps({"name": "big", "comment": "x" * 2048})
    long_comment = "y" * 257
    T = []

    def add(what, method, path, status, field=None, **kw):
        T.append((what, method, path, kw, status, field))

    add("malformed JSON", "POST", "/v1/users", 400, raw='{"name": "x1",')
    add("trailing data", "POST", "/v1/users", 400, raw='{"name": "x1"} {}')
    add("non-object body", "POST", "/v1/users", 400, raw='["x1"]')
    add("empty body on POST users", "POST", "/v1/users", 400, raw="")
    add("missing name", "POST", "/v1/users", 400, field="name", body={"comment": "no name"})
    add("unknown field", "POST", "/v1/users", 400, field="colour", body={"name": "x1", "colour": "red"})
    add("name of wrong type", "POST", "/v1/users", 400, field="name", body={"name": 5})
    add("bad name", "POST", "/v1/users", 400, field="name", body={"name": "bad name!"})
    add("name of 65 characters", "POST", "/v1/users", 400, field="name", body={"name": "n" * 65})
    add("enabled as a string", "POST", "/v1/users", 400, field="enabled", body={"name": "x1", "enabled": "true"})
    add("expires_at bad date", "POST", "/v1/users", 400, field="expires_at", body={"name": "x1", "expires_at": "2026-13-01"})
    add("expires_at beyond 9999", "POST", "/v1/users", 400, field="expires_at", body={"name": "x1", "expires_at": 253402300800})
    add("expires_at as a float", "POST", "/v1/users", 400, field="expires_at", body={"name": "x1", "expires_at": 1.0})
    add("comment of 257 characters", "POST", "/v1/users", 400, field="comment", body={"name": "x1", "comment": long_comment})
    add("secrets not an array", "POST", "/v1/users", 400, field="secrets", body={"name": "x1", "secrets": ANN})
    add("bad secret text", "POST", "/v1/users", 400, field="secrets[1]", body={"name": "x1", "secrets": ["f" * 32, "nothex"]})
    add("17 secrets", "POST", "/v1/users", 400, field="secrets",
        body={"name": "x1", "secrets": ["%032x" % (0x1000 + i) for i in range(17)]})
    add("bad tls_domain", "POST", "/v1/users", 400, field="tls_domain", body={"name": "x1", "tls_domain": "bad domain!"})
    add("limits not an object", "POST", "/v1/users", 400, field="limits", body={"name": "x1", "limits": [1]})
    add("unknown limit", "POST", "/v1/users", 400, field="limits.speed", body={"name": "x1", "limits": {"speed": 1}})
    add("bad rate text", "POST", "/v1/users", 400, field="limits.rate_up", body={"name": "x1", "limits": {"rate_up": "20 parsecs"}})
    add("rate below 8 kbit/s", "POST", "/v1/users", 400, field="limits.rate_down", body={"name": "x1", "limits": {"rate_down": 1000}})
    add("rate above 100 gbit/s", "POST", "/v1/users", 400, field="limits.rate_up", body={"name": "x1", "limits": {"rate_up": "200gbit"}})
    add("rate as a float", "POST", "/v1/users", 400, field="limits.rate_up", body={"name": "x1", "limits": {"rate_up": 1.5e6}})
    add("throttle_rate unlimited", "POST", "/v1/users", 400, field="limits.throttle_rate",
        body={"name": "x1", "limits": {"throttle_rate": "unlimited"}})
    add("bad size text", "POST", "/v1/users", 400, field="limits.quota", body={"name": "x1", "limits": {"quota": "5 furlongs"}})
    add("negative quota", "POST", "/v1/users", 400, field="limits.quota", body={"name": "x1", "limits": {"quota": -1}})
    add("warn_percent 100", "POST", "/v1/users", 400, field="limits.warn_percent", body={"name": "x1", "limits": {"warn_percent": 100}})
    add("warn_percent 50.0", "POST", "/v1/users", 400, field="limits.warn_percent", body={"name": "x1", "limits": {"warn_percent": 50.0}})
    add("anchor_day 32", "POST", "/v1/users", 400, field="limits.anchor_day", body={"name": "x1", "limits": {"anchor_day": 32}})
    add("weekly anchor_day 8", "POST", "/v1/users", 400, field="limits.anchor_day",
        body={"name": "x1", "limits": {"period": "weekly", "anchor_day": 8}})
    add("period yearly", "POST", "/v1/users", 400, field="limits.period", body={"name": "x1", "limits": {"period": "yearly"}})
    add("idle_teardown_s 5", "POST", "/v1/users", 400, field="limits.idle_teardown_s", body={"name": "x1", "limits": {"idle_teardown_s": 5}})
    add("max_connections 1000001", "POST", "/v1/users", 400, field="limits.max_connections",
        body={"name": "x1", "limits": {"max_connections": 1000001}})
    add("max_unique_ips -1", "POST", "/v1/users", 400, field="limits.max_unique_ips", body={"name": "x1", "limits": {"max_unique_ips": -1}})
    add("bandwidth_weight 0", "POST", "/v1/users", 400, field="limits.bandwidth_weight",
        body={"name": "x1", "limits": {"bandwidth_weight": 0}})
    add("bandwidth_weight 1001", "POST", "/v1/users", 400, field="limits.bandwidth_weight",
        body={"name": "x1", "limits": {"bandwidth_weight": 1001}})
    add("on_demand as a string", "POST", "/v1/users", 400, field="limits.on_demand", body={"name": "x1", "limits": {"on_demand": "yes"}})
    add("one bad field after good ones", "POST", "/v1/users", 400, field="limits.warn_percent",
        body={"name": "x1", "secrets": ["%032x" % 0x77], "limits": {"rate_up": "5mbit", "warn_percent": 0}})
    add("duplicate name", "POST", "/v1/users", 409, body={"name": "bea"})
    add("duplicate name of a config user", "POST", "/v1/users", 409, body={"name": "cfg"})
    add("another user's secret", "POST", "/v1/users", 409, body={"name": "x1", "secrets": [BEA]})
    add("a config user's secret", "POST", "/v1/users", 409, body={"name": "x1", "secrets": [CFG]})
    add("body over body_limit (2 KiB)", "POST", "/v1/users", 413, raw=big)
    add("text/plain body", "POST", "/v1/users", 415, raw='{"name": "x1"}', ctype="text/plain")
    add("body without a content type", "POST", "/v1/users", 415, raw='{"name": "x1"}', ctype=None)
    add("unknown user GET", "GET", "/v1/users/nobody", 404)
    add("unknown user PATCH", "PATCH", "/v1/users/nobody", 404, body={"comment": "x"})
    add("unknown user DELETE", "DELETE", "/v1/users/nobody", 404)
    add("unknown user rotate", "POST", "/v1/users/nobody/rotate", 404)
    add("unknown user usage", "GET", "/v1/users/nobody/usage", 404)
    add("invalid name in the path", "GET", "/v1/users/bad%20name", 404)
    add("unknown path", "GET", "/v1/nothing", 404)
    add("unknown user action", "POST", "/v1/users/bea/explode", 404)
    add("DELETE /v1/users", "DELETE", "/v1/users", 405)
    add("PUT a user", "PUT", "/v1/users/bea", 405, body={"comment": "x"})
    add("GET rotate", "GET", "/v1/users/bea/rotate", 405)
    add("POST status", "POST", "/v1/status", 405)
    add("GET reload", "GET", "/v1/reload", 405)
    add("PATCH name (not patchable)", "PATCH", "/v1/users/bea", 400, field="name", body={"name": "bea2"})
    add("PATCH empty body", "PATCH", "/v1/users/bea", 400, raw="")
    add("PATCH bad rate", "PATCH", "/v1/users/bea", 400, field="limits.rate_down", body={"limits": {"rate_down": "fast"}})
    add("enable with a field", "POST", "/v1/users/bea/enable", 400, field="force", body={"force": True})
    add("reset with a field", "POST", "/v1/users/bea/reset", 400, field="all", body={"all": 1})
    add("rotate grace_s -1", "POST", "/v1/users/bea/rotate", 400, field="grace_s", body={"grace_s": -1})
    add("rotate grace_s too large", "POST", "/v1/users/bea/rotate", 400, field="grace_s", body={"grace_s": 31536001})
    add("rotate bad secret", "POST", "/v1/users/bea/rotate", 400, field="secret", body={"secret": "zz"})
    add("rotate to another user's secret", "POST", "/v1/users/bea/rotate", 409, body={"secret": DAN})
    add("rotate to its own secret", "POST", "/v1/users/bea/rotate", 409, body={"secret": BEA})
    add("PATCH config user", "PATCH", "/v1/users/cfg", 403, body={"comment": "no"})
    add("disable config user", "POST", "/v1/users/cfg/disable", 403)
    add("rotate config user", "POST", "/v1/users/cfg/rotate", 403)
    add("DELETE config user", "DELETE", "/v1/users/cfg", 403)
    add("usage by=week", "GET", "/v1/users/bea/usage?by=week", 400, field="by")
    add("usage bad from", "GET", "/v1/users/bea/usage?from=2026-1-1", 400, field="from")
    add("usage month with by=day", "GET", "/v1/users/bea/usage?to=2026-01", 400, field="to")
    add("usage from after to", "GET", "/v1/users/bea/usage?from=2026-02-01&to=2026-01-01", 400, field="from")
    add("usage over 3660 days", "GET", "/v1/users/bea/usage?from=2000-01-01&to=2026-01-01", 400, field="from")
    add("usage over 1200 months", "GET", "/v1/users/bea/usage?by=month&from=1900-01&to=2026-01", 400, field="from")
    add("usage unknown parameter", "GET", "/v1/users/bea/usage?foo=1", 400, field="foo")
    add("usage parameter twice", "GET", "/v1/users/bea/usage?by=day&by=month", 400, field="by")
    add("qr format gif", "GET", "/v1/users/bea/qr?format=gif", 400, field="format")
    add("qr index out of range", "GET", "/v1/users/bea/qr?index=5", 400, field="index")
    add("events limit 0", "GET", "/v1/events?limit=0", 400, field="limit")
    add("events after -1", "GET", "/v1/events?after=-1", 400, field="after")
    add("reload with a field", "POST", "/v1/reload", 400, field="x", body={"x": 1})
    add("token rotate with a field", "POST", "/v1/token/rotate", 400, field="x", body={"x": 1})
    add("status with a query parameter", "GET", "/v1/status?verbose=1", 400, field="verbose")
    return T


def scenario_bad_requests(env, api, token):
    time.sleep(1.5)  # let any accounting of earlier traffic settle
    before = dump_store(env)
    users_before = [u["name"] for u in api.get("/v1/users").json["users"]]
    table = bad_requests(env, api)
    passed = 0
    for what, method, path, kw, status, field in table:
        try:
            r = api.req(method, path, **kw)
        except (OSError, http.client.HTTPException) as e:
            h.check(False, "bad request %r: %s %s -> exception %r" % (what, method, path, e))
            continue
        code = h_code(status)
        ok = r.status == status and r.code() == code and (field is None or r.field() == field) \
            and isinstance((r.json or {}).get("error", {}).get("message"), str)
        if status == 405:
            ok = ok and bool(r.header("Allow"))
        if ok:
            passed += 1
        else:
            h.check(False, "bad request %r: %s %s -> want %d %s%s, got %r (field %s, Allow %s)"
                    % (what, method, path, status, code, " field " + field if field else "", r, r.field(), r.header("Allow")))
    h.check(passed == len(table), "%d/%d bad requests got the right status, error.code and field" % (passed, len(table)))
    r = api.req("DELETE", "/v1/users")
    h.check(r.header("Allow") == "GET, POST", "405 on /v1/users lists Allow: GET, POST (%s)" % r.header("Allow"))
    # The TCP listener rejects the same way (and with a token).
    tcp = Api(tcp_port=env.api_port, token=token)
    r = tcp.post("/v1/users", raw='{"name": ', ctype="application/json")
    h.check(r.status == 400 and r.code() == "bad_request", "malformed JSON over TCP: 400 (%r)" % r)
    after = dump_store(env)
    diff = [t for t in before if before[t] != after[t]]
    h.check(not diff, "the store (users, secrets, usage_period, usage_daily: %s rows) is unchanged by the %d bad requests%s"
            % ({t: len(v) for t, v in before.items()}, len(table), "" if not diff else " (changed: %s)" % diff))
    users_after = [u["name"] for u in api.get("/v1/users").json["users"]]
    h.check(users_after == users_before, "GET /v1/users unchanged (%s)" % users_after)
    r = api.get("/v1/users/bea")
    h.check(r.status == 200 and [s["secret"] for s in r.json["secrets"]] == [BEA] and r.json["enabled"] is True
            and r.json["limits"]["rate_down_bps"] == 3_000_000, "bea unchanged (secret, enabled, limits)")
    r = api.get("/v1/users/cfg")
    h.check(r.status == 200 and r.json.get("origin") == "config" and r.json.get("enabled") is True,
            "cfg unchanged, origin config")
    # Resetting the period usage is an operation, not a change of the file's
    # declaration: allowed for a config user too (docs/openapi.yaml lists no 403).
    r = api.post("/v1/users/cfg/reset")
    h.check(r.status == 200 and r.json.get("origin") == "config" and r.json["status"]["quota"]["used_bytes"] == 0,
            "POST /v1/users/cfg/reset (a config user): 200, usage 0 (%r)" % r)
    return len(table)


def h_code(status):
    return {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
            408: "request_timeout", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
            422: "unprocessable"}.get(status, "internal")


def token_from(lines):
    for i, l in enumerate(lines):
        if l.startswith("API bearer token") and i + 1 < len(lines):
            return lines[i + 1].strip()
    return None


def first_start_token(env):
    """The token of the first start: stdout is a pipe here, not a terminal,
    so it is in <state_dir>/first-start-secrets.txt (0600), never on stdout."""
    h.check(token_from(env.sup.all_lines) is None, "the token is not printed when stdout is not a terminal")
    path = os.path.join(env.state_dir, "first-start-secrets.txt")
    if not os.path.exists(path):
        return None
    h.check(stat.S_IMODE(os.stat(path).st_mode) == 0o600,
            "first-start-secrets.txt mode 0600 (%o)" % stat.S_IMODE(os.stat(path).st_mode))
    h.check("first-start secrets not printed" in env.log_text() and path in env.log_text(),
            "the log says where the first-start secrets are")
    with open(path) as f:
        return token_from(f.read().splitlines())


def test():
    env = sb.Setup("api", pool="10.207.0.0/16", prefix="mta", nat=False, uid_first=270000)
    env.api_port = sb.free_port()
    try:
        env.write_config([{"name": "cfg", "secret": CFG}],
                         sections={"server": {"public_host": "127.0.0.1"},
                                   "api": {"tcp": "127.0.0.1:%d" % env.api_port, "body_limit": "1KiB"}})
        scenario_failed_start_keeps_no_token(env)
        env.start()
        env.require_running(["cfg"])
        token = first_start_token(env)
        sock = os.path.join(env.run_dir, "api.sock")
        st = os.stat(sock)
        h.check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
                "api.sock is a socket, mode 0660 (%o)" % stat.S_IMODE(st.st_mode))
        api = Api(sock_path=sock)
        # Keep-alive: several requests on one Unix-socket connection.
        c = UnixHTTPConnection(sock)
        got = []
        for path in ("/v1/status", "/v1/users", "/v1/users/cfg/status"):
            c.request("GET", path)
            rr = c.getresponse()
            rr.read()
            got.append(rr.status)
        c.close()
        h.check(got == [200, 200, 200], "three requests on one kept-alive socket connection: %s" % got)
        r = api.get("/v1/status")
        h.check(r.status == 200 and r.json.get("users_total") == 1, "GET /v1/status over the socket: 200 (%r)" % r)

        sb.log("--- 6: TCP and the bearer token")
        token = scenario_tcp_token(env, api, token)
        sb.log("--- 1: user life cycle")
        scenario_lifecycle(env, api)
        sb.log("--- 2: limit change -> tc")
        tc_fig = scenario_tc(env, api)
        sb.log("--- 3: secret rotation")
        rot_fig = scenario_rotation(env, api)
        sb.log("--- 7, 8: metrics, QR")
        scenario_metrics_qr(env, api)
        sb.log("--- 4: usage history across a restart")
        dd, mm = scenario_usage_restart(env, api)
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        lines_before = len(env.sup.all_lines)
        os.unlink(os.path.join(env.state_dir, "first-start-secrets.txt"))
        env.start()
        env.require_running(["cfg", "bea", "cat", "dan"])
        h.check(token_from(env.sup.all_lines) is None
                and not os.path.exists(os.path.join(env.state_dir, "first-start-secrets.txt")),
                "the second start shows no token (%d stdout lines before)" % lines_before)
        d, m, dd2, mm2, _, _ = usage_today(api, "dan")
        h.check(dd is not None and dd2 is not None and dd2["bytes_up"] >= dd["bytes_up"]
                and dd2["bytes_down"] >= dd["bytes_down"],
                "after the restart by=day today >= before (%s vs %s)" % (dd2, dd))
        h.check(mm is not None and mm2 is not None and mm2["bytes_total"] >= mm["bytes_total"],
                "after the restart by=month >= before (%s vs %s)" % (mm2, mm))
        r = Api(tcp_port=env.api_port, token=token).get("/v1/status")
        h.check(r.status == 200, "the rotated token still works after the restart (%d)" % r.status)
        r = api.get("/v1/users/cat")
        h.check(r.status == 200 and len(r.json["secrets"]) == 1 and r.json["origin"] == "runtime",
                "runtime user cat kept across the restart with its rotated secret")

        sb.log("--- 5: bad requests")
        n = scenario_bad_requests(env, api, token)

        rc = env.stop()
        h.check(rc == 0, "final SIGTERM: exit 0 (%s)" % rc)
        ns, links, tables = sb.cell_objects(env.prefix)
        h.check(ns == [] and links == [], "no cells left after the stop (%s %s)" % (ns, links))
        print("FIGURES: tc rate_down PATCH answer %.1f ms, visible %.1f ms; rate_up PATCH answer %.1f ms, visible %.1f ms; "
              "rotation grace %d s (stored deadline %.2f s after it): old secret last served at %s s, masked from %s s; %d bad requests"
              % (tc_fig.get("rate_down", (0, 0))[0] * 1e3, (tc_fig.get("rate_down", (0, 0))[1] or -1) * 1e3,
                 tc_fig.get("rate_up", (0, 0))[0] * 1e3, (tc_fig.get("rate_up", (0, 0))[1] or -1) * 1e3,
                 GRACE_S, rot_fig.get("effective_grace", -1), "%.2f" % rot_fig["old_last_served"] if rot_fig.get("old_last_served") else "-",
                 "%.2f" % rot_fig["old_masked"] if rot_fig.get("old_masked") else "never", n), flush=True)
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_api")
