#!/usr/bin/python3
"""Install and packaging: `cmake --install` into a DESTDIR puts every file in
its place (binaries, units, D-Bus files, man pages, the default config,
docs); `systemd-analyze verify` accepts the installed units (their commands
exist in the DESTDIR tree, their man pages are the installed ones);
`systemd-analyze security --offline=true` rates mtwarden.service at most 4.0;
`cpack -G DEB` makes a .deb whose control data (Depends from dpkg-shlibdeps,
conffiles, maintainer scripts) and contents are checked, whose extracted
programs and man pages work, and which apt accepts on this Debian 12
(`apt-get install -s`, a simulation). Nothing is installed on the host and
no network is used."""

import glob
import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import harness as h

BUILD = os.environ.get("MTW_BUILD_DIR", "")
SOURCE = os.path.abspath(h.SOURCE_DIR)
PROGRAMS = ["mtwarden", "mtwarden-worker", "mtwarden-gate", "mtwarden-webfront", "mtwardenctl"]
MAN_PAGES = ["usr/share/man/man8/mtwarden.8.gz", "usr/share/man/man8/mtwarden-worker.8.gz",
             "usr/share/man/man8/mtwarden-gate.8.gz", "usr/share/man/man8/mtwarden-webfront.8.gz",
             "usr/share/man/man1/mtwardenctl.1.gz"]
MAX_EXPOSURE = 4.0


def run(argv, timeout=120, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"%s:[A-Z]+=(.*)$" % re.escape(name), line.strip())
            if m:
                return m.group(1)
    return None


def tree_files(root):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.relpath(os.path.join(d, f), root))
    return out


def expected_files(unit_dir):
    """Every file an install must produce, relative to the DESTDIR root."""
    files = {"usr/bin/" + p for p in PROGRAMS}
    files |= {unit_dir + "/mtwarden.service", unit_dir + "/mtwarden.socket"}
    files |= set(MAN_PAGES)
    files.add("etc/mtwarden/mtwarden.toml")
    files |= {"usr/share/doc/mtwarden/" + os.path.basename(p)
              for p in glob.glob(os.path.join(SOURCE, "docs", "*.md"))}
    # The D-Bus policy and activation file, once their sources exist.
    if os.path.exists(os.path.join(SOURCE, "systemd/org.mtwarden.Manager1.conf.in")):
        files.add("usr/share/dbus-1/system.d/org.mtwarden.Manager1.conf")
    if os.path.exists(os.path.join(SOURCE, "systemd/org.mtwarden.Manager1.service")):
        files.add("usr/share/dbus-1/system-services/org.mtwarden.Manager1.service")
    if os.path.exists(os.path.join(SOURCE, "docs/org.mtwarden.Manager1.xml")):
        files.add("usr/share/dbus-1/interfaces/org.mtwarden.Manager1.xml")
    return files


