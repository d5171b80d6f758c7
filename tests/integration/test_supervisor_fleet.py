#!/usr/bin/python3
"""Supervisor end to end, fleet: two mtwarden hosts share one PostgreSQL
database ([store] backend = "postgresql", docs/fleet.md) and carol's quota
counts what both carried.

Topology (inside the test's sandbox, tests/integration/sandbox.py):

    sandbox root netns                          netns "hostb"
    PostgreSQL 15 on 10.99.0.1 (this test's)     mtwarden host-b (nat = true)
    mtwarden host-a (nat = false)                listener 10.99.0.2:P
    fleet0 10.99.0.1/30  <------ veth ------>    eth0 10.99.0.2/30, default via 10.99.0.1

Each host has its own network namespace, as real hosts do (the cells' nft
table has one name per namespace). PostgreSQL is Debian's, started by the
test: initdb in a temporary directory as the unprivileged `postgres` user,
scram-sha-256 passwords, the role's password in a 0600 password_file.

Users follow the store: dora, created through host A's API, relays through
host B within 2 s (LISTEN/NOTIFY; docs/fleet.md); a PATCH of her limits on
A reaches her cell on B, disabling her on A stops her on B, and deleting her
on A removes her on B.

carol (same [[user]] in both files: quota 10 MB, 16 Mbit/s, throttled to
1 Mbit/s) moves 3 MB of echo (about 6.3 MB on her cell's veth) through host
A: A counts it and stays unthrottled, and host B's figure for carol shows
A's bytes within a few seconds (the fleet total re-read every 2 s). Then a
transfer through host B passes the fleet total over the quota: B throttles
carol, and A (carrying nothing for her now) throttles her too within a few
seconds. The store then shows each host's own rows under the quota and their
sum over it.

Needs root and Debian's postgresql package (scripts/deps.sh --test); without
it the test is skipped.
"""

import json
import os
import pwd
import shutil
import socket
import sys
import subprocess
import tempfile
import time

import harness as h
import sandbox as sb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_supervisor_api import UnixHTTPConnection  # noqa: E402

CAROL = "6223456789abcdef0123456789abcdef"
ALICE = "7223456789abcdef0123456789abcdef"
DORA = "8223456789abcdef0123456789abcdef"
QUOTA = 10_000_000
THROTTLE_BPS = 1_000_000
PGBIN = "/usr/lib/postgresql/15/bin"
NS_B = "hostb"
ADDR_ROOT = "10.99.0.1"
ADDR_B = "10.99.0.2"
PG_PORT = 55433
DB_PASSWORD = "fleet-db-pw"


class Postgres:
    """A throw-away PostgreSQL server (docs: /work/shared test recipe 4)."""

    def __init__(self, listen, port):
        self.dir = tempfile.mkdtemp(prefix="mtw-pg-")
        pg = pwd.getpwnam("postgres")
        os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        os.chmod(self.dir, 0o700)
        self.data = os.path.join(self.dir, "data")
        self.listen = listen
        self.port = port
        su_pw = os.path.join(self.dir, "su.pw")
        with open(su_pw, "w") as f:
            f.write("su-pw\n")
        os.chown(su_pw, pg.pw_uid, pg.pw_gid)
        os.chmod(su_pw, 0o600)
        self.run_as_pg([PGBIN + "/initdb", "-D", self.data, "-U", "postgres", "--pwfile=" + su_pw,
                        "--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        # initdb allows loopback only: the hosts come over the veth.
        with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
            f.write("host all all 10.99.0.0/30 scram-sha-256\n")
        self.run_as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"),
                        "-w", "-t", "30", "-o",
                        "-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s -c fsync=off"
                        % (listen, port, self.dir), "start"])
        self.started = True

    def run_as_pg(self, argv):
        r = subprocess.run(["runuser", "-u", "postgres", "--"] + argv, cwd=self.dir, capture_output=True,
                           text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d): %s %s" % (argv[0], r.returncode, r.stdout, r.stderr))
        return r

    def sql(self, text, user="postgres", password="su-pw", db="postgres"):
        env = dict(os.environ, PGPASSWORD=password)
        r = subprocess.run([PGBIN + "/psql", "-h", self.listen, "-p", str(self.port), "-U", user, "-d", db,
                            "-v", "ON_ERROR_STOP=1", "-At", "-F", "|", "-c", text],
                           capture_output=True, text=True, env=env, timeout=30)
        if r.returncode != 0:
            raise RuntimeError("psql failed (%d): %s" % (r.returncode, r.stderr.strip()))
        return [l.split("|") for l in r.stdout.splitlines() if l]

    def stop(self):
        if self.started:
            self.started = False
            try:
                self.run_as_pg([PGBIN + "/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop"])
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                sb.log("postgres stop: %s" % e)
        shutil.rmtree(self.dir, ignore_errors=True)


