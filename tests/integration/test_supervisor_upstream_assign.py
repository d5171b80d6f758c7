#!/usr/bin/python3
"""Supervisor end to end: per-user upstream assignment through the API and
live egress changes, with real dante-server and microsocks (socks_common.py)
reached from the users' cells through the real gate.

- ann, created through the API with no upstream, dials direct (the DC sees
  her cell's address).
- PATCH gives ann the dante upstream (auth = "user-name"): her new
  connections reach the DC from dante's address and dante's log names her,
  while a transfer opened before the PATCH continues unbroken; her worker
  is not restarted.
- An invalid PATCH (unknown upstream; a user-secret upstream without a
  password) is 400 naming the field and changes nothing; a user declared in
  the file cannot be changed (403).
- `mtwardenctl users set ann --upstreams direct` takes her back to direct.
- bea is created with a user-secret upstream and her password: dante
  accepts her; the password is never returned nor logged.
- carl's upstream "moving" points at a dead port; a reload that moves it to
  microsocks reaches his running worker (no restart).
- microsocks killed: carl's next connection fails, the upstream is marked
  down and an `upstream_down` event appears in /v1/events; microsocks back:
  `upstream_up`.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import json
import os
import re
import socket
import sys
import subprocess
import time

import harness as h
import sandbox as sb
from socks_common import DANTE_PORT, DEAD_PORT, MICRO_PORT, dc_lines_since, read, start_dante, \
    start_microsocks

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import UnixHTTPConnection  # noqa: E402

KEYS = {
    "filed": "0123456789abcdef0123456789abce01",
    "ann": "0123456789abcdef0123456789abce02",
    "bea": "0123456789abcdef0123456789abce03",
    "carl": "0123456789abcdef0123456789abce04",
}
BEA_PW = "bea-Upstream-Pw-7"
CTL = os.environ.get("MTW_CTL", "build/asan/ctl/mtwardenctl")



def api(env, method, path, body=None):
    """(status, parsed JSON or None, raw text) over the API's Unix socket."""
    c = UnixHTTPConnection(os.path.join(env.run_dir, "api.sock"), timeout=15)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data is not None else {})
        r = c.getresponse()
        raw = r.read().decode("utf-8", "replace")
        try:
            js = json.loads(raw) if raw else None
        except ValueError:
            js = None
        return r.status, js, raw
    finally:
        c.close()


def upstreams_toml(moving_port):
    def up(name, port, auth):
        return '[[upstream]]\nname = "%s"\ntype = "socks5"\naddress = "%s:%d"\nauth = "%s"\n\n' % (
            name, sb.INET_ADDR, port, auth)
    return (up("dante", DANTE_PORT, "user-name") + up("dante-secret", DANTE_PORT, "user-secret") +
            up("moving", moving_port, "none"))


def write_config(env, moving_port):
    users = [{"name": "filed", "secret": KEYS["filed"]}]
    # Passive counting only (no health checks): every DC connection in the
    # record is a client's. One failure marks an upstream down; it is tried
    # again after half a second.
    text = env.config_text(users, sections={"egress": {"health_interval_ms": 0, "failures": 1,
                                                        "retry_min_ms": 500, "retry_max_ms": 1000,
                                                        "all_down": "fail"}})
    first_user = text.index("[[user]]")
    text = text[:first_user] + upstreams_toml(moving_port) + text[first_user:]
    tmp = env.config + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, env.config)


def cell_of(env, name):
    u = env.user(name) or {}
    return (u.get("cell") or {}).get("ipv4")


def pid_of(env, name):
    return (env.user(name) or {}).get("pid")


def one_connection(env, key, n=1024):
    try:
        st = sb.Stream(env.port, key, dc=2, timeout=10)
        try:
            return st.roundtrip(n)
        finally:
            st.close()
    except (OSError, RuntimeError, ValueError) as e:
        sb.log("connection failed: %r" % e)
        return False


