#!/usr/bin/python3
"""mtwardenctl end to end against the REAL supervisor in a network sandbox
(tests/integration/sandbox.py; needs root, else exits 77 = skipped).

One user (alice) is declared in the file, others are created through the
CLI. Every command runs with and without --json: the human output is
checked for its shape (headers, key: value lines), the --json output is
parsed and its keys checked. Exit codes: an unknown user -> 1 (API error,
"mtwardenctl: not_found: ..."), a bad flag -> 2, a missing socket -> 3, a
config user changed through the API -> 1 (forbidden). `qr --png` decodes
(zbarimg) to the first tg:// link of `link --json`. The TCP listener is
used with the token from `token rotate`; without a token it answers 1.

Env: MTW_CTL (mtwardenctl), plus sandbox.py's MTW_SUPERVISOR, MTW_GATE,
MTW_WORKER, MTW_FAKE_DC, MTW_FAKE_MASK.
"""

import json
import os
import re
import shutil
import subprocess
import time

import harness as h
import sandbox as sb

CTL = os.environ.get("MTW_CTL", "build/hc/ctl/mtwardenctl")
ALICE = h.TLS_SECRET
USER_KEYS = {"name", "id", "enabled", "expires_at", "comment", "origin", "created_at", "secrets",
             "limits", "overrides", "status"}
LIMIT_KEYS = {"rate_up_bps", "rate_down_bps", "quota_bytes", "period", "anchor_day", "throttle_bps",
              "warn_percent", "max_connections", "max_unique_ips", "on_demand", "idle_teardown_s",
              "bandwidth_weight"}


class Ctl:
    def __init__(self, socket_path):
        self.socket = socket_path

    def run(self, *args, conn=None, env=None):
        argv = [CTL] + (conn if conn is not None else ["--socket", self.socket]) + list(args)
        e = dict(os.environ)
        e.pop("MTWARDEN_TOKEN", None)
        e.pop("MTWARDEN_SOCKET", None)
        e.update(env or {})
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=e)
        sb.log("$ mtwardenctl %s -> %d%s" % (" ".join(args), r.returncode,
                                             (" (" + r.stderr.strip()[:200] + ")") if r.stderr.strip() else ""))
        return r

    def ok(self, *args, **kw):
        r = self.run(*args, **kw)
        h.check(r.returncode == 0 and r.stderr == "", "mtwardenctl %s exits 0 (rc %d, stderr %r)"
                % (" ".join(args), r.returncode, r.stderr[:300]))
        return r.stdout

    def json(self, *args, **kw):
        out = self.ok("--json", *args, **kw)
        try:
            return json.loads(out)
        except ValueError:
            h.check(False, "mtwardenctl --json %s prints JSON (%r)" % (" ".join(args), out[:300]))
            return {}

    def fails(self, rc, prefix, *args, **kw):
        r = self.run(*args, **kw)
        h.check(r.returncode == rc and r.stderr.startswith(prefix) and r.stdout == "",
                "mtwardenctl %s exits %d with %r (rc %d, stderr %r)"
                % (" ".join(args), rc, prefix, r.returncode, r.stderr[:300]))
        return r


def has_keys(obj, keys, what):
    missing = sorted(set(keys) - set(obj or {}))
    h.check(isinstance(obj, dict) and not missing, "%s has keys %s (missing %s)" % (what, sorted(keys), missing))


def wait_socket(path, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.1)
    return False