class HostB(sb.Setup):
    """A Setup whose supervisor runs in network namespace NS_B."""

    def argv(self, extra=()):
        # nsenter, not `ip netns exec`: only the network namespace changes
        # (ip netns exec would mount a fresh /sys, hiding the cgroup tree).
        return ["nsenter", "--net=/run/netns/" + NS_B, "--"] + super().argv(extra)


def make_host_b_netns():
    sb.run(["ip", "netns", "add", NS_B])
    sb.run(["ip", "link", "add", "fleet0", "type", "veth", "peer", "name", "eth0", "netns", NS_B])
    sb.run(["ip", "addr", "add", ADDR_ROOT + "/30", "dev", "fleet0"])
    sb.run(["ip", "link", "set", "fleet0", "up"])
    ns = ["ip", "netns", "exec", NS_B]
    sb.run(ns + ["ip", "link", "set", "lo", "up"])
    sb.run(ns + ["ip", "addr", "add", ADDR_B + "/30", "dev", "eth0"])
    sb.run(ns + ["ip", "link", "set", "eth0", "up"])
    sb.run(ns + ["ip", "route", "add", "default", "via", ADDR_ROOT])
    # The sandbox root forwards host B's (masqueraded) cells to the fake DCs.
    sb.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])


class Stream(sb.Stream):
    """sb.Stream to any address (host B listens on its own)."""

    def __init__(self, host, port, secret_hex, dc=2, timeout=20):
        self.c = h.Obfs2Client(secret_hex, dc=dc)
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s.sendall(self.c.init)


def echo(host, port, secret, total, chunk=16384, timeout=30):
    st = Stream(host, port, secret, timeout=timeout)
    try:
        done = 0
        while done < total:
            n = min(chunk, total - done)
            if not st.roundtrip(n):
                return False
            done += n
        return True
    finally:
        st.close()



def api(env, method, path, body=None):
    """One request to env's API over its Unix socket: (status, json)."""
    c = UnixHTTPConnection(os.path.join(env.run_dir, "api.sock"), timeout=10)
    try:
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)
    finally:
        c.close()


def relays(host, port, secret, n=4096):
    """True when one short echo through the proxy comes back intact."""
    try:
        return echo(host, port, secret, n, timeout=3)
    except (OSError, ConnectionError):
        return False


