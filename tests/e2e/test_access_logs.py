"""Every site's logs are rotated under load without losing a line or restarting anything.

`make rotate` (logrotate with the configurations the playbook rendered) runs while requests hit
every domain; afterwards each site's nginx and gunicorn access logs, the rotated file and the
new one together, hold exactly one line per request that site answered, the masters and nginx
kept their pids, and new requests land in the new files.
"""

from __future__ import annotations

import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.stack import BIN, ROOT, masters

pytestmark = pytest.mark.e2e


def lines(*paths: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in paths if p.exists())


def logs(stack, name: str) -> dict[str, Path]:
    """A site's access logs: nginx's and its master's."""
    return {
        "nginx": stack.root / "log" / "nginx" / f"{name}.access.log",
        "gunicorn": stack.root / "log" / "sites" / name / "access.log",
    }


def wait_for(condition, what: str, timeout: float = 15.0):
    """Poll ``condition`` until it holds (its value) or fail after ``timeout`` seconds, saying
    ``what`` was awaited: a log line is written once its response is sent, not when the client
    has read it."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)
    return value


def owned(path: Path) -> tuple[int, int, int]:
    """A file's owner, group and permission bits."""
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def rotate(stack) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "rotate", f"STACK={stack.root}", f"VENV={BIN.parent}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_logs_rotate_under_load_without_losing_a_line_or_restarting(stack, sites):
    site_of = {d: s["name"] for s in sites for d in s["domains"]}
    for site in sites:
        for path in logs(stack, site["name"]).values():
            assert path.exists() and not rotated(path).exists(), path
    before = {s["name"]: {k: lines(p) for k, p in logs(stack, s["name"]).items()} for s in sites}
    owner_mode = {p: owned(p) for s in sites for p in logs(stack, s["name"]).values()}
    pids = masters(stack)
    nginx = int((stack.root / "run" / "nginx.pid").read_text())

    with stack.load(sites) as load:
        time.sleep(2)
        started = time.monotonic()
        proc = rotate(stack)
        ended = time.monotonic()
        time.sleep(2)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    assert all(s.outcome == 200 for s in load.samples), {s.outcome for s in load.samples}
    # requests were asked and answered while logrotate ran, and on every site on both sides
    during = load.between(started, ended)
    assert during and all(s.ok for s in during), len(during)
    for site in sites:
        mine = [s.start for s in load.samples if s.host in site["domains"]]
        assert min(mine) < started and max(mine) > ended, site["name"]
    answered = {s["name"]: 0 for s in sites}
    for sample in load.samples:
        answered[site_of[sample.host]] += 1
    for site in sites:
        for kind, path in logs(stack, site["name"]).items():
            assert rotated(path).exists(), f"{path} was not rotated"
            wait_for(lambda p=path, k=kind, n=site["name"]:
                     lines(p, rotated(p)) - before[n][k] >= answered[n],
                     f"{site['name']} {kind}: a line per request")
            total = lines(path, rotated(path)) - before[site["name"]][kind]
            assert total == answered[site["name"]], (
                f"{site['name']} {kind}: {total} lines for {answered[site['name']]} requests")
    assert masters(stack) == pids
    assert int((stack.root / "run" / "nginx.pid").read_text()) == nginx

    # new requests are written to the new files, created with the same owner and mode
    for site in sites:
        marker = f"/after-rotation-{uuid.uuid4().hex}"
        status, _, _ = stack.request(site["domains"][0], marker)
        assert status == 404
    for site in sites:
        for path in logs(stack, site["name"]).values():
            wait_for(lambda p=path: b"/after-rotation-" in p.read_bytes(), f"a line in {path}")
            assert b"/after-rotation-" not in rotated(path).read_bytes(), path
            assert owned(path) == owner_mode[path], path
            assert not owned(path)[2] & stat.S_IWOTH, path


def test_rotation_signals_the_masters_supervisord_runs_not_what_a_pid_file_says(stack, sites):
    """A site's pid file is written by the site's user (in system mode logrotate runs as root):
    a pid put there gets no signal, and the real master still reopens its logs."""
    site = sites[0]["name"]
    pidfile = stack.root / "run" / site / "gunicorn.pid"
    genuine = pidfile.read_text()
    bystander = subprocess.Popen(["sleep", "300"])  # USR1 would end it
    access = logs(stack, site)["gunicorn"]
    marker = f"/after-forged-pid-{uuid.uuid4().hex}"
    try:
        pidfile.write_text(f"{bystander.pid}\n")
        proc = rotate(stack)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        # the real master reopened its log: a request's line lands in the new file ...
        assert stack.request(sites[0]["domains"][0], marker)[0] == 404
        wait_for(lambda: marker.encode() in access.read_bytes(), f"the marker in {access}")
        assert marker.encode() not in rotated(access).read_bytes()
        # ... while the bystander, which the signal sent with it would have ended, still runs
        assert bystander.poll() is None, f"rotation signalled pid {bystander.pid}"
    finally:
        pidfile.write_text(genuine)
        bystander.kill()
        bystander.wait()


def test_the_playbook_keeps_the_rotation_configurations(stack, sites):
    confs = stack.root / "etc" / "logrotate.d"
    assert sorted(p.name for p in confs.iterdir()) == ["sitekit-nginx", "sitekit-sites"]
    proc = subprocess.run(["/usr/sbin/logrotate", "--debug", "--state", "/dev/null", str(confs)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    # every log is covered: logrotate names each file it considers; supervisord rotates its
    # own log and each master's captured output (master.log) itself, by size
    supervised = {*(stack.root / "log" / "supervisor").glob("*.log"),
                  *(stack.root / "log" / "sites").glob("*/master.log")}
    assert supervised, "no log written by supervisord"
    for path in set((stack.root / "log").rglob("*.log")) - supervised:
        assert f"considering log {path}" in proc.stderr, path
    assert len(set((stack.root / "log").rglob("*.log")) - supervised) > 4 * len(sites)


def test_sitekit_logs_shows_a_request_under_its_own_site_only(stack, sites):
    """`sitekit logs local SITE` prints the request made to SITE by Host, and another site's
    logs do not have it."""
    this, other = sites[0], sites[1]
    marker = f"/sitekit-logs-{uuid.uuid4().hex}"
    status, _, _ = stack.request(this["domains"][-1], marker)
    assert status == 404

    def shown(site: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "sitekit"), "logs", "local", site, "--root",
                               str(stack.root), "-n", "50"], cwd=ROOT, capture_output=True,
                              text=True, timeout=60, check=False)

    found = wait_for(lambda: (p := shown(this["name"])).returncode == 0 and marker in p.stdout
                     and p, f"the request in `sitekit logs local {this['name']}`")
    line = next(ln for ln in found.stdout.splitlines() if marker in ln)
    assert f" {this['domains'][-1]} " in line and '" 404 ' in line, line
    elsewhere = shown(other["name"])
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert marker not in elsewhere.stdout
    unknown = shown("nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("sitekit logs: local: no site 'nosuch' in the catalogue")
