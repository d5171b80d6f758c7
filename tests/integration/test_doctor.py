#!/usr/bin/python3
"""`mtwarden doctor` against a live set-up: Debian's nginx (TLS 1.3, a
self-signed certificate for mask.test on :443 and one for other.test on
:8443) is the mask, microsocks an upstream, the fake DC every DC, and the
real supervisor and gate serve a fake-TLS-only listener on 127.0.0.1:443
plus a second one whose mask is a plain HTTP server. Each check is seen
passing, then failing (or warning) for the reason it exists: the mask
down, a certificate for another name, the clock skewed through doctor's
test-only clock offset, a mask 2 x 150 ms away (a delaying relay: no netem
here), another server for the domain (profile differs), a self-probe
difference (the second listener), a
DC on a closed port, the upstream killed, a mask target that is this
proxy, no stored profile, the DNS name not pointing here. The mask
profiles are checked over the API, the CLI and /metrics (promtool), in
each of their states: measured, builtin (a domain whose mask is down),
stored (after a restart with nginx gone).

Runs in its own network sandbox (tests/integration/sandbox.py); needs root,
nginx-light, microsocks and promtool (scripts/deps.sh --test).
"""

import json
import os
import shutil
import signal
import subprocess
import time

import harness as h
import mask_site as ms
import sandbox as sb

DOMAIN = ms.DOMAIN
DOWN = "down.test"
SECRET = "ee" + "446f63746f72546573745365637265" + "74" + DOMAIN.encode().hex()
SECRET2 = "ee" + "11" * 16 + DOWN.encode().hex()
NGINX = ms.NGINX
MICROSOCKS = "/usr/bin/microsocks"
CTL = os.environ.get("MTW_CTL", "build/ht/ctl/mtwardenctl")
OFFSET_ENV = "MTWARDEN_DOCTOR_TEST_CLOCK_OFFSET_S"
HTTP_PORT = 8080
SOCKS_PORT = 1080
ECDSA_PORT = 8444  # nginx, mask.test with an ECDSA certificate
SLOW_PORT = 9443   # a relay to nginx's mask.test that delays every chunk
SLOW_DELAY_S = 0.15

# A TCP relay that holds every chunk for a while in both directions: a mask
# far from this host (no netem in the test kernel), for the latency check.
SLOW_RELAY = r"""
import asyncio, sys
listen, port, target, tport, delay = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
async def pump(r, w):
    try:
        while True:
            b = await r.read(65536)
            if not b:
                break
            await asyncio.sleep(delay)
            w.write(b)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()
async def serve(cr, cw):
    try:
        ur, uw = await asyncio.open_connection(target, tport)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pump(cr, uw), pump(ur, cw))
async def main():
    srv = await asyncio.start_server(serve, listen, port)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
"""


def start_nginx(d):
    """mask.test on 443 and, with an ECDSA key, on ECDSA_PORT: a much
    shorter first flight than the RSA one the daemon stores (the profile
    check's "differs" case); other.test on 8443."""
    os.makedirs(d)
    for base, name, key in ((DOMAIN, DOMAIN, "rsa"), ("other.test", "other.test", "rsa"),
                            ("ecdsa", DOMAIN, "ec")):
        ms.make_cert(d, base, name, key, days=90)
    return ms.start_nginx(d, [(443, DOMAIN, DOMAIN), (8443, "other.test", "other.test"),
                              (ECDSA_PORT, DOMAIN, "ecdsa")])


