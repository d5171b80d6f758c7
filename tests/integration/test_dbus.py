#!/usr/bin/python3
"""D-Bus end to end (docs/dbus.md): a private dbus-daemon of type "system"
with the shipped policy (systemd/org.mtwarden.Manager1.conf.in, the group
substituted by a test gid), the real mtwarden on it through
$DBUS_SYSTEM_BUS_ADDRESS, and busctl / gdbus as independent clients:

1. the object's introspection equals docs/org.mtwarden.Manager1.xml;
2. every property, compared with GET /v1/status;
3. every method: AddUser, ListUsers, GetUser, GetStatus, SetLimits (and
   "default" back to [defaults]), DisableUser, EnableUser, GetUsage by day
   and month, Reload (also a rejected file), RemoveUser, GetMaskProfiles;
   answers agree with the HTTP API;
4. bad calls get named errors (NoSuchUser, UserExists, InvalidArgument,
   DeclaredInConfig) and leave the store (SQLite rows) and GET /v1/users
   unchanged;
5. the policy: uid 65534 without groups may read properties and
   introspect but a method call is AccessDenied and it receives no signals;
   a user in the configured group ("daemon") may call methods, a user
   outside it ("bin") may not;
6. signals, received by a root `gdbus monitor`: QuotaWarning and
   UserThrottled when bob's 4 MB quota runs out through the proxy,
   UserUnthrottled when the quota goes back to default, UsageReset (and the
   usage_reset event in GET /v1/events) after POST reset, WorkerRestarted
   after his worker is killed, UserExpired after expires_at; UpstreamHealth
   when SetLimits gave bob an upstream where nothing listens (3c);
7. dbus-daemon stopped for 1.6 s and started again: the supervisor logs
   the loss and a failed attempt, reconnects,
   owns the name on the new bus, answers properties and methods and sends
   signals (WorkerRestarted); the HTTP API is not affected;
8. SIGTERM releases the name;
9. a start while the bus is down: the proxy runs, the log says
   `dbus unavailable, retrying`; once dbus-daemon is up the supervisor
   connects and owns the name.

Runs in its own network sandbox (tests/integration/sandbox.py); needs root.
"""

import grp
import pwd
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

import harness as h
import sandbox as sb
from test_supervisor_api import Api, dump_store, echo

CFG = "c823456789abcdef0123456789abcdef"  # declared in the file
BOB = "b823456789abcdef0123456789abcdef"
# dbus-daemon resolves policy groups by name and a caller's groups through
# the user database, so the policy test uses two stock system accounts:
# "daemon" (the configured group is its primary group) and "bin" (not in it).
GROUP = "daemon"      # substituted for @MTW_DBUS_GROUP@
MEMBER = "daemon"
OTHER = "bin"
NOBODY = 65534
NAME = "org.mtwarden.Manager1"
PATH = "/org/mtwarden/Manager1"
IFACE = "org.mtwarden.Manager1"
SRC = os.environ.get("MTW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))

BASE_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%(socket)s</listen>
  <auth>EXTERNAL</auth>
  <!-- The default context of Debian's system.conf. -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/> <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="method_return"/>
    <allow receive_type="error"/> <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <includedir>%(policy_dir)s</includedir>
</busconfig>
"""


class Bus:
    def __init__(self, env):
        self.dir = os.path.join(env.dir, "bus")
        policy_dir = os.path.join(self.dir, "system.d")
        os.makedirs(policy_dir)
        os.chmod(self.dir, 0o755)
        with open(os.path.join(SRC, "systemd", "org.mtwarden.Manager1.conf.in")) as f:
            policy = f.read()
        h.check("@MTW_DBUS_GROUP@" in policy, "the shipped policy names the group @MTW_DBUS_GROUP@")
        with open(os.path.join(policy_dir, "org.mtwarden.Manager1.conf"), "w") as f:
            f.write(policy.replace("@MTW_DBUS_GROUP@", GROUP))
        self.socket = os.path.join(self.dir, "system_bus_socket")
        self.config = os.path.join(self.dir, "bus.conf")
        with open(self.config, "w") as f:
            f.write(BASE_CONFIG % {"socket": self.socket, "policy_dir": policy_dir})
        # Without the guid, like the real system bus's address: a restarted
        # daemon (new guid) is still the bus this address names.
        self.address = "unix:path=" + self.socket
        self.proc = None
        self.start()

    def start(self):
        self.proc = sb.Proc(["dbus-daemon", "--config-file=" + self.config, "--nofork", "--print-address"],
                            name="dbus-daemon", stderr_path=os.path.join(self.dir, "dbus-daemon.log"))
        printed = self.proc.wait_line("unix:", timeout=15)
        sb.log("private system bus at %s" % printed)

    def stop(self):
        self.proc.stop()
        if os.path.exists(self.socket):
            os.unlink(self.socket)

    def restart(self, down_s):
        self.stop()
        time.sleep(down_s)
        self.start()


def as_user(argv, uid=None, groups=None):
    """argv run as `uid` (a number: that uid and gid, no groups; a name: that
    account with its groups from the user database)."""
    if uid is None:
        return argv
    if isinstance(uid, str):
        pw = pwd.getpwnam(uid)
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--init-groups"] + argv
    return ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + argv


def unwrap(x):
    """busctl --json: variants are {"type", "data"}; returns plain values."""
    if isinstance(x, dict):
        if set(x) == {"type", "data"}:
            return unwrap(x["data"])
        return {k: unwrap(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unwrap(v) for v in x]
    return x


class Client:
    def __init__(self, address):
        self.address = address

    def busctl(self, args, uid=None, groups=None):
        argv = as_user(["busctl", "--address=" + self.address, "--json=short"] + args, uid, groups)
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def call(self, method, sig="", *args, uid=None, groups=None):
        """busctl call; the out arguments (unwrapped), or raises with busctl's message."""
        r = self.busctl(["call", NAME, PATH, IFACE, method] + ([sig] if sig else []) +
                        [str(a) for a in args], uid, groups)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (method, r.stderr.strip()))
        out = r.stdout.strip()
        return unwrap(json.loads(out)["data"]) if out else []

    def prop(self, name, uid=None, groups=None):
        r = self.busctl(["get-property", NAME, PATH, IFACE, name], uid, groups)
        if r.returncode != 0:
            raise RuntimeError("get-property %s failed: %s" % (name, r.stderr.strip()))
        return unwrap(json.loads(r.stdout))

    def gdbus(self, method, *args, uid=None, groups=None):
        """gdbus call: (error name or None, output) — gdbus reports error names."""
        argv = as_user(["gdbus", "call", "--address", self.address, "--dest", NAME, "--object-path", PATH,
                        "--method", IFACE + "." + method] + list(args), uid, groups)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return None, r.stdout.strip()
        m = re.search(r"GDBus\.Error:([A-Za-z0-9_.]+):\s*(.*)", r.stderr)
        return (m.group(1), m.group(2).strip()) if m else ("?", r.stderr.strip())