def wait_log(env, needle, timeout=15, start=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in env.log_text()[start:]:
            return True
        time.sleep(0.1)
    return False


def wait_egress(env, user, start):
    """The supervisor sent `user`'s worker its egress and the worker (its
    log reaches the supervisor's) applied it."""
    if not wait_log(env, "egress sent user=%s " % user, start=start):
        return False
    m = re.search(r"egress sent user=%s generation=(\d+)" % re.escape(user), env.log_text()[start:])
    return bool(m) and wait_log(env, "egress applied generation=%s " % m.group(1), start=start)


def events(env, after=0):
    st, js, _ = api(env, "GET", "/v1/events?limit=1000&after=%d" % after)
    if st != 200 or not js:
        return []
    return js.get("events", [])


def last_seq(env):
    return max([e["seq"] for e in events(env)] or [0])


def wait_event(env, kind, user, detail_part, after, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events(env, after):
            if e.get("kind") != kind or e.get("user") != user:
                continue
            if detail_part in e.get("detail", ""):
                return e
        time.sleep(0.2)
    return None


def test():
    env = sb.Setup("upassign", pool="10.223.0.0/16", prefix="mtz", nat=False, uid_first=390000)
    d = env.dir
    try:
        # auth = "user-name": ann's dante password is her name; bea's is her upstream_password.
        dante, dante_log = start_dante(d, {"ann": "ann", "bea": BEA_PW})
        micro = start_microsocks(d)
        write_config(env, DEAD_PORT)
        env.start()

        # ---- ann: created with no upstream: direct.
        st, js, raw = api(env, "POST", "/v1/users", {"name": "ann", "secrets": [KEYS["ann"]]})
        h.check(st == 201 and js and js.get("upstreams") is None
                and js.get("upstream_password_set") is False,
                "POST ann without upstreams: inherits [egress] upstreams (none) (%d %s)" % (st, raw[:300]))
        env.require_running(["filed", "ann"])
        cell = cell_of(env, "ann")
        ann_pid = pid_of(env, "ann")
        st, js, _ = api(env, "GET", "/v1/users/ann/status")
        h.check(st == 200 and js.get("upstream_names") == [] and js.get("upstreams_inherited") is True,
                "ann's status: no upstream names, inherited (%s)" % (js or {}).get("upstream_names"))
        n0 = dc_lines_since(env.dc_record, 0)[1]
        h.check(one_connection(env, KEYS["ann"]), "ann: a direct connection works")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 1 and new[0].endswith("from=" + cell),
                "the DC saw ann's connection from her cell %s (%s)" % (cell, new))

        # ---- a transfer opened before the PATCH; then ann goes through dante.
        xfer = sb.Transfer(env.port, KEYS["ann"], total=6 << 20, chunk=16384, pause=0.02)
        xfer.start()
        xfer.started.wait(10)
        h.check(xfer.done_bytes > 0, "ann's transfer runs before the PATCH")
        mark = len(env.log_text())
        st, js, raw = api(env, "PATCH", "/v1/users/ann", {"upstreams": ["dante"]})
        h.check(st == 200 and js and js.get("upstreams") == ["dante"],
                "PATCH ann upstreams [dante]: 200 (%d %s)" % (st, raw[:300]))
        h.check(wait_egress(env, "ann", mark), "ann's running worker got and applied its new egress")
        h.check("upstreams=dante" in env.log_text()[mark:], "the log names the upstream, nothing more")
        n0 = dc_lines_since(env.dc_record, 0)[1]
        before = read(dante_log).count("pam.username%ann@")
        ok = sum(1 for _ in range(3) if one_connection(env, KEYS["ann"]))
        h.check(ok == 3, "ann: 3 new connections after the PATCH work (%d)" % ok)
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 3 and all(l.endswith("from=" + sb.INET_ADDR) for l in new),
                "the DC saw ann's new connections from dante %s (%s)" % (sb.INET_ADDR, new))
        h.check(read(dante_log).count("pam.username%ann@" + cell) >= before + 3,
                "dante's log names ann as the SOCKS user, from her cell %s" % cell)
        st, js, _ = api(env, "GET", "/v1/users/ann/status")
        h.check(st == 200 and js.get("upstream_names") == ["dante"]
                and js.get("upstreams_inherited") is False,
                "ann's status shows her upstream names (%s)" % (js or {}).get("upstream_names"))
        xfer.join(120)
        h.check(xfer.ok is True, "the transfer opened before the PATCH continued unbroken (%d bytes, %s)"
                % (xfer.done_bytes, xfer.error))
        h.check(pid_of(env, "ann") == ann_pid, "ann's worker was not restarted (pid %s)" % ann_pid)

        # ---- invalid changes: 400 naming the field, nothing changes.
        st, js, raw = api(env, "PATCH", "/v1/users/ann", {"upstreams": ["nope"]})
        h.check(st == 400 and ((js or {}).get("error") or {}).get("field") == "upstreams"
                and "nope" in raw,
                "PATCH with an unknown upstream: 400 naming upstreams (%d %s)" % (st, raw[:300]))
        st, js, raw = api(env, "PATCH", "/v1/users/ann", {"upstreams": ["dante-secret"]})
        h.check(st == 400 and ((js or {}).get("error") or {}).get("field") == "upstream_password",
                "PATCH to a user-secret upstream without a password: 400 naming upstream_password "
                "(%d %s)" % (st, raw[:300]))
        st, js, raw = api(env, "PATCH", "/v1/users/ann", {"upstreams": "dante"})
        h.check(st == 400, "PATCH with upstreams not a list: 400 (%d)" % st)
        st, js, _ = api(env, "GET", "/v1/users/ann")
        h.check(st == 200 and js.get("upstreams") == ["dante"], "ann still has [dante] (%s)" % js.get("upstreams"))
        n0 = dc_lines_since(env.dc_record, 0)[1]
        h.check(one_connection(env, KEYS["ann"]), "ann: a connection after the rejected PATCHes works")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 1 and new[0].endswith("from=" + sb.INET_ADDR),
                "... still through dante (%s)" % new)
        st, _, raw = api(env, "PATCH", "/v1/users/filed", {"upstreams": ["dante"]})
        h.check(st == 403, "a user declared in the file cannot be changed: 403 (%d %s)" % (st, raw[:200]))

        # ---- back to direct with mtwardenctl.
        mark = len(env.log_text())
        r = subprocess.run([CTL, "--socket", os.path.join(env.run_dir, "api.sock"), "--json", "users",
                            "set", "ann", "--upstreams", "direct"], capture_output=True, text=True,
                           timeout=30)
        out = {}
        try:
            out = json.loads(r.stdout)
        except ValueError:
            pass
        h.check(r.returncode == 0 and out.get("upstreams") == [],
                "mtwardenctl users set ann --upstreams direct (rc %d, %s %s)"
                % (r.returncode, r.stdout[:200], r.stderr[:200]))
        h.check(wait_egress(env, "ann", mark), "ann's worker got and applied the direct egress")
        n0 = dc_lines_since(env.dc_record, 0)[1]
        h.check(one_connection(env, KEYS["ann"]), "ann: a connection after going direct works")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 1 and new[0].endswith("from=" + cell),
                "the DC saw it from ann's cell again (%s)" % new)
        h.check(pid_of(env, "ann") == ann_pid, "ann's worker was still not restarted")

        # ---- bea: created with a user-secret upstream; the password is write-only.
        pwfile = os.path.join(d, "bea.pw")
        with open(pwfile, "w") as f:
            f.write(BEA_PW + "\n")
        r = subprocess.run([CTL, "--socket", os.path.join(env.run_dir, "api.sock"), "--json", "users",
                            "add", "bea", "--secret", KEYS["bea"], "--upstreams", "dante-secret",
                            "--upstream-password-file", pwfile], capture_output=True, text=True,
                           timeout=30)
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {}
        h.check(r.returncode == 0 and BEA_PW not in r.stdout and out.get("upstream_password_set") is True
                and out.get("upstreams") == ["dante-secret"],
                "mtwardenctl users add bea with a user-secret upstream and a password file "
                "(rc %d, %s)" % (r.returncode, (r.stdout + r.stderr)[-300:]))
        env.require_running(["bea"])
        n0 = dc_lines_since(env.dc_record, 0)[1]
        h.check(one_connection(env, KEYS["bea"]), "bea: a connection through dante (user-secret) works")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 1 and new[0].endswith("from=" + sb.INET_ADDR), "... from dante (%s)" % new)
        h.check("pam.username%bea@" + cell_of(env, "bea") in read(dante_log),
                "dante authenticated bea with her upstream_password")
        st, _, raw = api(env, "GET", "/v1/users/bea")
        h.check(st == 200 and BEA_PW not in raw and "upstream_password\"" not in raw,
                "GET bea never returns the password")
        st, _, raw = api(env, "GET", "/v1/users")
        h.check(BEA_PW not in raw, "nor does the user list")
        h.check(BEA_PW not in env.log_text(), "the password is not in the supervisor's log")

        # ---- carl: "moving" is dead, a reload moves it to microsocks.
        st, js, raw = api(env, "POST", "/v1/users", {"name": "carl", "secrets": [KEYS["carl"]],
                                                    "upstreams": ["moving"]})
        h.check(st == 201, "POST carl with upstreams [moving] (%d %s)" % (st, raw[:200]))
        env.require_running(["carl"])
        carl_pid = pid_of(env, "carl")
        h.check(not one_connection(env, KEYS["carl"]), "carl: no DC while 'moving' points at a dead port")
        mark = len(env.log_text())
        write_config(env, MICRO_PORT)
        st, js, raw = api(env, "POST", "/v1/reload")
        h.check(st == 200, "reload with 'moving' on microsocks: 200 (%d %s)" % (st, raw[:200]))
        h.check(wait_egress(env, "carl", mark),
                "the reload sent carl's running worker its new egress, which it applied")
        h.check("egress sent user=ann" not in env.log_text()[mark:],
                "ann (direct) got no egress message from the reload")
        n0 = dc_lines_since(env.dc_record, 0)[1]
        h.check(one_connection(env, KEYS["carl"]), "carl: a connection through microsocks after the reload")
        new, n0 = dc_lines_since(env.dc_record, n0)
        h.check(len(new) == 1 and new[0].endswith("from=" + sb.INET_ADDR),
                "the DC saw carl's connection from microsocks (%s)" % new)
        h.check(pid_of(env, "carl") == carl_pid, "carl's worker was not restarted by the reload")

        # A reload that removes an upstream an API user names is rejected.
        text = open(env.config).read()
        with open(env.config, "w") as f:
            f.write(text.replace('name = "moving"', 'name = "moved"'))
        st, js, raw = api(env, "POST", "/v1/reload")
        h.check(st == 422 and "carl" in raw and "moving" in raw,
                "a reload dropping carl's upstream is rejected, naming him (%d %s)" % (st, raw[:300]))
        write_config(env, MICRO_PORT)

        # ---- microsocks killed: upstream_down; back: upstream_up.
        seq = last_seq(env)
        micro.stop()
        sb.log("microsocks stopped")
        h.check(not one_connection(env, KEYS["carl"]), "carl: no DC with microsocks gone (all_down = fail)")
        e = wait_event(env, "upstream_down", "carl", "upstream=moving", seq)
        h.check(e is not None and "failures=" in e.get("detail", ""),
                "an upstream_down event for carl's 'moving' in /v1/events (%s)" % e)
        seq = last_seq(env)
        micro = start_microsocks(d)
        time.sleep(1.2)  # past retry_max_ms: the down upstream is tried again
        ok = False
        for _ in range(5):
            if one_connection(env, KEYS["carl"]):
                ok = True
                break
            time.sleep(0.6)
        h.check(ok, "carl: connections work again with microsocks back")
        e = wait_event(env, "upstream_up", "carl", "upstream=moving", seq)
        h.check(e is not None, "an upstream_up event for carl's 'moving' (%s)" % e)
        micro.stop()
        dante.stop()
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_upstream_assign")