def check_users(c):
    out = c.ok("users", "list")
    lines = out.splitlines()
    h.check(lines and lines[0].split() == ["NAME", "STATE", "MODE", "ENABLED", "CONNS", "USAGE", "QUOTA", "THROTTLED",
                                           "EXPIRES"], "users list header (%r)" % (lines[:1],))
    h.check(any(l.split()[:1] == ["alice"] for l in lines[1:]), "users list has a row for alice")
    users = c.json("users", "list").get("users", [])
    h.check(isinstance(users, list) and [u.get("name") for u in users] == ["alice"], "users list --json: alice")
    for u in users:
        has_keys(u, USER_KEYS, "users list --json user")
        has_keys(u.get("limits"), LIMIT_KEYS, "user limits")

    out = c.ok("users", "show", "alice")
    h.check(out.startswith("name:") and "alice" in out.splitlines()[0] and "\nlimits:\n" in out
            and "\nstatus:\n" in out, "users show alice: key: value block with limits and status (%r)" % out[:200])
    u = c.json("users", "show", "alice")
    has_keys(u, USER_KEYS, "users show --json")
    h.check(u.get("origin") == "config" and u.get("secrets", [{}])[0].get("secret") == ALICE,
            "alice is a config user with her secret")

    b = c.json("users", "add", "bob", "--quota", "1GiB", "--rate-up", "20mbit", "--expires", "2099-12-31",
               "--comment", "from the ctl test", "--max-ips", "3")
    has_keys(b, USER_KEYS, "users add --json")
    lim = b.get("limits", {})
    h.check(b.get("name") == "bob" and b.get("origin") == "runtime" and lim.get("quota_bytes") == 1 << 30
            and lim.get("rate_up_bps") == 20_000_000 and lim.get("max_unique_ips") == 3
            and isinstance(b.get("expires_at"), int) and b.get("comment") == "from the ctl test",
            "users add maps quota, rate, ips, expiry, comment (%s)" % json.dumps(b)[:400])
    out = c.ok("users", "add", "carol", "--disabled", "--secret", h.SIMPLE_SECRET)
    h.check(out.startswith("name:") and "carol" in out, "users add (human) prints the user")
    carol = c.json("users", "show", "carol")
    h.check(carol.get("enabled") is False and [s.get("secret") for s in carol.get("secrets", [])] == [h.SIMPLE_SECRET],
            "carol is disabled with the given secret")

    b = c.json("users", "limit", "bob", "--quota", "default", "--max-connections", "5", "--on-demand", "off")
    h.check(b.get("limits", {}).get("max_connections") == 5 and "quota_bytes" not in b.get("overrides", {})
            and b.get("limits", {}).get("quota_bytes") == 0, "users limit: max_connections 5, quota back to default")
    b = c.json("users", "set", "bob", "--bandwidth-weight", "3")
    h.check(b.get("limits", {}).get("bandwidth_weight") == 3 and b.get("overrides", {}).get("bandwidth_weight") == 3
            and b.get("status", {}).get("bandwidth_weight") == 3,
            "users set --bandwidth-weight 3: in limits, overrides and status (%s)" % json.dumps(b)[:400])
    b = c.json("users", "set", "bob", "--bandwidth-weight", "default")
    h.check(b.get("limits", {}).get("bandwidth_weight") == 1 and "bandwidth_weight" not in b.get("overrides", {}),
            "users set --bandwidth-weight default: back to [defaults] 1")
    out = c.ok("users", "limit", "bob", "--expires", "never")
    h.check(re.search(r"^expires_at:\s+never$", out, re.M) is not None, "users limit --expires never (human shows never)")
    c.fails(1, "mtwardenctl: forbidden: ", "users", "limit", "alice", "--quota", "1GiB")

    h.check(c.json("users", "disable", "bob").get("enabled") is False, "users disable --json: enabled false")
    h.check("enabled:" in c.ok("users", "disable", "bob"), "users disable (human)")
    h.check(c.json("users", "enable", "bob").get("enabled") is True, "users enable --json: enabled true")
    h.check("enabled:" in c.ok("users", "enable", "bob"), "users enable (human)")

    before = c.json("users", "show", "bob").get("secrets", [])
    b = c.json("users", "rotate", "bob", "--grace", "60")
    secrets = b.get("secrets", [])
    h.check(len(secrets) == len(before) + 1 and secrets[0].get("expires_at") is not None
            and secrets[-1].get("expires_at") is None, "users rotate --grace 60: new secret last, old one expiring")
    h.check("secrets:" in c.ok("users", "rotate", "bob", "--grace", "0"), "users rotate (human)")

    has_keys(c.json("users", "reset", "bob"), USER_KEYS, "users reset --json")
    h.check(c.ok("users", "reset", "bob") == "reset the period usage of bob\n", "users reset (human)")

    c.fails(1, "mtwardenctl: not_found: ", "users", "show", "nobody")
    c.fails(1, "mtwardenctl: not_found: ", "--json", "usage", "nobody")
    c.fails(2, "mtwardenctl: unknown option --bogus", "users", "list", "--bogus")
    c.fails(2, "mtwardenctl: --quota: bad size", "users", "limit", "bob", "--quota", "lots")