def wait_port(addr, port, inet=True, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cmd = ["ss", "-Hltn", "src", "%s:%d" % (addr, port)]
        out = sb.run(sb.in_inet(cmd) if inet else cmd, check=False).stdout
        if out.strip():
            return True
        time.sleep(0.1)
    return False


def doctor(config, *args, offset=None):
    """Runs `mtwarden doctor --json`; returns (exit code, {id or id:subject: check})."""
    env = dict(os.environ)
    env.pop(OFFSET_ENV, None)
    if offset is not None:
        env[OFFSET_ENV] = str(offset)
    argv = [sb.SUPERVISOR, "doctor", "--config", config, "--json", "--ntp", "none",
            "--timeout-ms", "1500"] + list(args)
    p = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        print("doctor stdout: %r stderr: %r" % (p.stdout[:2000], p.stderr[:2000]))
        raise
    by = {}
    for c in doc["checks"]:
        by[c["id"] + (":" + c["subject"] if c["subject"] else "")] = c
        by.setdefault(c["id"], c)
    h.check(doc["exit_code"] == p.returncode,
            "doctor's JSON exit_code %d is its exit status %d" % (doc["exit_code"], p.returncode))
    return p.returncode, by


def verdict(by, key, want, what):
    c = by.get(key)
    got = c["verdict"] if c else None
    h.check(got == want, "%s: %s is %s (%s)" % (what, key, want, (c or {}).get("reason", "absent")))
    return c


def api_get(env, path):
    sock = os.path.join(env.run_dir, "api.sock")
    p = subprocess.run(["curl", "-s", "--max-time", "10", "--unix-socket", sock,
                        "http://localhost" + path], capture_output=True, timeout=20)
    return p.stdout


def ctl(env, *args):
    sock = os.path.join(env.run_dir, "api.sock")
    p = subprocess.run([CTL, "--socket", sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout


def profiles_by_domain(env):
    body = api_get(env, "/v1/mask-profiles")
    try:
        doc = json.loads(body)
    except ValueError:
        return None, {}
    return doc, {p["domain"]: p for p in doc.get("profiles", [])}


def check_metrics(env, want_sources):
    text = api_get(env, "/metrics").decode()
    for dom, src in want_sources.items():
        line = 'mtwarden_mask_profile_info{domain="%s",' % dom
        found = [l for l in text.splitlines() if l.startswith(line)]
        h.check(found and ('source="%s"' % src) in found[0],
                "/metrics: %s profile source=%s (%s)" % (dom, src, found[:1]))
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=30)
    out = (p.stdout + p.stderr).decode(errors="replace").strip()
    h.check(p.returncode == 0 and out == "", "promtool check metrics: clean (%r)" % out[:300])
    return text


def test():
    for tool, path in (("nginx", NGINX), ("microsocks", MICROSOCKS), ("promtool",
                                                                       shutil.which("promtool") or "")):
        if not path or not os.access(path, os.X_OK):
            h.check(False, "%s installed (scripts/deps.sh --test)" % tool)
            return
    env = sb.Setup("doctor", pool="10.217.0.0/16", prefix="mtd", nat=False, uid_first=360000)
    nginx_dir = os.path.join(env.dir, "nginx")
    www = os.path.join(env.dir, "plain")
    os.makedirs(www)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("not the mask\n")
    try:
        ms.hosts_file(env.dir)
        nginx = start_nginx(nginx_dir)
        ca = os.path.join(nginx_dir, DOMAIN + ".crt")
        plain = sb.Proc(sb.in_inet(["/usr/bin/python3", "-m", "http.server", "--bind", sb.INET_ADDR,
                                    str(HTTP_PORT), "-d", www]), name="http-server",
                        stderr_path=os.path.join(env.dir, "http.log"))
        socks = sb.Proc(sb.in_inet([MICROSOCKS, "-i", sb.INET_ADDR, "-p", str(SOCKS_PORT),
                                    "-u", "doc", "-P", "doc-pw"]), name="microsocks",
                        stderr_path=os.path.join(env.dir, "socks.log"))
        slow = sb.Proc(sb.in_inet(["/usr/bin/python3", "-c", SLOW_RELAY, sb.INET_ADDR, str(SLOW_PORT),
                                   sb.INET_ADDR, "443", str(SLOW_DELAY_S)]), name="slow-relay",
                       stderr_path=os.path.join(env.dir, "slow.log"))
        h.check(wait_port(sb.INET_ADDR, HTTP_PORT) and wait_port(sb.INET_ADDR, SOCKS_PORT) and
                wait_port(sb.INET_ADDR, SLOW_PORT),
                "plain HTTP server, microsocks and the slow relay listening")
        other_port = sb.free_port()
        base_mask = {"address": "", "connect_timeout_ms": 1000, "discard_timeout_ms": 1000,
                     "probe": True, "probe_handshakes": 3}

        def write_cfg(path, domains=None, state_dir=None, drop_bob=False, dc_down=None):
            users = [{"name": "alice", "secret": SECRET}]
            if not drop_bob:
                users.append({"name": "bob", "secret": SECRET2})
            doms = {DOWN: "%s:9" % sb.INET_ADDR}
            doms.update(domains or {})
            sections = {"mask": dict(base_mask),
                        "mask.domains": {'"%s"' % k: v for k, v in doms.items()}}
            if state_dir:
                sections["server"] = {"state_dir": state_dir}
            text = env.config_text(users, sections=sections, listeners=[
                {"bind": "127.0.0.1:443", "protocols": "tls"},
                {"bind": "127.0.0.1:%d" % other_port, "protocols": "tls",
                 "mask": "%s:%d" % (sb.INET_ADDR, HTTP_PORT)}])
            if dc_down is not None:
                text = text.replace('"%d=%s:%d"' % (dc_down, sb.INET_ADDR, env.dc["echo"][1]),
                                    '"%d=%s:1"' % (dc_down, sb.INET_ADDR))
            text += ('\n[[upstream]]\nname = "ms"\ntype = "socks5"\naddress = "%s:%d"\n'
                     'auth = "fixed"\nusername = "doc"\npassword = "doc-pw"\n'
                     % (sb.INET_ADDR, SOCKS_PORT))
            with open(path, "w") as f:
                f.write(text)
            return path

        write_cfg(env.config)
        env.start()
        env.require_running(["alice", "bob"])
        # The daemon probes at start: mask.test measured and stored, down.test fails.
        prof = os.path.join(env.state_dir, "mask-profiles", DOMAIN + ".profile")
        deadline = time.monotonic() + 30
        doc, by_dom = None, {}
        while time.monotonic() < deadline:
            doc, by_dom = profiles_by_domain(env)
            if os.path.exists(prof) and by_dom.get(DOWN, {}).get("last_error"):
                break
            time.sleep(0.3)
        h.check(os.path.exists(prof), "the daemon stored mask.test's profile")

        # ---- profiles over the API, the CLI and /metrics
        m = by_dom.get(DOMAIN, {})
        d = by_dom.get(DOWN, {})
        h.check(doc is not None and doc.get("probing") is True, "GET /v1/mask-profiles: probing on")
        h.check(m.get("source") == "measured" and m.get("age_s", -1) >= 0 and
                m.get("measured_at", 0) > 0 and m.get("flight_records", 0) >= 1 and
                m.get("target") == DOMAIN + ":443",
                "API: mask.test measured, age %s, %s flight records, target %s"
                % (m.get("age_s"), m.get("flight_records"), m.get("target")))
        h.check(d.get("source") == "builtin" and d.get("age_s") == -1 and d.get("last_error"),
                "API: down.test on the built-in profile with its probe error (%s)"
                % d.get("last_error", "")[:80])
        rc, out = ctl(env, "mask")
        rows = {l.split()[0]: l for l in out.splitlines()[1:] if l.strip()}
        h.check(rc == 0 and "measured" in rows.get(DOMAIN, "") and "builtin" in rows.get(DOWN, ""),
                "mtwardenctl mask: a row per domain, measured and builtin (rc %d)\n%s" % (rc, out))
        rc, out = ctl(env, "mask", "--json")
        h.check(rc == 0 and json.loads(out)["profiles"][0]["domain"] in (DOMAIN, DOWN),
                "mtwardenctl mask --json: the API's JSON")
        text = check_metrics(env, {DOMAIN: "measured", DOWN: "builtin"})
        h.check('mtwarden_mask_profile_probe_failing{domain="down.test"} 1' in text and
                'mtwarden_mask_profile_age_seconds{domain="mask.test"}' in text and
                'mtwarden_mask_profile_age_seconds{domain="down.test"}' not in text,
                "/metrics: down.test failing with no age, mask.test with an age")

        # ---- doctor: everything it can pass passes
        code, by = doctor(env.config, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "listener", "pass", "fake TLS on 127.0.0.1:443")
        verdict(by, "mask.tls:" + DOMAIN, "pass", "nginx answers TLS 1.3")
        verdict(by, "mask.cert:" + DOMAIN, "pass", "certificate for mask.test trusted by --ca-file")
        c = verdict(by, "mask.profile:" + DOMAIN, "pass", "stored profile matches the mask")
        h.check(c and "multi-record" in c["reason"], "profile: nginx's flight is multi-record")
        verdict(by, "mask.latency:" + DOMAIN, "pass", "loopback-near mask")
        verdict(by, "mask.loop:" + DOMAIN, "pass", "nginx is not this proxy")
        verdict(by, "dns:" + DOMAIN, "pass", "mask.test resolves to the --public-address")
        c = verdict(by, "clock", "pass", "clock against nginx's Date")
        h.check(c and "HTTP Date" in c["values"].get("source", ""), "clock read from the HTTP Date")
        for n in range(1, 6):
            verdict(by, "dc:dc %d" % n, "pass", "DC %d (fake DC) reachable" % n)
        verdict(by, "upstream:ms", "pass", "every DC through microsocks")
        c = verdict(by, "self_probe:127.0.0.1:443", "pass", "self-probe of the 443 listener")
        h.check(c and "indistinguishable" in c["reason"], "self-probe says indistinguishable")
        verdict(by, "mask.tls:" + DOWN, "fail", "down.test's mask is a closed port")
        h.check(code == 2, "exit 2 with a failed check (down.test), got %d" % code)

        # Without down.test (a config of its own), the rest: exit 0.
        only = write_cfg(os.path.join(env.dir, "only.toml"), drop_bob=True)
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        h.check(code == 0, "every check passes: exit 0 (got %d: %s)" % (
            code, [k for k, v in by.items() if v["verdict"] not in ("pass", "skip")]))

        # ---- warnings and failures, one cause each
        code, by = doctor(only, "--public-address", sb.INET_ADDR)
        verdict(by, "mask.cert:" + DOMAIN, "warn", "self-signed without --ca-file")
        h.check(code == 1, "warnings only: exit 1 (got %d)" % code)
        code, by = doctor(only, "--ca-file", ca)
        verdict(by, "dns:" + DOMAIN, "warn", "mask.test does not resolve to this host's address")
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR, offset=2000)
        c = verdict(by, "clock", "fail", "clock 2000 s ahead (test clock offset)")
        h.check(c and abs(float(c["values"]["offset_s"]) + 2000) < 5,
                "measured offset about -2000 s (%s)" % (c or {}).get("values", {}).get("offset_s"))
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR, offset=-60)
        verdict(by, "clock", "warn", "clock 60 s behind")
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR,
                          "--self-probe", "127.0.0.1:%d" % other_port)
        c = verdict(by, "self_probe:127.0.0.1:%d" % other_port, "fail",
                    "self-probe of a listener masking to a plain HTTP server")
        h.check(c and any(v.startswith("DIFFERENT") for v in c["values"].values()),
                "the differences are listed (%s)" % (c or {}).get("values"))
        h.check(code == 2, "a failed check: exit 2 (got %d)" % code)
        wrong = write_cfg(os.path.join(env.dir, "wrongcert.toml"), drop_bob=True,
                          domains={DOMAIN: "%s:8443" % sb.INET_ADDR})
        code, by = doctor(wrong, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        c = verdict(by, "mask.cert:" + DOMAIN, "fail", "a certificate for other.test")
        h.check(c and "other.test" in c["reason"], "the reason names other.test")
        # The same site behind a slow path: every handshake >= 2 x 150 ms.
        far = write_cfg(os.path.join(env.dir, "far.toml"), drop_bob=True,
                        domains={DOMAIN: "%s:%d" % (sb.INET_ADDR, SLOW_PORT)})
        code, by = doctor(far, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        c = verdict(by, "mask.latency:" + DOMAIN, "warn", "a mask 2 x 150 ms away")
        h.check(c and "ms from here" in c["reason"] and c.get("fix"),
                "the latency warning says how long and what to do (%s)" % (c or {}).get("values"))
        verdict(by, "mask.profile:" + DOMAIN, "pass", "the same nginx behind the relay: profile matches")
        h.check(code == 1, "a slow mask: warnings only, exit 1 (got %d)" % code)
        # Another server for the domain (ECDSA): not what the daemon measured.
        other = write_cfg(os.path.join(env.dir, "ecdsa.toml"), drop_bob=True,
                          domains={DOMAIN: "%s:%d" % (sb.INET_ADDR, ECDSA_PORT)})
        code, by = doctor(other, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        c = verdict(by, "mask.profile:" + DOMAIN, "warn", "a mask whose flight differs from the stored profile")
        h.check(c and "differs" in c["reason"], "the reason says the stored profile differs (%s)"
                % (c or {}).get("reason"))
        verdict(by, "mask.tls:" + DOMAIN, "pass", "the ECDSA server answers TLS 1.3")
        fresh = write_cfg(os.path.join(env.dir, "fresh.toml"), drop_bob=True,
                          state_dir=os.path.join(env.dir, "fresh-state"))
        code, by = doctor(fresh, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        c = verdict(by, "mask.profile:" + DOMAIN, "warn", "no stored profile")
        h.check(c and "built-in profile" in c["reason"], "doctor says the built-in profile is in use")
        loop = write_cfg(os.path.join(env.dir, "loop.toml"), drop_bob=True, domains={DOMAIN: "127.0.0.1:443"})
        code, by = doctor(loop, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "mask.loop:" + DOMAIN, "fail", "mask target 127.0.0.1:443 is our listener")
        verdict(by, "mask.tls:" + DOMAIN, "skip", "no TLS probe of ourselves")
        dcdown = write_cfg(os.path.join(env.dir, "dcdown.toml"), drop_bob=True, dc_down=3)
        code, by = doctor(dcdown, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "dc:dc 3", "fail", "DC 3 on a closed port")
        verdict(by, "dc:dc 2", "pass", "DC 2 still reachable")
        c = verdict(by, "upstream:ms", "warn", "DC 3 not reached through microsocks, the rest are")
        socks.signal(signal.SIGTERM)
        socks.wait(10)
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "upstream:ms", "fail", "microsocks stopped")

        # ---- the daemon stopped: nothing on 443
        env.stop()
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "listener", "warn", "nothing accepts on 127.0.0.1:443")
        verdict(by, "self_probe:127.0.0.1:443", "skip", "no listener to self-probe")

        # ---- the mask down: the daemon restarts on its stored profile
        nginx.signal(signal.SIGQUIT)
        nginx.wait(20)
        env.start()
        env.require_running(["alice", "bob"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            doc, by_dom = profiles_by_domain(env)
            if by_dom.get(DOMAIN, {}).get("last_error"):
                break
            time.sleep(0.3)
        m = by_dom.get(DOMAIN, {})
        h.check(m.get("source") == "stored" and m.get("last_error"),
                "API: mask.test on its stored profile after a failed probe (%s, %s)"
                % (m.get("source"), m.get("last_error", "")[:60]))
        rc, out = ctl(env, "mask")
        h.check("stored" in out, "mtwardenctl mask shows the stored profile")
        check_metrics(env, {DOMAIN: "stored", DOWN: "builtin"})
        code, by = doctor(only, "--ca-file", ca, "--public-address", sb.INET_ADDR)
        verdict(by, "mask.tls:" + DOMAIN, "fail", "nginx stopped")
        verdict(by, "mask.cert:" + DOMAIN, "skip", "no certificate to look at")
        verdict(by, "clock", "warn", "no reference clock (no NTP, no mask Date)")
        h.check(code == 2, "mask down: exit 2 (got %d)" % code)
        plain.stop()
        slow.stop()
    finally:
        env.cleanup()


if __name__ == "__main__":
    sb.enter()
    try:
        test()
    finally:
        sb.kill_all()
    h.finish()