class Monitor:
    """`gdbus monitor` on the service; collects (member, args text) lines."""

    def __init__(self, address, uid=None):
        argv = as_user(["stdbuf", "-oL", "gdbus", "monitor", "--address", address, "--dest", NAME], uid)
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  preexec_fn=sb._pdeathsig)
        sb._children.append(self.p)
        self.lines = []
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            with self.lock:
                self.lines.append(line.strip())

    def signals(self, member):
        pat = re.compile(r"%s\.%s \((.*)\)$" % (re.escape(IFACE), member))
        with self.lock:
            return [m.group(1) for m in (pat.search(l) for l in self.lines) if m]

    def wait(self, member, pred=lambda a: True, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = [a for a in self.signals(member) if pred(a)]
            if got:
                return got[0]
            time.sleep(0.1)
        return None

    def stop(self):
        self.p.kill()
        self.p.wait()


def iface_shape(xml_text):
    """The interface as comparable data: methods, signals, properties, annotations."""
    root = ET.fromstring(xml_text)
    node = root if root.tag == "interface" else next(
        (i for i in root.iter("interface") if i.get("name") == IFACE), None)
    if node is None or node.get("name") != IFACE:
        return None

    def anns(e):
        return sorted((a.get("name"), a.get("value")) for a in e.findall("annotation"))

    shape = {"annotations": anns(node), "method": {}, "signal": {}, "property": {}}
    for m in node.findall("method"):
        shape["method"][m.get("name")] = ([(a.get("name"), a.get("type"), a.get("direction", "in"))
                                           for a in m.findall("arg")], anns(m))
    for s in node.findall("signal"):
        shape["signal"][s.get("name")] = ([(a.get("name"), a.get("type")) for a in s.findall("arg")], anns(s))
    for p in node.findall("property"):
        shape["property"][p.get("name")] = (p.get("type"), p.get("access"), anns(p))
    return shape


def users_without_status(api):
    return [{k: v for k, v in u.items() if k != "status"} for u in api.get("/v1/users").json["users"]]


def wait_for(fn, timeout=20, poll=0.2):
    deadline = time.monotonic() + timeout
    while not (v := fn()) and time.monotonic() < deadline:
        time.sleep(poll)
    return v


def state_of(cl, name):
    try:
        return cl.call("GetStatus", "s", name)[0]
    except RuntimeError:  # no such user (yet)
        return {}


# ------------------------------------------------------------------ scenarios


def scenario_introspection(cl):
    r = cl.busctl(["--xml-interface", "introspect", NAME, PATH])
    live = iface_shape(r.stdout) if r.returncode == 0 else None
    with open(os.path.join(SRC, "docs", "org.mtwarden.Manager1.xml")) as f:
        doc = iface_shape(f.read())
    h.check(live is not None and doc is not None and live == doc,
            "introspection equals docs/org.mtwarden.Manager1.xml (%d methods, %d signals, %d properties)%s"
            % (len((live or {}).get("method", {})), len((live or {}).get("signal", {})),
               len((live or {}).get("property", {})),
               "" if live == doc else "\n live: %s\n docs: %s" % (live, doc)))


def scenario_properties(cl, api):
    st = api.get("/v1/status").json
    want = {"Version": st["version"], "StartedAt": st["started_at"], "Listeners": st["listeners"],
            "Users": st["users_total"], "UsersRunning": st["users_running"], "UsersFailed": st["users_failed"],
            "Cells": st["cells"], "GateReady": st["gate_ready"], "GateRestarts": st["gate_restarts"],
            "MemoryBound": st["memory_bound"], "UsersThrottled": st["users_throttled"]}
    got = {k: cl.prop(k) for k in want}
    h.check(got == want, "properties equal GET /v1/status (%s)" % ("ok" if got == want else "%s vs %s" % (got, want)))
    more = {k: cl.prop(k) for k in ("UptimeSeconds", "Connections", "MaskedTotal", "HandoffsTotal")}
    h.check(all(isinstance(v, int) for v in more.values()) and abs(more["UptimeSeconds"] - st["uptime_s"]) <= 2,
            "UptimeSeconds, Connections, MaskedTotal, HandoffsTotal readable (%s)" % more)


def scenario_methods(env, cl, api):
    u = cl.call("AddUser", "sa{sv}", "bob", 7, "secrets", "as", 1, BOB, "quota", "s", "4MB",
                "warn_percent", "u", 50, "throttle_rate", "s", "4mbit", "rate_down", "s", "100mbit",
                "comment", "s", "bob via dbus", "max_connections", "q", 9)[0]
    h.check(u.get("name") == "bob" and [s["secret"] for s in u["secrets"]] == [BOB]
            and u["limits"]["quota_bytes"] == 4_000_000 and u["limits"]["warn_percent"] == 50
            and u["comment"] == "bob via dbus" and u["origin"] == "runtime" and "expires_at" not in u,
            "AddUser bob: the record with its secret, quota 4 MB, warn 50 %%, no expires_at (%s)"
            % {k: u.get(k) for k in ("name", "comment", "origin")})
    r = api.get("/v1/users/bob")
    h.check(r.status == 200 and r.json["limits"]["max_connections"] == 9 and r.json["id"] == u["id"],
            "the HTTP API sees the same bob (%r)" % r)
    rows = cl.call("ListUsers")[0]
    h.check(sorted(r[0] for r in rows) == ["bob", "cfg"] and all(len(r) == 4 for r in rows),
            "ListUsers: bob and cfg as (name, enabled, state, throttled) (%s)" % rows)
    st = wait_for(lambda: (lambda s: s if s.get("state") == "running" else None)(state_of(cl, "bob")))
    h.check(bool(st) and st["enabled"] is True and st["quota"]["quota_bytes"] == 4_000_000,
            "GetStatus bob: running, quota 4 MB (%s)" % (st or {}).get("state"))
    g = cl.call("GetUser", "s", "bob")[0]
    h.check(g["status"]["name"] == "bob" and g["overrides"]["quota_bytes"] == 4_000_000,
            "GetUser bob: overrides and status")

    cl.call("SetLimits", "sa{sv}", "bob", 2, "max_connections", "u", 7, "rate_up", "s", "20mbit")
    g = cl.call("GetUser", "s", "bob")[0]
    h.check(g["limits"]["max_connections"] == 7 and g["limits"]["rate_up_bps"] == 20_000_000,
            "SetLimits: max_connections 7, rate_up 20 Mbit/s (%s, %s)"
            % (g["limits"]["max_connections"], g["limits"]["rate_up_bps"]))
    cl.call("SetLimits", "sa{sv}", "bob", 1, "max_connections", "s", "default")
    g = cl.call("GetUser", "s", "bob")[0]
    h.check("max_connections" not in g["overrides"] and "rate_up_bps" in g["overrides"],
            "SetLimits max_connections \"default\": the override is gone, the others stay (%s)" % g["overrides"])

    cl.call("DisableUser", "s", "bob")
    st = wait_for(lambda: (lambda s: s if s.get("state") == "disabled" else None)(state_of(cl, "bob")))
    h.check(bool(st) and not api.get("/v1/users/bob").json["enabled"], "DisableUser: bob disabled")
    cl.call("EnableUser", "s", "bob")
    st = wait_for(lambda: (lambda s: s if s.get("state") == "running" else None)(state_of(cl, "bob")))
    h.check(bool(st), "EnableUser: bob running again")

    days = cl.call("GetUsage", "ssss", "cfg", "day", "", "")[0]
    months = cl.call("GetUsage", "ssss", "cfg", "month", "", "")[0]
    http = api.get("/v1/users/cfg/usage?by=day").json["items"]
    h.check(len(days) == 30 and len(months) == 12 and [d[0] for d in days] == [i["date"] for i in http],
            "GetUsage: 30 days (as the HTTP API) and 12 months (%d, %d)" % (len(days), len(months)))
    span = cl.call("GetUsage", "ssss", "cfg", "day", "2026-01-30", "2026-02-02")[0]
    h.check([d[0] for d in span] == ["2026-01-30", "2026-01-31", "2026-02-01", "2026-02-02"],
            "GetUsage with from/to (%s)" % span)

    n = env.log_text().count("reloaded")
    cl.call("Reload")
    h.check(wait_for(lambda: env.log_text().count("reloaded") > n, timeout=10), "Reload: the file is reloaded")
    with open(env.config) as f:
        good = f.read()
    with open(env.config, "w") as f:
        f.write(good + "\n[bogus_section]\nx = 1\n")
    err, msg = cl.gdbus("Reload")
    with open(env.config, "w") as f:
        f.write(good)
    h.check(err == "org.mtwarden.Error.ReloadRejected" and "bogus" in msg,
            "Reload of a broken file: ReloadRejected naming the problem (%s: %s)" % (err, msg))


BAD_CALLS = [
    ("GetUser", ["'nobody'"], "NoSuchUser", "nobody"),
    ("GetStatus", ["'nobody'"], "NoSuchUser", "nobody"),
    ("RemoveUser", ["'nobody'"], "NoSuchUser", "nobody"),
    ("EnableUser", ["'nobody'"], "NoSuchUser", "nobody"),
    ("DisableUser", ["'../etc'"], "NoSuchUser", "../etc"),
    ("SetLimits", ["'nobody'", "{'quota': <uint64 1000000>}"], "NoSuchUser", "nobody"),
    ("GetUsage", ["'nobody'", "'day'", "''", "''"], "NoSuchUser", "nobody"),
    ("AddUser", ["'cfg'", "@a{sv} {}"], "UserExists", "cfg"),
    ("AddUser", ["'eve'", "{'secrets': <['%s']>}" % BOB], "UserExists", ""),
    ("AddUser", ["'bad name'", "@a{sv} {}"], "InvalidArgument", "name"),
    ("AddUser", ["'eve'", "{'bogus': <1>}"], "InvalidArgument", "bogus"),
    ("AddUser", ["'eve'", "{'quota': <-1>}"], "InvalidArgument", "quota"),
    ("AddUser", ["'eve'", "{'quota': <1.5>}"], "InvalidArgument", "quota"),
    ("AddUser", ["'eve'", "{'secrets': <['xyz']>}"], "InvalidArgument", "secrets[0]"),
    ("SetLimits", ["'bob'", "{'rate_up': <uint64 100>}"], "InvalidArgument", "rate_up"),
    ("SetLimits", ["'bob'", "{'anchor_day': <32>}"], "InvalidArgument", "anchor_day"),
    ("SetLimits", ["'bob'", "{'quota': <uint64 1>, 'period': <'weekly'>, 'anchor_day': <9>}"],
     "InvalidArgument", "anchor_day"),
    ("SetLimits", ["'bob'", "{'comment': <'x'>}"], "InvalidArgument", "comment"),
    ("SetLimits", ["'bob'", "{'expires_at': <'soon'>}"], "InvalidArgument", "expires_at"),
    ("SetLimits", ["'bob'", "{'quota': <objectpath '/x'>}"], "InvalidArgument", "quota"),
    ("SetLimits", ["'cfg'", "{'quota': <uint64 1000000>}"], "DeclaredInConfig", "cfg"),
    ("DisableUser", ["'cfg'"], "DeclaredInConfig", "cfg"),
    ("RemoveUser", ["'cfg'"], "DeclaredInConfig", ""),
    ("GetUsage", ["'bob'", "'week'", "''", "''"], "InvalidArgument", "by"),
    ("GetUsage", ["'bob'", "'day'", "'2026-02-30'", "''"], "InvalidArgument", "from"),
]


def scenario_mask_profiles(cl, api):
    """GetMaskProfiles answers what GET /v1/mask-profiles does: a user with a
    fake-TLS secret for a domain of its own gets that domain a profile entry
    (probed at the sandbox's fake mask, which speaks no TLS: builtin, with
    its error)."""
    u = cl.call("AddUser", "sa{sv}", "masky", 1, "tls_domain", "s", "profile.test")[0]
    h.check(u.get("name") == "masky" and u["secrets"][0]["secret"].startswith("ee"),
            "AddUser masky: a generated fake-TLS secret for profile.test")
    doc = wait_for(lambda: (lambda d: d if any(p["domain"] == "profile.test" for p in d["profiles"]) else None)(
        api.get("/v1/mask-profiles").json), timeout=20)
    h.check(doc is not None, "GET /v1/mask-profiles lists profile.test")
    if doc is None:
        return
    r = cl.busctl(["call", NAME, PATH, IFACE, "GetMaskProfiles"])
    h.check(r.returncode == 0, "GetMaskProfiles answers (%s)" % r.stderr.strip())
    if r.returncode != 0:
        return
    raw = json.loads(r.stdout)
    h.check(raw["type"] == "baa{sv}", "GetMaskProfiles returns (b probing, aa{sv} profiles): %s" % raw["type"])
    probing, profiles = unwrap(raw["data"])
    doc = api.get("/v1/mask-profiles").json  # again: the same moment as the call, as near as can be
    h.check(probing == doc["probing"], "probing as the HTTP API says (%s)" % probing)
    # Moving members (age, next probe, last attempt) aside, every member is equal;
    # flight is a(tt) on D-Bus, pairs in JSON.
    moving = ("age_s", "next_probe_at", "last_attempt_at", "measured_at", "last_error", "samples", "source")
    want = {p["domain"]: {k: v for k, v in p.items() if k not in moving} for p in doc["profiles"]}
    got = {p["domain"]: {k: v for k, v in p.items() if k not in moving} for p in profiles}
    h.check(got == want, "GetMaskProfiles equals GET /v1/mask-profiles (%d profiles)%s"
            % (len(got), "" if got == want else ": %s vs %s" % (got, want)))
    h.check(all(set(p) == set(q) for p in profiles for q in doc["profiles"] if p["domain"] == q["domain"]),
            "the same members on both faces")
    mine = [p for p in profiles if p["domain"] == "profile.test"]
    h.check(len(mine) == 1 and mine[0]["source"] in ("builtin", "measured") and mine[0]["cipher"]
            and mine[0]["flight_records"] == len(mine[0]["flight"]) and mine[0]["target"],
            "profile.test: source, cipher, flight (%s)" % {k: mine[0].get(k) for k in ("source", "target", "flight")}
            if mine else "profile.test missing")
    err, _ = cl.gdbus("GetMaskProfiles", uid=NOBODY)
    h.check(err is not None and "AccessDenied" in err, "GetMaskProfiles refused to a caller outside the group (%s)" % err)
    cl.call("RemoveUser", "s", "masky")


def scenario_bad_calls(env, cl, api):
    store0, users0 = dump_store(env), users_without_status(api)
    passed = 0
    for method, args, err, needle in BAD_CALLS:
        got, msg = cl.gdbus(method, *args)
        ok = got == "org.mtwarden.Error." + err and needle in msg
        passed += ok
        if not ok:
            h.check(False, "%s(%s): want %s naming %r, got %s: %s" % (method, ", ".join(args), err, needle, got, msg))
    h.check(passed == len(BAD_CALLS), "%d/%d bad calls got the right named error" % (passed, len(BAD_CALLS)))
    store1, users1 = dump_store(env), users_without_status(api)
    h.check(store1["users"] == store0["users"] and store1["secrets"] == store0["secrets"],
            "the store's users and secrets are unchanged by the bad calls")
    h.check(users1 == users0, "GET /v1/users (without status) is unchanged")
    return len(BAD_CALLS)


def scenario_policy(env, cl, api):
    users = cl.prop("Users")
    got = cl.prop("Users", uid=NOBODY)
    h.check(got == users, "uid %d (no groups) reads the Users property (%s)" % (NOBODY, got))
    r = cl.busctl(["introspect", NAME, PATH], uid=NOBODY)
    h.check(r.returncode == 0 and "ListUsers" in r.stdout, "uid %d may introspect" % NOBODY)
    store0 = dump_store(env)
    for method, args in (("ListUsers", []), ("GetUser", ["'bob'"]),
                         ("AddUser", ["'mallory'", "@a{sv} {}"]), ("RemoveUser", ["'bob'"])):
        err, msg = cl.gdbus(method, *args, uid=NOBODY)
        h.check(err == "org.freedesktop.DBus.Error.AccessDenied",
                "uid %d calling %s: refused by the bus policy (%s)" % (NOBODY, method, err))
    err, msg = cl.gdbus("ListUsers", uid=OTHER)
    h.check(err == "org.freedesktop.DBus.Error.AccessDenied",
            "user %s (not in group %s): ListUsers refused (%s %s)" % (OTHER, GROUP, err, msg))
    h.check(dump_store(env)["users"] == store0["users"], "the refused calls changed nothing")
    err, out = cl.gdbus("ListUsers", uid=MEMBER)
    h.check(err is None and "'bob'" in out, "user %s in group %s: ListUsers allowed (%s)" % (MEMBER, GROUP, err or out[:60]))
    err, out = cl.gdbus("AddUser", "'grp'", "@a{sv} {}", uid=MEMBER)
    h.check(err is None and api.get("/v1/users/grp").status == 200, "the group member adds user grp (%s %s)" % (err, out[:60]))
    err, _ = cl.gdbus("RemoveUser", "'grp'", uid=MEMBER)
    h.check(err is None and api.get("/v1/users/grp").status == 404, "and removes it (%s)" % err)


def scenario_upstreams(env, cl, api, mon):
    """SetLimits upstreams (as, or s inherit/direct); a dead upstream marked
    down reaches the monitor as UpstreamHealth."""
    cl.call("SetLimits", "sa{sv}", "bob", 1, "upstreams", "as", 1, "dead")
    g = cl.call("GetUser", "s", "bob")[0]
    h.check(g.get("upstreams") == ["dead"] and g.get("upstream_password_set") is False,
            "SetLimits upstreams as [dead]: GetUser shows it (%s)" % g.get("upstreams"))
    h.check(wait_for(lambda: "egress sent user=bob " in env.log_text(), timeout=10),
            "bob's running worker got the new egress")
    h.check(not echo(env.port, BOB, total=1024, timeout=10), "bob: no DC through the dead upstream")
    up = mon.wait("UpstreamHealth", lambda a: a.startswith("'bob', 'dead', false"), timeout=15)
    h.check(up is not None and "upstream=dead" in up,
            "UpstreamHealth(bob, dead, false, detail) when the worker marked it down (%s)" % up)
    ev = [e for e in api.get("/v1/events?limit=1000").json["events"]
          if e["user"] == "bob" and e["kind"] == "upstream_down"]
    h.check(len(ev) == 1 and ev[0]["detail"].startswith("upstream=dead failures=1 marked_down=1"),
            "GET /v1/events has bob's upstream_down (%s)" % ev)
    ups = {u["name"]: u for u in cl.call("GetUpstreams")[0]}
    dead = ups.get("dead", {})
    h.check(dead.get("users", 0) >= 1 and dead.get("workers_down") == 1 and dead.get("workers_up") == 0
            and dead.get("failures", 0) >= 1,
            "GetUpstreams: dead is named by bob and down in his worker's report (%s)" % dead)
    http = {u["name"]: u for u in api.get("/v1/upstreams").json["upstreams"]}
    h.check(http.get("dead", {}).get("workers_down") == 1, "GET /v1/upstreams agrees (%s)" % http.get("dead"))
    err, msg = cl.gdbus("SetLimits", "'bob'", "{'upstreams': <['nope']>}")
    h.check(err == "org.mtwarden.Error.InvalidArgument" and "nope" in msg,
            "SetLimits with an unknown upstream: InvalidArgument naming it (%s: %s)" % (err, msg))
    cl.call("SetLimits", "sa{sv}", "bob", 1, "upstreams", "s", "inherit")
    g = cl.call("GetUser", "s", "bob")[0]
    h.check("upstreams" not in g and g["status"].get("upstream_names") == [],
            "SetLimits upstreams \"inherit\": left out of GetUser, no upstream in force (%s)"
            % g["status"].get("upstream_names"))
    h.check(echo(env.port, BOB, total=1024, timeout=10), "bob: direct again")


def scenario_signals(env, cl, api, mon, mon_nobody):
    # Bob's quota is 4 MB, warn at 50 %: ~2.6 MB of echo (up + down) warns,
    # then ~3.2 MB more uses it up.
    h.check(echo(env.port, BOB, total=1280 * 1024, timeout=30), "1.25 MiB echoed through bob")
    w = mon.wait("QuotaWarning", lambda a: a.startswith("'bob'"), timeout=15)
    m = re.match(r"'bob', uint32 (\d+), uint64 (\d+), uint64 (\d+)", w or "")
    h.check(bool(m) and 50 <= int(m.group(1)) < 100 and int(m.group(3)) == 4_000_000
            and int(m.group(2)) * 100 // 4_000_000 == int(m.group(1)),
            "QuotaWarning(bob, percent, used, quota) received (%s)" % w)
    t0 = time.monotonic()
    h.check(echo(env.port, BOB, total=1536 * 1024, timeout=60), "1.5 MiB more echoed through bob")
    t = mon.wait("UserThrottled", lambda a: a.startswith("'bob'"), timeout=20)
    h.check(t is not None and "'quota'" in t and "quota=4000000" in t,
            "UserThrottled(bob, quota, detail) when the quota ran out (%s, %.1f s)" % (t, time.monotonic() - t0))
    st = state_of(cl, "bob")
    h.check(st.get("throttled") is True and st["quota"]["state"] == "throttled", "GetStatus: bob throttled")
    h.check(cl.prop("UsersThrottled") == 1, "UsersThrottled property = 1")
    rows = {r[0]: r for r in cl.call("ListUsers")[0]}
    h.check(rows["bob"][3] is True, "ListUsers shows bob throttled (%s)" % (rows["bob"],))

    cl.call("SetLimits", "sa{sv}", "bob", 1, "quota", "s", "default")
    un = mon.wait("UserUnthrottled", lambda a: a.startswith("'bob'"), timeout=15)
    h.check(un == "'bob', 'quota'", "UserUnthrottled(bob, quota) after quota \"default\" (%s)" % un)

    r = api.post("/v1/users/bob/reset")
    h.check(r.status == 200, "POST /v1/users/bob/reset: 200 (%s)" % r.status)
    rs = mon.wait("UsageReset", lambda a: a.startswith("'bob'"), timeout=15)
    h.check(rs == "'bob', 'api'", "UsageReset(bob, api) after the reset by the API (%s)" % rs)
    kinds = [(e["user"], e["kind"], e["detail"]) for e in api.get("/v1/events?limit=1000").json["events"]]
    h.check(("bob", "usage_reset", "api") in kinds, "GET /v1/events has bob's usage_reset (api)")

    pid = state_of(cl, "bob").get("worker_pid", 0)
    h.check(pid > 0, "bob's worker pid from GetStatus (%d)" % pid)
    if pid > 0:
        os.kill(pid, signal.SIGKILL)
        rs = mon.wait("WorkerRestarted", lambda a: a.startswith("'bob'"), timeout=20)
        h.check(re.fullmatch(r"'bob', uint32 [1-9]\d*", rs or "") is not None,
                "WorkerRestarted(bob, restarts >= 1) after SIGKILL of the worker (%s)" % rs)

    cl.call("SetLimits", "sa{sv}", "bob", 1, "expires_at", "x", int(time.time()) + 2)
    ex = mon.wait("UserExpired", lambda a: a.startswith("'bob'"), timeout=20)
    h.check(ex in ("'bob',", "'bob'"), "UserExpired(bob) after expires_at (%s)" % ex)

    watching = any("is owned by" in l for l in mon_nobody.lines)
    leaked = [l for l in mon_nobody.lines if IFACE + "." in l]
    h.check(watching and not leaked and mon_nobody.p.poll() is None,
            "a gdbus monitor as uid %d (watching the name: %s) received none of the signals (%d)"
            % (NOBODY, watching, len(leaked)))
    return {"warn": w, "throttled": t}


def scenario_bus_restart(env, bus, cl, api):
    seen = len(env.log_text())
    # Down for 1.6 s: the first attempt (1 s after the loss) finds no bus,
    # the second (2 s later) finds the new one.
    bus.restart(down_s=1.6)
    h.check(wait_for(lambda: "dbus reconnected" in env.log_text()[seen:], timeout=20),
            "after dbus-daemon restarts the supervisor reconnects (log: %s)"
            % [l for l in env.log_text()[seen:].splitlines() if "dbus" in l][:4])
    h.check("dbus connection lost, reconnecting" in env.log_text()[seen:], "the loss is logged")
    h.check("dbus reconnect failed next_try_s=2" in env.log_text()[seen:],
            "an attempt while the bus is down fails and is retried 2 s later")
    owned = cl.busctl(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "NameHasOwner", "s", NAME])
    h.check(owned.returncode == 0 and json.loads(owned.stdout)["data"] == [True],
            "the name is owned on the new bus (%s)" % owned.stdout.strip())
    users = api.get("/v1/status").json["users_total"]
    h.check(cl.prop("Users") == users, "properties read on the new bus (Users = %d)" % users)
    err, out = cl.gdbus("GetUser", "'cfg'")
    h.check(err is None and "cfg" in out, "methods answer on the new bus (GetUser cfg: %s)" % (err or "ok"))
    h.check(api.get("/v1/users/cfg/status").status == 200, "the HTTP API was not affected")
    mon = Monitor(bus.address)
    try:
        time.sleep(0.5)  # the monitor's match rule is in place
        pid = state_of(cl, "cfg").get("worker_pid", 0)
        h.check(pid > 0, "cfg's worker pid from GetStatus (%d)" % pid)
        if pid > 0:
            os.kill(pid, signal.SIGKILL)
            rs = mon.wait("WorkerRestarted", lambda a: a.startswith("'cfg'"), timeout=20)
            h.check(rs is not None, "signals are sent on the new bus (WorkerRestarted %s)" % rs)
    finally:
        mon.stop()