def check_usage_events_status(c):
    out = c.ok("usage", "alice")
    h.check(out.splitlines()[0].split() == ["DATE", "UP", "DOWN", "TOTAL"] and out.splitlines()[-1].startswith("total"),
            "usage (human): table with a total row")
    u = c.json("usage", "alice")
    items = u.get("items", [])
    h.check(u.get("by") == "day" and isinstance(items, list) and len(items) >= 1, "usage --json: by day, items")
    for it in items[:1]:
        has_keys(it, {"date", "bytes_up", "bytes_down", "bytes_total"}, "usage item")
    m = c.json("usage", "alice", "--by", "month")
    h.check(m.get("by") == "month" and len(m.get("items", [{}])[0].get("date", "")) == 7, "usage --by month --json")

    s = c.json("status")
    has_keys(s, {"version", "started_at", "uptime_s", "listeners", "users_total", "users_running", "cells",
                 "connections", "gate_ready"}, "status --json")
    h.check(s.get("users_total") == 3, "status: 3 users (%s)" % s.get("users_total"))
    out = c.ok("status")
    h.check(out.startswith("version:") and "\nusers_total:" in out, "status (human): key: value block")

    e = c.json("events")
    h.check(isinstance(e.get("events"), list), "events --json: a list")
    for ev in e.get("events", [])[:1]:
        has_keys(ev, {"seq", "at", "user", "kind", "detail"}, "event")
    out = c.ok("events", "--limit", "5")
    h.check(out == "no events\n" or out.split()[:5] == ["SEQ", "TIME", "USER", "KIND", "DETAIL"], "events (human)")
    last = max([ev.get("seq", 0) for ev in e.get("events", [])] or [0])
    h.check(c.json("events", "--after", str(last)).get("events") == [], "events --after the last seq: none")

    h.check(c.json("reload") == {"reloaded": True, "restart_needed": []}, "reload --json")
    h.check(c.ok("reload") == "configuration reloaded\n", "reload (human)")


def check_links(c, workdir):
    l = c.json("link", "alice")
    has_keys(l, {"host", "ports", "tg", "https"}, "link --json")
    tg = (l.get("tg") or [""])[0]
    h.check(tg.startswith("tg://proxy?") and all(x.startswith("https://t.me/proxy?") for x in l.get("https", [])),
            "link --json: tg:// and https://t.me links")
    out = c.ok("link", "alice")
    h.check(tg in out and ("\u2580" in out or "\u2584" in out), "link (human): links and a terminal QR code")

    png = os.path.join(workdir, "alice.png")
    q = c.json("qr", "alice", "--png", png)
    size = os.path.getsize(png) if os.path.exists(png) else -1
    h.check(q == {"written": png, "bytes": size}, "qr --png --json: {written, bytes} (%s, size %d)" % (q, size))
    if shutil.which("zbarimg"):
        r = subprocess.run(["zbarimg", "--raw", "-q", png], capture_output=True, text=True, timeout=30)
        h.check(r.returncode == 0 and r.stdout.strip() == tg,
                "qr --png decodes to the first tg link (%r vs %r)" % (r.stdout.strip()[:120], tg[:120]))
    else:
        h.check(False, "zbarimg (zbar-tools) installed to decode the QR code")
    svg = os.path.join(workdir, "alice.svg")
    out = c.ok("qr", "alice", "--svg", svg)
    with open(svg) as f:
        text = f.read()
    h.check(out.startswith("wrote " + svg) and "<svg" in text, "qr --svg (human): wrote an SVG")
    c.fails(1, "mtwardenctl: bad_request: ", "qr", "alice", "--png", png, "--index", "99")


