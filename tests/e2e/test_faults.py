"""Faults on the local stack: a master killed, the application failing, nginx configurations
nginx rejects. Real nginx, supervisord and gunicorn, as deployed by the playbook.

These run on the session's stack before test_local_stack.py (whose last test stops it), and
leave it as they found it: every master running with its workers, the configuration deployed.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.stack import BIN, ROOT, brand

pytestmark = pytest.mark.e2e

GENERIC_NGINX_PAGE = "<center>nginx</center>"


def children(pid: int) -> set[int]:
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(p) for p in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def supervisorctl(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "supervisorctl"), "-c", str(stack.root / "etc" / "supervisord.conf"), *args],
        capture_output=True, text=True, timeout=60, check=False)


def master_pid(stack, name: str) -> int:
    """The pid supervisor reports for the site's program (0 while it is not running)."""
    return int(supervisorctl(stack, "pid", f"sitekit-{name}").stdout.strip() or 0)


def nginx_master(stack) -> int:
    return int((stack.root / "run" / "nginx.pid").read_text())


def nginx(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/usr/sbin/nginx", "-c", str(stack.root / "etc" / "nginx" / "nginx.conf"),
         "-e", str(stack.root / "log" / "nginx" / "error.log"), *args],
        capture_output=True, text=True, timeout=60, check=False)


def get(stack, host: str, path: str = "/"):
    """(status, headers, body); a connection error is reported as its repr in place of status."""
    try:
        return stack.request(host, path)
    except OSError as exc:
        return repr(exc), {}, ""


def brand_span(name: str) -> str:
    return f'<span class="brand-name">{brand(name)}</span>'


def load(stack, hosts, stop, results, limit=20000):
    """Sequential GETs to each host in turn until *stop* is set (at most *limit* requests)."""
    while not stop.is_set() and len(results) < limit:
        for host in hosts:
            status, _, body = get(stack, host)
            results.append((host, status, "brand-name" in body))


def test_a_killed_master_is_restarted_within_5s_and_meanwhile_its_site_shows_its_own_page(
    stack, sites
):
    target, others = sites[0], sites[1:]
    host = target["domains"][0]
    old = master_pid(stack, target["name"])
    assert old == int((stack.root / "run" / target["name"] / "gunicorn.pid").read_text())
    old_workers = children(old)
    assert get(stack, host)[0] == 200
    nginx_log = stack.root / "log" / "nginx" / f"{target['name']}.access.log"
    logged = len(nginx_log.read_text().splitlines())

    stop, results, probes, respawned = threading.Event(), [], [], []
    loaders = [threading.Thread(target=load, args=(stack, [s["domains"][0]], stop, results))
               for s in others]
    for thread in loaders:
        thread.start()

    def watch_supervisor() -> None:
        """When supervisor reports a new master for the site (seconds after the kill)."""
        while not stop.is_set():
            pid = master_pid(stack, target["name"])
            if pid not in (0, old):
                respawned.append((time.monotonic() - killed, pid))
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch_supervisor)
    try:
        time.sleep(0.5)
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        watcher.start()
        while time.monotonic() - killed < 15:
            status, headers, body = get(stack, host)
            probes.append((time.monotonic() - killed, status, headers, body))
            if status == 200 and any(p[1] != 200 for p in probes):
                break
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in loaders:
            thread.join()
        if watcher.is_alive():
            watcher.join()

    down = [p for p in probes if p[1] != 200]
    assert down, "the site never stopped answering 200 after its master was killed"
    for _, status, headers, body in down:
        assert status == 503, (status, body[:300])
        assert brand_span(target["name"]) in body  # the site's own page, not nginx's
        assert "Temporarily unavailable" in body
        assert GENERIC_NGINX_PAGE not in body
        assert headers["Cache-Control"] == "no-store"
        assert int(headers["Retry-After"]) > 0
        assert "X-Sitekit-Site" not in headers  # served by nginx: the master is gone
    # nginx logged each page it served, with its status (the files it serves are not logged)
    statuses = [line.split('"')[2].split()[0]
                for line in nginx_log.read_text().splitlines()[logged:]]
    assert statuses.count("503") == len(down), statuses
    back_after, status, headers, body = probes[-1]
    assert status == 200, f"not back within 15 s: {[(round(t, 2), s) for t, s, _, _ in probes]}"
    assert headers["X-Sitekit-Site"] == target["name"]
    assert brand_span(target["name"]) in body
    # supervisor brings the master back within 5 s; it serves once it has loaded the
    # application and warmed up (about 2 s more on an idle 2-CPU machine, printed below)
    assert respawned, "supervisor never reported a new master"
    respawn_after, new = respawned[0]
    assert respawn_after < 5, f"supervisor started a new master after {respawn_after:.2f} s"
    assert master_pid(stack, target["name"]) == new

    failed = [r for r in results if r[1] != 200 or not r[2]]
    assert len(results) > 20
    assert failed == [], f"{len(failed)} of {len(results)} requests to the other sites failed"
    print(f"\nkill -9 of {target['name']}'s master: a new master after {respawn_after:.2f} s, "
          f"200 again after {back_after:.2f} s "
          f"({len(down)} branded 503 meanwhile); other sites: {len(results)} requests, "
          f"{len(failed)} failed")

    # Converged again: supervisor counts the master as running, it has all its workers, and
    # the orphaned workers of the killed master are gone.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = supervisorctl(stack, "status", f"sitekit-{target['name']}").stdout
        if ("RUNNING" in status and len(children(new)) == target.get("workers", 2)
                and not any(alive(p) for p in old_workers)):
            break
        time.sleep(0.2)
    assert "RUNNING" in status, status
    assert len(children(new)) == target.get("workers", 2)
    assert not [p for p in old_workers if alive(p)]
    assert stack.health(host)["site"] == target["name"]