def check_install(work):
    root = os.path.join(work, "root")
    env = dict(os.environ, DESTDIR=root)
    r = run(["cmake", "--install", BUILD, "--prefix", "/usr"], env=env)
    h.check(r.returncode == 0, "cmake --install --prefix /usr into DESTDIR (%s)" % r.stderr[-300:])
    unit_dir = (cache_value("MTW_SYSTEMD_UNITDIR") or "lib/systemd/system").lstrip("/")
    if not os.path.isabs(cache_value("MTW_SYSTEMD_UNITDIR") or ""):
        unit_dir = "usr/" + unit_dir
    got = tree_files(root)
    want = expected_files(unit_dir)
    h.check(not (want - got), "every expected file installed (missing: %s)" % sorted(want - got))
    h.check(not (got - want), "nothing else installed (extra: %s)" % sorted(got - want))

    for p in PROGRAMS:
        path = os.path.join(root, "usr/bin", p)
        h.check(os.path.isfile(path) and os.access(path, os.X_OK), "%s installed executable" % p)
    cfg = os.path.join(root, "etc/mtwarden/mtwarden.toml")
    if os.path.exists(cfg):
        with open(cfg, "rb") as a, open(os.path.join(SOURCE, "supervisor/default_config.toml"), "rb") as b:
            h.check(a.read() == b.read(), "installed config is the commented default")
        h.check(os.stat(cfg).st_mode & 0o777 == 0o640, "config mode 0640 (it may hold secrets)")
    conf = os.path.join(root, "usr/share/dbus-1/system.d/org.mtwarden.Manager1.conf")
    if os.path.exists(conf):
        text = open(conf).read()
        h.check(not re.search(r"@[A-Z_]+@", text) and cache_value("MTW_DBUS_GROUP") in text,
                "D-Bus policy configured with group %s" % cache_value("MTW_DBUS_GROUP"))

    service = os.path.join(root, unit_dir, "mtwarden.service")
    text = open(service).read() if os.path.exists(service) else ""
    h.check("ExecStart=/usr/bin/mtwarden --config /etc/mtwarden/mtwarden.toml" in text,
            "unit runs the installed binary with the installed config")
    h.check(not re.search(r"@[A-Z_]+@", text), "no unconfigured @VAR@ left in the unit")
    return root, unit_dir


def check_units(work, root, unit_dir):
    # verify checks that every command exists: run it on copies whose /usr
    # paths point into the DESTDIR tree, and let man(1) find the pages there.
    vdir = os.path.join(work, "verify")
    os.makedirs(vdir)
    for unit in ("mtwarden.service", "mtwarden.socket"):
        src = os.path.join(root, unit_dir, unit)
        if not os.path.exists(src):
            continue
        text = open(src).read().replace("=/usr/bin/", "=%s/usr/bin/" % root)
        with open(os.path.join(vdir, unit), "w") as f:
            f.write(text)
    env = dict(os.environ, MANPATH=os.path.join(root, "usr/share/man"))
    r = run(["systemd-analyze", "verify", "--man=yes",
             os.path.join(vdir, "mtwarden.service"), os.path.join(vdir, "mtwarden.socket")], env=env)
    h.check(r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(),
            "systemd-analyze verify: clean (rc %d: %s%s)" % (r.returncode, r.stdout[-400:], r.stderr[-400:]))

    r = run(["systemd-analyze", "security", "--offline=true", "--no-pager",
             os.path.join(root, unit_dir, "mtwarden.service")])
    m = re.search(r"Overall exposure level for mtwarden\.service:\s*([0-9.]+)", r.stdout)
    exposure = float(m.group(1)) if m else 99.0
    print("systemd-analyze security: exposure %.1f" % exposure, flush=True)
    for line in r.stdout.splitlines():
        if line.startswith("\u2717"):  # what still counts against it
            print("  " + " ".join(line.split()), flush=True)
    h.check(m is not None and exposure <= MAX_EXPOSURE,
            "exposure %.1f <= %.1f (%s)" % (exposure, MAX_EXPOSURE, r.stderr[-200:]))


def packages_of(paths):
    """{library path: installed package owning it}. dpkg records merged-/usr
    files under /lib or /usr/lib, so every spelling is asked for."""
    spellings = {}
    for path in paths:
        for c in {path, os.path.realpath(path)}:
            for alt in {c, re.sub(r"^/usr/lib/", "/lib/", c), re.sub(r"^/lib/", "/usr/lib/", c)}:
                spellings.setdefault(alt, path)
    out = run(["dpkg-query", "-S"] + sorted(spellings)).stdout
    owners = {}
    for line in out.splitlines():
        pkg, _, file = line.partition(": ")
        if file in spellings:
            owners.setdefault(spellings[file], pkg.split(":")[0].split(",")[0])
    return owners