def wait_for(pred, timeout, poll=0.02):
    """Seconds until pred() held, or None after `timeout`."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(poll)


def scenario_users_follow(a, b):
    t0 = time.monotonic()
    st, u = api(a, "POST", "/v1/users", {"name": "dora", "secrets": [DORA],
                                          "limits": {"rate_down": "8mbit", "rate_up": "8mbit"}})
    h.check(st == 201, "POST /v1/users dora on host A: 201 (%s %s)" % (st, u))

    def b_dora():
        return b.user("dora") or {}
    up = wait_for(lambda: b_dora().get("state") == "running", timeout=10)
    ok = relays(ADDR_B, b.port, DORA)
    dt = time.monotonic() - t0
    sb.log("dora running on host B after %s s, relayed %.2f s after host A created her" % (up, dt))
    h.check(up is not None and ok and dt <= 2.0,
            "dora, created on host A, relays through host B within 2 s (%.2f s)" % dt)
    h.check(relays("127.0.0.1", a.port, DORA), "and through host A")

    t0 = time.monotonic()
    st, u = api(a, "PATCH", "/v1/users/dora", {"limits": {"rate_down": "3mbit"}})
    h.check(st == 200, "PATCH dora's rate_down on host A: 200 (%s)" % st)
    dt = wait_for(lambda: (b_dora().get("cell") or {}).get("rate_down_bps") == 3_000_000, timeout=10)
    sb.log("dora's new limit on host B's cell after %s s" % dt)
    h.check(dt is not None and dt <= 2.0, "the PATCH on host A shapes dora's cell on host B within 2 s (%s)" % dt)
    st_b, ub = api(b, "GET", "/v1/users/dora")
    h.check(st_b == 200 and ub["limits"]["rate_down_bps"] == 3_000_000,
            "host B's API shows dora's new limit (%s)" % (ub or {}).get("limits"))

    st, _ = api(a, "PATCH", "/v1/users/dora", {"enabled": False})
    h.check(st == 200, "PATCH dora enabled=false on host A: 200 (%s)" % st)
    dt = wait_for(lambda: b_dora().get("state") == "disabled", timeout=10)
    h.check(dt is not None and dt <= 2.0, "disabled on host A, dora stops on host B within 2 s (%s)" % dt)
    h.check(not relays(ADDR_B, b.port, DORA), "a disabled dora does not relay through host B")
    t0 = time.monotonic()
    st, _ = api(a, "PATCH", "/v1/users/dora", {"enabled": True})
    up = wait_for(lambda: b_dora().get("state") == "running", timeout=10)
    ok = relays(ADDR_B, b.port, DORA)
    dt = time.monotonic() - t0
    h.check(st == 200 and up is not None and ok and dt <= 2.0,
            "enabled again on host A, she relays through host B within 2 s (%.2f s)" % dt)

    t0 = time.monotonic()
    st, _ = api(a, "DELETE", "/v1/users/dora")
    h.check(st == 204, "DELETE dora on host A: 204 (%s)" % st)
    dt = wait_for(lambda: api(b, "GET", "/v1/users/dora")[0] == 404, timeout=10)
    h.check(dt is not None and dt <= 2.0, "deleted on host A, dora is gone on host B within 2 s (%s)" % dt)
    h.check(b.user("dora") is None, "host B's status no longer lists dora")
    h.check(not relays(ADDR_B, b.port, DORA), "dora's secret no longer relays through host B")


def users():
    return [{"name": "alice", "secret": ALICE},
            {"name": "carol", "secret": CAROL, "quota": "10MB", "throttle_rate": "1mbit",
             "rate_down": "16mbit", "rate_up": "16mbit"}]


def store_section(pw_file, host):
    return {"backend": "postgresql",
            "postgresql": "host=%s port=%d dbname=mtw user=mtw sslmode=disable" % (ADDR_ROOT, PG_PORT),
            "password_file": pw_file, "host_name": host}


def usage(env, name):
    return sb.user_usage(env.user(name))


def test():
    if not os.access(PGBIN + "/initdb", os.X_OK):
        sb.skip("PostgreSQL 15 server binaries not found in %s (scripts/deps.sh --test)" % PGBIN)
    make_host_b_netns()
    pg = Postgres(ADDR_ROOT, PG_PORT)
    a = b = None
    try:
        pg.sql("CREATE ROLE mtw LOGIN PASSWORD '%s'" % DB_PASSWORD)
        pg.sql("CREATE DATABASE mtw OWNER mtw")
        a = sb.Setup("fleet-a", pool="10.213.0.0/16", prefix="mfa", nat=False, uid_first=310000)
        b = HostB("fleet-b", pool="10.214.0.0/16", prefix="mfb", nat=True, uid_first=310200)
        pw_file = os.path.join(a.dir, "db.password")
        with open(pw_file, "w") as f:
            f.write(DB_PASSWORD + "\n")
        os.chmod(pw_file, 0o600)
        a.write_config(users(), sections={"store": store_section(pw_file, "host-a")})
        b.write_config(users(), sections={"store": store_section(pw_file, "host-b")},
                       listeners=[{"bind": "%s:%d" % (ADDR_B, b.port), "protocols": "all"}])
        a.start()
        b.start()
        a.require_running(["alice", "carol"])
        b.require_running(["alice", "carol"])
        hosts = sorted(r[0] for r in pg.sql("SELECT name FROM hosts", "mtw", DB_PASSWORD, "mtw"))
        h.check(hosts == ["host-a", "host-b"], "both hosts registered in the shared store (%s)" % hosts)
        h.check(echo(ADDR_B, b.port, ALICE, 64 * 1024), "alice relays through host B (its own namespace)")

        sb.log("--- users follow the store")
        scenario_users_follow(a, b)

        sb.log("--- carol moves 3 MB through host A")
        h.check(echo("127.0.0.1", a.port, CAROL, 3 * 1024 * 1024), "3 MB echo of carol through host A")
        s = a.wait_status(lambda s: sb.user_usage(a.user("carol", s)) >= 6_000_000, timeout=10)
        used_a = sb.user_usage(a.user("carol", s))
        h.check(used_a >= 6_000_000 and used_a < QUOTA and not a.user("carol", s)["throttled"],
                "host A counts carol's %d bytes, under the quota, unthrottled" % used_a)
        t0 = time.monotonic()
        s = b.wait_status(lambda s: sb.user_usage(b.user("carol", s)) >= used_a, timeout=10, poll=0.05)
        seen = time.monotonic() - t0
        used_b = sb.user_usage(b.user("carol", s))
        sb.log("host B shows carol's fleet usage %d %.2f s after host A's status did" % (used_b, seen))
        h.check(used_b >= used_a and seen <= 5.0,
                "host B's figure for carol includes host A's bytes within 5 s (%d after %.2f s)" % (used_b, seen))
        h.check(not b.user("carol", s)["throttled"], "host B: carol not throttled yet")

        sb.log("--- carol pushes through host B until the fleet total passes the quota")
        st = Stream(ADDR_B, b.port, CAROL, timeout=30)
        t1 = time.monotonic()
        thr_b = None
        moved = 0
        try:
            st.s.settimeout(5)
            while time.monotonic() - t1 < 30 and moved < 12 * 1024 * 1024:
                if not st.roundtrip(16384):
                    break
                moved += 16384
                if moved % (256 * 1024) == 0:
                    u = b.user("carol")
                    if u and u["throttled"]:
                        thr_b = time.monotonic()
                        break
        except (OSError, ConnectionError) as e:
            sb.log("host B stream: %s after %d bytes" % (e, moved))
        finally:
            st.close()
        if thr_b is None:
            s = b.wait_status(lambda s: b.user("carol", s)["throttled"], timeout=5, poll=0.05)
            if s and b.user("carol", s)["throttled"]:
                thr_b = time.monotonic()
        cb = b.user("carol")
        h.check(thr_b is not None and cb["quota_state"] == "throttled" and "quota" in cb["throttle_reason"]
                and cb["rate_down_bps"] == THROTTLE_BPS,
                "host B throttles carol on the fleet total after %d bytes through B (%s, %r, %s bps)"
                % (moved, cb["quota_state"], cb["throttle_reason"], cb["rate_down_bps"]))
        s = a.wait_status(lambda s: a.user("carol", s)["throttled"], timeout=10, poll=0.05)
        lag = time.monotonic() - (thr_b or time.monotonic())
        ca = a.user("carol", s)
        sb.log("host A throttled carol %.2f s after host B did (A's figure %d)" % (lag, sb.user_usage(ca)))
        h.check(ca["throttled"] and ca["quota_state"] == "throttled" and ca["cell"]["rate_down_bps"] == THROTTLE_BPS,
                "host A throttles carol too, carrying nothing for her (%s, cell %s bps)"
                % (ca["quota_state"], ca["cell"]["rate_down_bps"]))
        h.check(lag <= 5.0, "host A throttled within 5 s of host B (%.2f s)" % lag)
        h.check(not a.user("alice")["throttled"] and not b.user("alice")["throttled"], "alice unaffected")

        rows = pg.sql("SELECT p.host, p.bytes_up + p.bytes_down FROM usage_period p JOIN users u "
                      "ON u.id = p.user_id WHERE u.name = 'carol' ORDER BY p.host", "mtw", DB_PASSWORD, "mtw")
        per_host = {r[0]: int(r[1]) for r in rows}
        sb.log("carol's stored usage per host: %s" % per_host)
        h.check(set(per_host) == {"host-a", "host-b"} and all(v < QUOTA for v in per_host.values())
                and sum(per_host.values()) >= QUOTA,
                "each host alone stayed under the quota and their sum passed it (%s)" % per_host)
        h.check(a.stop() == 0, "host A: SIGTERM, exit 0")
        h.check(b.stop() == 0, "host B: SIGTERM, exit 0")
    finally:
        for env in (b, a):
            if env:
                env.cleanup()
        pg.stop()


if __name__ == "__main__":
    sb.main_wrapper(test, "test_supervisor_fleet")