def test_the_applications_own_500_passes_through(stack, sites):
    """A broken database: Django's branded 500 reaches the client, not nginx's page."""
    site = sites[0]
    host = site["domains"][0]
    db = sqlite3.connect(stack.root / "var" / "db.sqlite3", timeout=30)
    try:
        db.execute("ALTER TABLE core_announcement RENAME TO core_announcement_away")
        db.commit()
        status, headers, body = get(stack, host)
    finally:
        db.execute("ALTER TABLE core_announcement_away RENAME TO core_announcement")
        db.commit()
        db.close()
    assert status == 500, body[:300]
    assert headers["X-Sitekit-Site"] == site["name"]  # Django's response
    assert "Server error" in body
    assert brand_span(site["name"]) in body
    assert "Temporarily unavailable" not in body
    assert "Retry-After" not in headers
    assert get(stack, host)[0] == 200


def _live_nginx(stack) -> dict[Path, bytes]:
    conf = stack.root / "etc" / "nginx"
    return {p: p.read_bytes() for p in conf.rglob("*") if p.is_file()}


def _serving(stack, sites):
    for site in sites:
        status, headers, body = get(stack, site["domains"][0])
        assert status == 200, (site["name"], status)
        assert headers["X-Sitekit-Site"] == site["name"]
        assert brand_span(site["name"]) in body


def _broken_templates(tmp_path: Path, anchor: str, replacement: str) -> Path:
    """A copy of the nginx templates with ``anchor`` replaced, in the file that holds it."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates" / "nginx", templates)
    holders = [path for path in templates.glob("*.j2") if anchor in path.read_text()]
    assert holders, f"no template holds {anchor!r}"
    for path in holders:
        path.write_text(path.read_text().replace(anchor, replacement, 1))
    return templates


# what each {templates} case changes in a copy of the templates
_TEMPLATE_CHANGES = {
    # an operator's own server block template using a variable nobody defines
    "undefined-template-variable": (
        "    client_max_body_size",
        "    ssl_certificate {{ site.tls_certificate }};\n    client_max_body_size"),
    # the sites' certificate where none was put (as an operator's template naming a wrong
    # path would)
    "missing-certificate": ("{{ site.certificate }}", "{missing}/fullchain.pem"),
}


@pytest.mark.parametrize(
    ("extra", "message", "tested"),
    [
        pytest.param("nginx_client_max_body_size='10 m'",
                     'invalid number of arguments in "client_max_body_size" directive', True,
                     id="invalid-value"),
        pytest.param("nginx_mime_types=/etc/nginx/no-such-mime.types",
                     'open() "/etc/nginx/no-such-mime.types" failed', True, id="missing-file"),
        pytest.param("nginx_templates_dir={templates}", "has no attribute 'tls_certificate'",
                     False, id="undefined-template-variable"),
        pytest.param("nginx_templates_dir={templates}",
                     'cannot load certificate "{missing}/fullchain.pem"', True,
                     id="missing-certificate"),
    ],
)
def test_a_configuration_nginx_rejects_is_never_installed(
    stack, sites, tmp_path, extra, message, tested, request
):
    before, master, workers = _live_nginx(stack), nginx_master(stack), children(nginx_master(stack))
    missing = tmp_path / "no-certificate-here"
    if "{templates}" in extra:
        anchor, replacement = _TEMPLATE_CHANGES[request.node.callspec.id]
        replacement = replacement.replace("{missing}", str(missing))
        extra = extra.format(templates=_broken_templates(tmp_path, anchor, replacement))
    extra, message = extra.replace("{missing}", str(missing)), message.replace("{missing}",
                                                                               str(missing))

    run = stack.playbook("--tags", "sites", "-e", extra)
    assert run.returncode != 0, run.output[-3000:]
    assert message in run.output, run.output[-3000:]
    if tested:  # nginx -t ran on the staged copy and said why
        assert "nothing was installed, the running configuration is unchanged" in run.output
    reload = "RUNNING HANDLER [nginx : Test the nginx configuration and reload nginx]"
    assert reload not in run.output

    # nothing nginx reads changed, nothing was reloaded, and every site still serves
    assert _live_nginx(stack) == before
    assert nginx_master(stack) == master
    assert children(master) == workers
    dump = nginx(stack, "-T")
    assert dump.returncode == 0, dump.stderr
    for bad in ("10 m", "no-such-mime.types", "tls_certificate", "no-certificate-here"):
        assert bad not in dump.stdout
    _serving(stack, sites)

    # an unrelated reload (logrotate, an operator) still works: new workers, every site serves
    reload = nginx(stack, "-s", "reload")
    assert reload.returncode == 0, reload.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (children(master) & workers or not children(master)):
        time.sleep(0.2)
    assert children(master) and not children(master) & workers, "the reload did not take effect"
    assert nginx_master(stack) == master
    _serving(stack, sites)


def test_the_next_good_run_succeeds_without_touching_nginx(stack, sites):
    master, workers = nginx_master(stack), children(nginx_master(stack))
    run = stack.playbook("--tags", "sites")
    assert run.returncode == 0, run.output[-4000:]
    install = run.output.split("TASK [nginx : Stage the configuration and install it", 1)[1]
    assert install.split("TASK [", 1)[0].strip().splitlines()[-1].startswith("ok:")
    assert (nginx_master(stack), children(nginx_master(stack))) == (master, workers)  # no reload
    _serving(stack, sites)