def provides(pkgs):
    """{package: names it provides}."""
    if not pkgs:
        return {}
    out = run(["dpkg-query", "-W", "-f=${Package}\t${Provides}\n"] + sorted(pkgs)).stdout
    result = {}
    for line in out.splitlines():
        pkg, _, prov = line.partition("\t")
        result[pkg] = {q.strip().split(" ")[0] for q in prov.split(",") if q.strip()}
    return result


def deb_field(info, name):
    m = re.search(r"^ %s: (.*)$" % name, info, re.M)
    return m.group(1) if m else ""


def check_deb(work, unit_dir):
    out = os.path.join(work, "pkg")
    r = run(["cpack", "-G", "DEB", "-B", out, "--config", os.path.join(BUILD, "CPackConfig.cmake")],
            timeout=150, cwd=BUILD)
    debs = glob.glob(os.path.join(out, "mtwarden_*.deb"))
    h.check(r.returncode == 0 and len(debs) == 1,
            "cpack -G DEB made one mtwarden_*.deb (%s)" % (r.stdout + r.stderr)[-400:])
    if not debs:
        return
    deb = debs[0]
    print("package %s: %d KiB" % (os.path.basename(deb), os.path.getsize(deb) // 1024), flush=True)

    info = run(["dpkg-deb", "--info", deb]).stdout
    h.check(deb_field(info, "Package") == "mtwarden", "Package: mtwarden")
    version = open(os.path.join(SOURCE, "CMakeLists.txt")).read()
    version = re.search(r"project\(mtwarden VERSION ([0-9.]+)", version).group(1)
    h.check(deb_field(info, "Version") == version, "Version: %s" % version)
    h.check(deb_field(info, "Section") == "net", "Section: net")
    h.check(deb_field(info, "Maintainer") != "", "Maintainer set")
    depends = deb_field(info, "Depends")
    print("Depends: " + depends, flush=True)
    names = {d.strip().split(" ")[0] for d in depends.split(",")}
    for pkg in ("libc6", "libstdc++6", "libssl3", "libnl-3-200", "libnl-route-3-200", "libnftables1",
                "libsdbus-c++1", "libsystemd0", "libsqlite3-0"):
        h.check(pkg in names, "Depends names %s (dpkg-shlibdeps)" % pkg)
    for prog in ("iproute2", "nftables", "dbus", "procps"):
        h.check(re.search(r"(^|, )%s(,|$| )" % re.escape(prog), depends) is not None,
                "Depends names %s" % prog)

    control = os.path.join(work, "control")
    run(["dpkg-deb", "--control", deb, control])
    conffiles = open(os.path.join(control, "conffiles")).read().split() \
        if os.path.exists(os.path.join(control, "conffiles")) else []
    h.check(conffiles == ["/etc/mtwarden/mtwarden.toml"], "conffiles: /etc/mtwarden/mtwarden.toml")
    for script in ("postinst", "prerm", "postrm"):
        path = os.path.join(control, script)
        ok = os.path.exists(path) and os.access(path, os.X_OK)
        h.check(ok and run(["sh", "-n", path]).returncode == 0, "%s present, executable, valid sh" % script)
    postinst = open(os.path.join(control, "postinst")).read() if os.path.exists(
        os.path.join(control, "postinst")) else ""
    h.check("groupadd --system " + cache_value("MTW_DBUS_GROUP") in postinst,
            "postinst creates the D-Bus group")
    h.check(not re.search(r"\b(enable|start)\s+mtwarden", postinst),
            "postinst neither enables nor starts the service")
    postrm = open(os.path.join(control, "postrm")).read() if os.path.exists(
        os.path.join(control, "postrm")) else ""
    h.check(re.search(r'"\$1" = purge \]; then\s+rm -rf /var/lib/mtwarden', postrm) is not None,
            "postrm removes /var/lib/mtwarden on purge only")

    listing = run(["dpkg-deb", "--contents", deb]).stdout
    paths = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 6 and not parts[0].startswith("d"):
            paths[parts[-1].lstrip(".").lstrip("/")] = (parts[0], parts[1])
    want = expected_files(unit_dir)
    # The package installs under /usr: a unit dir outside it is kept as is.
    h.check(not (want - set(paths)), "package holds every installed file (missing: %s)"
            % sorted(want - set(paths)))
    h.check(not (set(paths) - want), "package holds nothing else (extra: %s)"
            % sorted(set(paths) - want))
    h.check(all(owner == "root/root" for _, owner in paths.values()), "every file owned by root/root")

    x = os.path.join(work, "x")
    r = run(["dpkg-deb", "-x", deb, x])
    h.check(r.returncode == 0, "dpkg-deb -x")
    # Every shared library a packaged program loads directly comes from a
    # package that Depends names (or one that provides it); Boost, for one,
    # is header-only or linked in. One dpkg-query for all of them: each call
    # reads the whole package database.
    links = []
    for p in PROGRAMS:
        binary = os.path.join(x, "usr/bin", p)
        needed = set(re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", binary]).stdout))
        resolved = dict(re.findall(r"^\s*(\S+) => (/\S+)", run(["ldd", binary]).stdout, re.M))
        h.check(bool(needed) and needed - {"ld-linux-x86-64.so.2"} <= set(resolved),
                "%s: its libraries resolve" % p)
        links += [(p, soname, resolved[soname]) for soname in sorted(needed) if soname in resolved]
    owners = packages_of({path for _, _, path in links})
    provided = provides(set(owners.values()))
    for p, soname, path in links:
        owner = owners.get(path)
        h.check(owner is not None and (owner in names or provided.get(owner, set()) & names),
                "%s needs %s, from %s, which Depends names" % (p, soname, owner))
    for page in MAN_PAGES:
        path = os.path.join(x, page)
        if not os.path.exists(path):
            continue
        name = os.path.basename(page).split(".")[0]
        r = run(["man", "--warnings", "-P", "cat", "-l", path], env=dict(os.environ, MANWIDTH="80"))
        h.check(r.returncode == 0 and not r.stderr.strip() and name in r.stdout
                and "FILES" in r.stdout and "SEE ALSO" in r.stdout and "/etc/mtwarden/mtwarden.toml" in r.stdout,
                "man -l %s renders without warnings, with FILES and SEE ALSO (%s)" % (page, r.stderr[-200:]))
        with gzip.open(path, "rt") as f:
            h.check(".SH SYNOPSIS" in f.read() or name == "mtwardenctl", "%s has a SYNOPSIS" % name)

    # apt resolves the dependencies against this host's package database.
    r = run(["apt-get", "install", "-s", "./" + os.path.basename(deb)], cwd=out, timeout=120)
    h.check(r.returncode == 0 and re.search(r"^Inst mtwarden ", r.stdout, re.M) is not None,
            "apt-get install -s ./%s resolves (%s)" % (os.path.basename(deb), (r.stdout + r.stderr)[-300:]))


def main():
    if not BUILD or not os.path.exists(os.path.join(BUILD, "CMakeCache.txt")):
        print("MTW_BUILD_DIR is not a configured build tree: skipped")
        sys.exit(77)
    missing = [t for t in ("cmake", "cpack", "systemd-analyze", "dpkg-deb", "dpkg-shlibdeps", "apt-get",
                           "man", "objdump") if shutil.which(t) is None]
    h.check(not missing, "tools present (missing: %s; bash scripts/deps.sh --test installs them)" % missing)
    if missing:
        h.finish()
    work = tempfile.mkdtemp(prefix="mtw-pkg-")
    try:
        t0 = time.monotonic()
        root, unit_dir = check_install(work)
        t1 = time.monotonic()
        check_units(work, root, unit_dir)
        t2 = time.monotonic()
        check_deb(work, unit_dir)
        print("time: install %.1f s, units %.1f s, package %.1f s"
              % (t1 - t0, t2 - t1, time.monotonic() - t2), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    h.finish()


if __name__ == "__main__":
    main()