def scenario_start_without_bus(env, bus, cl, api):
    bus.stop()
    seen = len(env.log_text())
    env.start()
    env.require_running(["cfg"])
    h.check("dbus unavailable, retrying bus=system next_try_s=1" in env.log_text()[seen:],
            "a start without the bus logs dbus unavailable, retrying (%s)"
            % [l for l in env.log_text()[seen:].splitlines() if "dbus" in l][:2])
    h.check(api.get("/v1/users/cfg/status").status == 200, "the HTTP API serves without the bus")
    time.sleep(1.5)  # at least one failed attempt (1 s after the start)
    bus.start()
    h.check(wait_for(lambda: "dbus reconnected" in env.log_text()[seen:], timeout=20),
            "the supervisor connects once the bus is up (log: %s)"
            % [l for l in env.log_text()[seen:].splitlines() if "dbus" in l][:4])
    owned = cl.busctl(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "NameHasOwner", "s", NAME])
    h.check(owned.returncode == 0 and json.loads(owned.stdout)["data"] == [True],
            "the name is owned once the bus is up (%s)" % owned.stdout.strip())
    err, out = cl.gdbus("GetUser", "'cfg'")
    h.check(err is None and "cfg" in out, "methods answer (GetUser cfg: %s)" % (err or "ok"))
    h.check(env.stop() == 0, "SIGTERM after the late bus: exit 0")