def check_tcp_and_token(c, tcp_port):
    t = c.json("token", "rotate")
    token = t.get("token", "")
    h.check(token.startswith("mtw_"), "token rotate --json: a token")
    url = ["--url", "http://127.0.0.1:%d" % tcp_port]
    c.fails(1, "mtwardenctl: unauthorized: ", "status", conn=url)
    s = c.json("status", conn=url + ["--token", token])
    h.check("version" in s, "status over TCP with --token")
    s = c.json("status", conn=url, env={"MTWARDEN_TOKEN": token})
    h.check("version" in s, "status over TCP with MTWARDEN_TOKEN")
    c.fails(1, "mtwardenctl: forbidden: ", "token", "rotate", conn=url + ["--token", token])
    out = c.ok("token", "rotate")
    h.check(out.startswith("mtw_"), "token rotate (human) prints the token")
    c.fails(1, "mtwardenctl: unauthorized: ", "status", conn=url + ["--token", token])


def check_rm(c):
    h.check(c.ok("users", "rm", "bob") == "deleted user bob\n", "users rm (human)")
    c.fails(1, "mtwardenctl: not_found: ", "users", "show", "bob")
    h.check(c.json("users", "rm", "carol") == {}, "users rm --json: {}")
    c.fails(1, "mtwardenctl: forbidden: ", "users", "rm", "alice")


def main():
    if not os.access(CTL, os.X_OK):
        h.check(False, "MTW_CTL=%s is an executable (build mtwardenctl)" % CTL)
        return
    r = Ctl("/run/mtwarden-nonexistent/api.sock").run("status")
    h.check(r.returncode == 3 and "does not exist" in r.stderr and "--socket" in r.stderr,
            "missing socket -> exit 3 naming the socket and --socket (%r)" % r.stderr[:200])
    r = Ctl("/x").run("users", "add")
    h.check(r.returncode == 2 and r.stderr.startswith("mtwardenctl: users add: missing NAME"), "missing NAME -> 2")
    r = Ctl("/x").run("users", "add", "--help")
    h.check(r.returncode == 0 and "--rate-up" in r.stdout and "Exit codes" in r.stdout, "users add --help")

    st = sb.Setup("ctl", pool="10.207.0.0/16", prefix="mtc", uid_first=270000)
    try:
        tcp_port = sb.free_port()
        st.write_config([{"name": "alice", "secret": ALICE}],
                        sections={"api": {"tcp": "127.0.0.1:%d" % tcp_port}})
        st.start()
        sock = os.path.join(st.run_dir, "api.sock")
        if not wait_socket(sock):
            h.check(False, "the supervisor serves %s (API not wired yet?)" % sock)
            return
        st.require_running(["alice"])
        c = Ctl(sock)
        check_users(c)
        check_usage_events_status(c)
        check_links(c, st.dir)
        check_tcp_and_token(c, tcp_port)
        check_rm(c)
        rc = st.stop()
        h.check(rc == 0, "supervisor exits 0 on SIGTERM (%s)" % rc)
        Ctl(sock).fails(3, "mtwardenctl: cannot reach the API: ", "status")
    finally:
        st.cleanup()


if __name__ == "__main__":
    sb.main_wrapper(main, "test_ctl")