def test():
    missing = [t for t in ("dbus-daemon", "busctl", "gdbus", "setpriv", "stdbuf") if not shutil.which(t)]
    h.check(not missing, "tools present (missing: %s; bash scripts/deps.sh --test installs them)" % missing)
    if missing:
        return
    try:
        in_group = grp.getgrnam(GROUP).gr_gid == pwd.getpwnam(MEMBER).pw_gid
        outside = pwd.getpwnam(OTHER).pw_gid != grp.getgrnam(GROUP).gr_gid and OTHER not in grp.getgrnam(GROUP).gr_mem
    except KeyError:
        in_group = outside = False
    if not (in_group and outside):
        sb.skip("the policy test needs accounts %s (primary group %s) and %s (not in it)" % (MEMBER, GROUP, OTHER))
    env = sb.Setup("dbus", pool="10.212.0.0/16", prefix="mtb", nat=False, uid_first=312000)
    bus = None
    mon = mon_nobody = None
    try:
        bus = Bus(env)
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        # Probing on, for GetMaskProfiles (the fake mask speaks no TLS: builtin, with an error).
        # An upstream where nothing listens, for UpstreamHealth (one failure marks it down).
        text = env.config_text([{"name": "cfg", "secret": CFG}],
                               sections={"dbus": {"enabled": True, "bus": "system"},
                                         "mask": {"probe": True},
                                         "egress": {"health_interval_ms": 0, "failures": 1,
                                                    "retry_min_ms": 60000}})
        at = text.index("[[user]]")
        with open(env.config, "w") as f:
            f.write(text[:at] + '[[upstream]]\nname = "dead"\ntype = "socks5"\naddress = "%s:1099"\n\n'
                    % sb.INET_ADDR + text[at:])
        env.start()
        env.require_running(["cfg"])
        cl = Client(bus.address)
        api = Api(sock_path=os.path.join(env.run_dir, "api.sock"))
        h.check(wait_for(lambda: "dbus serving" in env.log_text(), timeout=10), "the supervisor logs dbus serving")
        mon = Monitor(bus.address)
        mon_nobody = Monitor(bus.address, uid=NOBODY)

        sb.log("--- 1, 2: introspection, properties")
        scenario_introspection(cl)
        scenario_properties(cl, api)
        sb.log("--- 3: methods")
        scenario_methods(env, cl, api)
        sb.log("--- 3c: upstreams")
        scenario_upstreams(env, cl, api, mon)
        sb.log("--- 4: bad calls")
        n_bad = scenario_bad_calls(env, cl, api)
        sb.log("--- 5: policy")
        scenario_policy(env, cl, api)
        sb.log("--- 6: signals")
        sig = scenario_signals(env, cl, api, mon, mon_nobody)

        cl.call("RemoveUser", "s", "bob")
        err, _ = cl.gdbus("GetUser", "'bob'")
        h.check(err == "org.mtwarden.Error.NoSuchUser" and api.get("/v1/users/bob").status == 404,
                "RemoveUser bob: gone on both faces (%s)" % err)

        sb.log("--- 3b: mask profiles")
        scenario_mask_profiles(cl, api)

        sb.log("--- 7: bus restart")
        for m in (mon, mon_nobody):
            m.stop()
        mon = mon_nobody = None
        scenario_bus_restart(env, bus, cl, api)

        sb.log("--- 8: stop")
        rc = env.stop()
        h.check(rc == 0, "SIGTERM: exit 0 (%s)" % rc)
        owned = cl.busctl(["call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "NameHasOwner", "s", NAME])
        h.check(owned.returncode == 0 and json.loads(owned.stdout)["data"] == [False],
                "the name is released after the stop (%s)" % owned.stdout.strip())
        sb.log("--- 9: start without the bus")
        scenario_start_without_bus(env, bus, cl, api)
        print("FIGURES: %d bad calls refused with named errors; QuotaWarning %s; UserThrottled %s"
              % (n_bad, sig["warn"], sig["throttled"]), flush=True)
    finally:
        for m in (mon, mon_nobody):
            if m:
                m.stop()
        env.cleanup()
        if bus:
            bus.proc.stop()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_dbus")
