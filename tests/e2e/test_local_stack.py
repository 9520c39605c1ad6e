"""End to end on the local stack: real nginx, supervisord, one gunicorn master per site.

Tests run in file order on one deployed stack; the last ones re-deploy and stop it.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import ssl
import stat
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from bench.load import answered_by, describe, gaps, summary
from tests.e2e.stack import (
    BIN,
    ROOT,
    SPOOFED_FORWARDING,
    AdminSession,
    brand,
    checkout_copy,
    children,
    cmdline,
    masters,
    release_checkout,
    release_id,
)

pytestmark = pytest.mark.e2e


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_first_deploy_changed_things(stack):
    assert stack.first_run.recap["changed"] > 0
    assert stack.first_run.recap["failed"] == 0


def settled_children(pid: int, expected: int, timeout: float = 45.0) -> list[int]:
    """The children of *pid* once there are *expected* of them (or whatever there are after
    *timeout* seconds: gunicorn's graceful timeout plus a margin)."""
    deadline = time.monotonic() + timeout
    while len(found := children(pid)) != expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def test_one_master_per_site_with_its_own_settings_module(stack, sites):
    running = masters(stack)
    assert sorted(running) == sorted(s["name"] for s in sites)
    for site in sites:
        pid = running[site["name"]]
        assert environ(pid)["DJANGO_SETTINGS_MODULE"] == f"settings.{site['name']}"
        # a worker a reload let go may still be finishing its last request: wait for it
        workers = settled_children(pid, site.get("workers", 2))
        assert len(workers) == site.get("workers", 2)
        for worker in workers:
            # after an in-place re-exec gunicorn numbers the master's generation: [sitekit-x.2]
            assert re.match(rf"gunicorn: worker \[sitekit-{site['name']}(\.\d+)?\]",
                            cmdline(worker)), cmdline(worker)


def test_every_master_runs_the_same_release_and_virtualenv(stack, sites):
    running = masters(stack)
    release = (stack.root / "current").resolve()
    for site in sites:
        pid = running[site["name"]]
        assert Path(os.readlink(f"/proc/{pid}/cwd")) == release
        # compiled modules are mapped from the release's own virtualenv
        assert str(release / "venv" / "lib") in Path(f"/proc/{pid}/maps").read_text()


def test_each_site_has_its_socket_not_world_writable(host, stack, sites):
    for site in sites:
        sock = stack.root / "run" / site["name"] / "gunicorn.sock"
        f = host.file(str(sock))
        assert f.is_socket
        assert f.mode & 0o002 == 0, oct(f.mode)
        assert host.socket(f"unix://{sock}").is_listening


def test_env_files_are_readable_by_their_owner_only(host, stack, sites):
    for site in sites:
        f = host.file(str(stack.root / "etc" / "sites" / f"{site['name']}.env"))
        assert f.is_file
        assert f.mode == 0o600, oct(f.mode)
        assert f.contains(f"^DJANGO_SETTINGS_MODULE=settings.{site['name']}$")


def test_the_environment_secret_is_readable_by_its_owner_only(host, stack):
    secrets = host.file(str(stack.root / "secrets"))
    assert secrets.is_directory and secrets.mode & 0o077 == 0, oct(secrets.mode)
    key = host.file(str(stack.root / "secrets" / "secret_key_base"))
    assert key.is_file and key.mode == 0o600, oct(key.mode)


def test_every_domain_serves_its_own_brand_and_content(stack, sites):
    names = {s["name"]: brand(s["name"]) for s in sites}
    for site in sites:
        own = names[site["name"]]
        for domain in site["domains"]:
            status, headers, body = stack.request(domain)
            assert status == 200, (domain, body[:500])
            assert headers["X-Sitekit-Site"] == site["name"]
            assert f'<span class="brand-name">{own}</span>' in body
            assert f"Welcome to {own}" in body
            for other in set(names.values()) - {own}:
                assert f"Welcome to {other}" not in body


def test_missing_page_is_the_sites_branded_404(stack, sites):
    for site in sites:
        status, headers, body = stack.request(site["domains"][0], "/no-such-page")
        assert status == 404
        assert "Page not found" in body
        assert brand(site["name"]) in body
        assert headers["X-Sitekit-Site"] == site["name"]


def test_unknown_host_gets_no_response(stack):
    for host in ("unknown.example.org", "127.0.0.1"):
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            stack.request(host, scheme="http")
        with pytest.raises(ssl.SSLError):  # refused during the handshake
            stack.request(host)


def test_all_sites_report_the_same_release(stack, sites):
    built = (stack.root / "current").resolve().name  # the live release directory
    assert built == stack.built_id  # the release built from this checkout
    for site in sites:
        data = stack.health(site["domains"][0])
        assert data["release"] == built
        assert data["site"] == site["name"]
        assert data["settings_module"] == f"settings.{site['name']}"
        _, headers, _ = stack.request(site["domains"][0], "/")
        assert headers["X-Sitekit-Release"] == built
    assert (stack.root / "RELEASE").read_text().strip() == built


def test_static_files_are_served_by_nginx(stack, sites):
    site = sites[0]
    access_log = stack.root / "log" / "sites" / site["name"] / "access.log"
    before = access_log.read_text()
    nginx_log = stack.root / "log" / "nginx" / f"{site['name']}.access.log"
    logged = nginx_log.read_text()
    status, headers, body = stack.request(site["domains"][0], f"/static/{site['name']}/site.css")
    assert status == 200
    assert headers["Content-Type"] == "text/css"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "max-age=604800"  # expires 7d
    assert "Content-Security-Policy" not in headers  # an upload's, not a stylesheet's
    assert headers["Strict-Transport-Security"].startswith("max-age=")  # the site's, on https
    assert body.strip()
    assert access_log.read_text() == before  # gunicorn never saw it
    # what is not there, and the site's unavailable page when nothing failed: 404, from nginx
    for path in (f"/static/{site['name']}/absent.css", "/.sitekit-errors/503.html"):
        status, headers, body = stack.request(site["domains"][0], path)
        assert status == 404, path
        assert "X-Sitekit-Site" not in headers and "Temporarily unavailable" not in body, path
    # nginx logs none of these requests for files (the site's pages it serves are logged)
    assert nginx_log.read_text() == logged


def test_each_sites_admin_is_branded_with_its_styles_from_nginx(stack, sites):
    """The deploy migrated the admin's tables and collected its static files."""
    for site in sites:
        domain = site["domains"][0]
        status, headers, body = stack.request(domain, "/admin/login/")
        assert status == 200, body[:500]
        assert headers["X-Sitekit-Site"] == site["name"]
        assert f"{brand(site['name'])} administration" in body
    status, headers, body = stack.request(sites[0]["domains"][0], "/static/admin/css/base.css")
    assert status == 200
    assert headers["Content-Type"] == "text/css"
    assert body.strip()


def test_site_editors_run_with_a_sites_settings_in_the_live_release(stack, sites):
    site = sites[0]["name"]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("SITEKIT_") and key != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE=f"settings.{site}", SITEKIT_USER_PASSWORD="e2e-editor-pw",
               SITEKIT_ENV_FILE=str(stack.root / "etc" / "sites" / f"{site}.env"))
    current = stack.root / "current"

    def manage(*args):
        return subprocess.run([str(current / "venv" / "bin" / "python"), "manage.py", *args],
                              cwd=current, env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    granted = manage("site_editors", "grant", "e2e-editor", site, "--create")
    assert granted.returncode == 0, granted.stderr
    assert f"e2e-editor edits {site}: granted" in granted.stdout
    assert f"{site}: e2e-editor" in manage("site_editors", "list", site).stdout
    revoked = manage("site_editors", "revoke", "e2e-editor", site)
    assert f"e2e-editor edits {site}: revoked" in revoked.stdout
    unknown = manage("site_editors", "grant", "nobody", site)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().startswith("CommandError: unknown user 'nobody'")


def sitekit_manage(project: Path, root: Path, *argv: str, env: dict | None = None):
    """`sitekit manage` of the local environment deployed at ``root``, as a user runs it."""
    return subprocess.run([str(BIN / "sitekit"), "--project", str(project), "manage", "local",
                           *argv[:1], "--root", str(root), *argv[1:]],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)


def test_sitekit_manage_runs_a_sites_command_with_a_password_from_the_callers_env(stack):
    env = dict(os.environ, SITEKIT_USER_PASSWORD="manage-e2e-pw-1")
    granted = sitekit_manage(ROOT, stack.root, "harbor", "--env", "SITEKIT_USER_PASSWORD", "--",
                             "site_editors", "grant", "ed", "harbor", "--create", env=env)
    assert granted.returncode == 0, granted.stderr
    assert "ed edits harbor: granted" in granted.stdout
    assert "manage-e2e-pw-1" not in granted.stdout + granted.stderr
    listed = sitekit_manage(ROOT, stack.root, "harbor", "--", "site_editors", "list", "harbor")
    assert listed.returncode == 0, listed.stderr
    assert "harbor: ed" in listed.stdout
    # the password reached the command: ed logs in with it, on harbor's settings and database
    check = sitekit_manage(ROOT, stack.root, "harbor", "--", "shell", "-c",
                           "from django.contrib.auth import authenticate; "
                           "print('auth', bool(authenticate(username='ed', "
                           "password='manage-e2e-pw-1')))")
    assert "auth True" in check.stdout, check.stderr
    # the command's exit status is sitekit's
    unknown = sitekit_manage(ROOT, stack.root, "harbor", "--", "site_editors", "grant", "nobody",
                             "harbor")
    assert unknown.returncode == 1
    assert "unknown user 'nobody'" in unknown.stderr
    missing = sitekit_manage(ROOT, stack.root, "harbor", "--env", "SITEKIT_NOT_SET_ANYWHERE",
                             "--", "site_editors", "list", "harbor")
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("sitekit manage: --env SITEKIT_NOT_SET_ANYWHERE: "
                                      "SITEKIT_NOT_SET_ANYWHERE is not set in this environment")


def png(side: int) -> bytes:
    """A real PNG of random pixels (which do not compress): about 3 * side * side bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def fetch(stack, host: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """GET over https through nginx, the body as bytes."""
    conn = stack.connection(host)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


#: What the upload test stored, for the later tests that switch releases and remove a site.
UPLOADED: dict[str, tuple[str, bytes]] = {}


def upload(stack, site: str, title: str, data: bytes, filename: str = "photo.png"):
    session = AdminSession(stack, f"{site}.localhost")
    status, headers, body = session.login("uploader", "uploader-e2e-pw")
    assert (status, headers.get("Location")) == (302, "/admin/"), body[:2000]
    return session.post("/admin/core/announcement/add/",
                        {"title": title, "body": "", "image_alt": title,
                         "published_at_0": "2026-01-01", "published_at_1": "12:00:00"},
                        {"image": (filename, data)})


def test_an_editors_image_is_kept_outside_the_release_and_served_by_nginx_on_its_site_only(
    stack, sites
):
    env = dict(os.environ, SITEKIT_USER_PASSWORD="uploader-e2e-pw")
    granted = sitekit_manage(ROOT, stack.root, "harbor", "--env", "SITEKIT_USER_PASSWORD", "--",
                             "site_editors", "grant", "uploader", "harbor", "ember", "--create",
                             env=env)
    assert granted.returncode == 0, granted.stderr
    for site in ("harbor", "ember"):
        data = png(24)
        status, headers, body = upload(stack, site, f"Photo of {site}", data)
        assert status == 302, body[:3000]
        _, _, home = stack.request(f"{site}.localhost", "/")
        src = re.search(rf'<img class="announcement-image" src="(/media/{site}/announcements/'
                        r'[0-9a-f]{24}\.png)" alt="Photo of ' + site + '"', home)
        assert src, home[:3000]
        url = src.group(1)
        status, headers, served = fetch(stack, f"{site}.localhost", url)
        assert status == 200
        assert served == data
        assert headers["Content-Type"] == "image/png"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
        # the file is in the stack's media directory, outside every release
        on_disk = stack.root / "media" / url.removeprefix("/media/")
        assert on_disk.read_bytes() == data
        UPLOADED[site] = (url, data)
    # another site's domain never serves it, nor the application
    for other in ("meadow.localhost", "ember.localhost"):
        status, _, _ = fetch(stack, other, UPLOADED["harbor"][0])
        assert status == 404, other


def test_uploads_over_the_limit_are_refused_by_django_then_by_nginx_with_the_limit(stack):
    # within nginx's limit (the upload limit and 1 MB for the form), over Django's 5 MB
    status, _, body = upload(stack, "harbor", "Too big for Django", png(1340))
    assert status == 200
    assert re.search(r"The image is 5\.\d MB; the limit is 5 MB\.", body), body[-3000:]
    # over nginx's: refused before any master sees it, with the site's own page
    status, _, body = upload(stack, "harbor", "Too big for nginx", os.urandom(7 << 20))
    assert status == 413
    assert "<title>Too large &middot; Harbor</title>" in body
    assert "images up to 5 MB" in body
    # and what is no image at all
    status, _, body = upload(stack, "harbor", "A page", b"<script>alert(1)</script>", "x.png")
    assert status == 200 and "Upload a valid image" in body
    _, _, home = stack.request("harbor.localhost", "/")
    assert "Too big" not in home and "A page" not in home


def run_on_a_terminal(argv: list[str], answers: list[tuple[str, str]], timeout: float = 120):
    """Run ``argv`` on a new pseudo-terminal, answering each prompt (a text it prints) with its
    line as a person types it; returns (exit status, everything printed)."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the terminal as its stdin/stdout/stderr
        os.chdir(ROOT)
        os.execv(argv[0], argv)
    output, pending, deadline = b"", list(answers), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            if pending and pending[0][0].encode() in output.rsplit(b"\n", 1)[-1]:
                os.write(fd, pending.pop(0)[1].encode() + b"\r")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")


def test_a_superuser_made_at_a_terminal_and_an_editor_log_in_over_https_where_they_may(stack):
    code, output = run_on_a_terminal(
        [str(BIN / "sitekit"), "--project", str(ROOT), "manage", "local", "harbor",
         "--root", str(stack.root), "--", "createsuperuser", "--username", "chief",
         "--email", "chief@example.com"],
        [("Password:", "super-e2e-pw-9x"), ("Password (again):", "super-e2e-pw-9x")])
    assert code == 0, output
    assert "Superuser created successfully." in output
    assert "super-e2e-pw-9x" not in output  # typed, never echoed

    for site in ("harbor", "meadow", "ember"):  # a superuser edits every site
        session = AdminSession(stack, f"{site}.localhost")
        status, headers, body = session.login("chief", "super-e2e-pw-9x")
        assert (status, headers.get("Location")) == (302, "/admin/"), (site, body[:2000])
        status, _, index = session.request("GET", "/admin/")
        assert status == 200 and f"{brand(site)} administration" in index

    # the editor of harbor and ember (the upload test's): in on harbor, refused on meadow
    editor = AdminSession(stack, "harbor.localhost")
    assert editor.login("uploader", "uploader-e2e-pw")[0] == 302
    refused = AdminSession(stack, "meadow.localhost")
    status, _, body = refused.login("uploader", "uploader-e2e-pw")
    assert status == 200
    assert "This account cannot edit this site." in body
    assert refused.request("GET", "/admin/")[0] == 302  # to the login form: not logged in


def test_rendered_nginx_configuration_passes_nginx_t(stack):
    conf = stack.root / "etc" / "nginx" / "nginx.conf"
    proc = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(conf),
                           "-e", str(stack.root / "log" / "nginx" / "error.log")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "test is successful" in proc.stderr


def test_second_run_changes_nothing(stack):
    again = stack.playbook()
    assert again.returncode == 0, again.output[-4000:]
    assert again.recap["changed"] == 0, again.output[-6000:]


def test_check_mode_runs_and_reports_no_change(stack):
    # sitekit plan is the playbook in check and diff mode; with --detailed-exitcode it exits
    # 2 when any task would change something
    planned = stack.plan("--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr[-4000:]
    assert planned.stdout.splitlines()[-1] == "nothing to change", planned.stdout
    assert planned.stdout.splitlines()[0] == (
        f"localhost: nothing to change (release {stack.built_id})"
    )


def _host_state(stack) -> dict:
    """What a plan must leave as it was: configuration files, release, database, masters."""
    files = {
        str(p): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted((stack.root / "etc").rglob("*")) if p.is_file()
    }
    for name in ("RELEASE", "var/db.sqlite3"):
        path = stack.root / name
        files[str(path)] = (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return {
        "files": files,
        "current": os.readlink(stack.root / "current"),
        "releases": sorted(p.name for p in (stack.root / "releases").iterdir()),
        "masters": masters(stack),
        "workers": _workers(stack),
        "nginx": (stack.root / "run" / "nginx.pid").read_text(),
    }


def test_plan_of_a_new_domain_reloads_only_its_master_and_touches_nothing(stack, sites, tmp_path):
    project = checkout_copy(tmp_path / "checkout")
    target, others = sites[0], [s["name"] for s in sites[1:]]
    new_domain = f"shop.{target['domains'][0]}"
    added = subprocess.run(
        [str(BIN / "sitekit"), "--project", str(project), "domain", "add", "local",
         target["name"], new_domain], capture_output=True, text=True, check=False)
    assert added.returncode == 0, added.stderr
    before = _host_state(stack)

    planned = stack.plan("--json", "--tags", "sites", project=project)
    assert planned.returncode == 0, planned.stderr[-4000:]
    host = json.loads(planned.stdout)["hosts"]["localhost"]
    files = {f["path"]: f for f in host["files"]}
    block = str(stack.root / "etc" / "nginx" / "sites" / f"{target['name']}.conf")
    env_file = str(stack.root / "etc" / "sites" / f"{target['name']}.env")
    assert block in files and env_file in files, sorted(files)
    assert files[block]["change"] == "changed"
    assert any(new_domain in line for line in files[block]["diff"] if line.startswith("+"))
    assert files[env_file]["secret"] and files[env_file]["diff"] is None
    secret = (stack.root / "etc" / "sites" / f"{target['name']}.env").read_text()
    secret = next(line for line in secret.splitlines() if line.startswith("SITEKIT_SECRET_KEY="))
    assert secret.split("=", 1)[1] not in planned.stdout + planned.stderr
    assert not [path for path in files if any(f"/{name}." in path for name in others)]
    assert host["masters"] == {"start": [], "restart": [], "reload": [target["name"]],
                               "stop": []}
    assert host["nginx_reload"] is True
    assert host["failures"] == []

    assert _host_state(stack) == before  # nothing was written, no master or worker replaced


def _with_catalogue(stack, tmp_path, sites, *extra):
    """Deploy with a modified catalogue (passed as extra vars) and return the run."""
    extra_vars = tmp_path / "catalogue.json"
    extra_vars.write_text(json.dumps({"sitekit_sites": sites}))
    return stack.playbook("-e", f"@{extra_vars}", *extra)


def _workers(stack) -> dict[str, list[int]]:
    return {name: sorted(children(pid)) for name, pid in masters(stack).items()}


def test_fast_path_applies_a_new_domain_and_reloads_only_that_site(stack, sites, tmp_path):
    changed = [dict(s) for s in sites]
    target = changed[0]
    new_domain = f"news.{target['domains'][0]}"
    target["domains"] = [new_domain, *target["domains"]]  # also the new canonical domain
    before_masters, before_workers = masters(stack), _workers(stack)

    run = _with_catalogue(stack, tmp_path, changed, "--tags", "sites")
    assert run.returncode == 0, run.output[-4000:]
    assert "Build the release" not in run.output  # no release work on the fast path

    status, headers, _ = stack.request(new_domain)
    assert status == 200 and headers["X-Sitekit-Site"] == target["name"]
    assert stack.health(new_domain)["domain"] == new_domain  # the Sites table follows
    assert masters(stack) == before_masters  # graceful: no master restarted
    after_workers = _workers(stack)
    for site in sites[1:]:  # other sites were not even reloaded: same workers
        assert after_workers[site["name"]] == before_workers[site["name"]]
    assert after_workers[target["name"]] != before_workers[target["name"]]

    restored = stack.playbook("--tags", "sites")
    assert restored.returncode == 0, restored.output[-4000:]
    assert stack.health(target["domains"][1])["domain"] == target["domains"][1]
    with pytest.raises(ssl.SSLError):
        stack.request(new_domain)


def test_removed_site_leaves_no_trace_but_keeps_its_data(stack, sites, tmp_path):
    gone = sites[-1]["name"]
    changed = [dict(s, state="absent") if s["name"] == gone else s for s in sites]
    run = _with_catalogue(stack, tmp_path, changed)
    assert run.returncode == 0, run.output[-4000:]

    assert gone not in masters(stack)
    leftovers = [p for p in stack.root.rglob(f"*{gone}*")
                 if not {"releases", "build", "media"} & set(p.parts)]
    assert leftovers == []
    # its uploads are kept, as its rows are
    url, data = UPLOADED[gone]
    assert (stack.root / "media" / url.removeprefix("/media/")).read_bytes() == data
    with pytest.raises(ssl.SSLError):
        stack.request(sites[-1]["domains"][0])
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        stack.request(sites[-1]["domains"][0], scheme="http")
    keeper = sites[0]
    shell = (
        "from django.contrib.sites.models import Site\n"
        "from project.core.models import Announcement\n"
        f"site = Site.objects.get(domain={sites[-1]['domains'][0]!r})\n"
        "print('rows', site.id, Announcement.objects.filter(site=site).count())\n"
    )
    current = stack.root / "current"
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=f"settings.{keeper['name']}",
               SITEKIT_ENV_FILE=str(stack.root / "etc" / "sites" / f"{keeper['name']}.env"))
    proc = subprocess.run([str(current / "venv" / "bin" / "python"), "manage.py", "shell",
                           "-c", shell], cwd=current, env=env, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("rows ")]
    assert len(rows) == 1, proc.stdout
    assert int(rows[0][2]) >= 1  # its Site row and its content are still in the database

    restored = stack.playbook()
    assert restored.returncode == 0, restored.output[-4000:]
    assert stack.health(sites[-1]["domains"][0])["site"] == gone
    assert fetch(stack, sites[-1]["domains"][0], url)[2] == data


def test_invalid_catalogue_fails_before_touching_the_host(stack, sites):
    def snapshot():
        return {p: p.stat().st_mtime_ns for p in (stack.root / "etc").rglob("*")}

    before, pids = snapshot(), masters(stack)
    bad = (
        '{"sitekit_sites": [{"name": "harbor", "domains": ["harbor.localhost"]},'
        ' {"name": "meadow", "domains": ["harbor.localhost"]}]}'
    )
    run = stack.playbook("-e", bad)
    assert run.returncode != 0
    assert "site 'meadow'" in run.output and "field 'domains[0]'" in run.output
    assert "already belongs to site 'harbor'" in run.output
    assert "Deploy the release" not in run.output  # the deploy play never started
    assert snapshot() == before
    assert masters(stack) == pids


def test_a_value_an_env_file_cannot_hold_fails_before_touching_the_host(stack, sites, tmp_path):
    """A shared value with a line break would add a variable to every env file (EVIL=1)."""
    def contents():
        return {p: p.read_bytes() for p in (stack.root / "etc").rglob("*") if p.is_file()}

    before, pids = contents(), masters(stack)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"sitekit_log_level": "INFO\nEVIL=1"}))
    run = stack.playbook("-e", f"@{extra}")
    assert run.returncode != 0
    assert ("local: field 'sitekit_log_level': SITEKIT_LOG_LEVEL (every site's env file holds "
            "it) contains a line break or another control character") in " ".join(
                run.output.split())
    assert "EVIL" not in run.output
    assert "Deploy the release" not in run.output  # the deploy play never started
    assert contents() == before
    for site in sites:
        env_file = stack.root / "etc" / "sites" / f"{site['name']}.env"
        assert "EVIL" not in env_file.read_text()
    assert masters(stack) == pids


def test_new_release_reloads_every_master_in_place_without_failed_requests(
    stack, sites, tmp_path
):
    project = release_checkout(tmp_path / "checkout", "a new release")
    new_id = release_id(project)
    old_pids = masters(stack)
    old_id = stack.health(sites[0]["domains"][0])["release"]
    assert new_id != old_id
    wheelhouses = stack.root / "wheelhouse"
    (current,) = wheelhouses.iterdir()
    earlier = wheelhouses / "wheelhouse-0123456789ab"  # of requirements no release has now
    earlier.mkdir()
    (earlier / "django-4.2-py3-none-any.whl").write_bytes(b"")

    with stack.load(sites) as load:
        time.sleep(1)
        started = time.monotonic()
        run = stack.playbook(project=project)
        ended = time.monotonic()
        time.sleep(1)
    assert run.returncode == 0, run.output[-4000:]
    assert masters(stack) == old_pids  # graceful in-place reload: same master pids
    for site in sites:
        assert stack.health(site["domains"][0])["release"] == new_id
    assert (stack.root / "releases" / old_id).is_dir()  # kept: what a rollback goes back to
    # the wheelhouse of the requirements now stays, for the next release with them
    assert list(wheelhouses.iterdir()) == [current] and (current / ".complete").is_file()
    figures = summary(load.samples)
    print(describe("requests during the deploy", figures))
    assert_load_spanned(load, started, ended, sites, old_id, new_id)
    assert figures["sent"] > 50
    assert figures["failed"] == 0, figures
    assert_uploads_served(stack)


def assert_load_spanned(load, started, ended, sites, old, new):
    """The load covered what matters: every 2 s of the run had answered requests, and every
    domain was answered by the old release and then by the new one (its master reloaded while
    it was being asked)."""
    assert gaps(load.samples, started, ended, step=2.0) == []
    releases = answered_by(load.samples)
    for domain in (d for site in sites for d in site["domains"]):
        assert {old, new} <= releases.get(domain, set()), (domain, releases.get(domain))


def assert_uploads_served(stack):
    """What the upload test stored is still served, on its own site."""
    assert UPLOADED
    for site, (url, data) in UPLOADED.items():
        status, _, served = fetch(stack, f"{site}.localhost", url)
        assert (status, served) == (200, data), (site, url)


def test_rollback_returns_every_master_in_place_to_the_previous_release(stack, sites, tmp_path):
    """`-e release_rollback=previous` switches back to the release that was live before, with
    nothing built or migrated, every master reloaded in place and no request failing; a release
    that is not installed is refused with the live one unchanged."""
    project = release_checkout(tmp_path / "checkout", "a release to roll back from")
    home = sites[0]["domains"][0]
    before = stack.health(home)["release"]
    run = stack.playbook(project=project)
    assert run.returncode == 0, run.output[-4000:]
    newer = stack.health(home)["release"]
    assert newer != before
    pids = masters(stack)

    with stack.load(sites) as load:
        time.sleep(1)
        started = time.monotonic()
        run = stack.playbook("-e", "release_rollback=previous")
        ended = time.monotonic()
        time.sleep(1)
    assert run.returncode == 0, run.output[-4000:]
    assert_load_spanned(load, started, ended, sites, newer, before)
    assert "Build the release on the control machine" not in _ran(run.output)
    assert "Apply database migrations" not in _ran(run.output)
    for site in sites:
        assert stack.health(site["domains"][0])["release"] == before
    assert os.readlink(stack.root / "current").endswith("/" + before)
    assert (stack.root / "PREVIOUS_RELEASE").read_text().strip() == newer
    assert masters(stack) == pids
    figures = summary(load.samples)
    print(describe("requests during the rollback", figures))
    assert figures["sent"] > 20
    assert figures["failed"] == 0, figures

    run = stack.playbook("-e", "release_rollback=0123456789ab")
    assert run.returncode != 0
    assert "Cannot roll back to release 0123456789ab" in run.output
    assert "it is not installed there" in run.output
    assert "The live release is unchanged" in run.output
    assert stack.health(home)["release"] == before
    assert masters(stack) == pids
    assert_uploads_served(stack)


def test_a_host_python_the_wheelhouse_was_not_built_for_installs_nothing(stack, sites, tmp_path):
    # the control machine's Python built the wheelhouse; a host whose release_python is
    # another version or platform could install none of its compiled wheels
    project = release_checkout(tmp_path / "checkout", "a release for another Python")
    new_id = release_id(project)
    other = tmp_path / "python3.12"
    other.write_text('#!/bin/sh\necho cpython-312-macosx-14.0-arm64\n')
    other.chmod(0o755)
    home = sites[0]["domains"][0]
    before, pids = stack.health(home)["release"], masters(stack)
    run = stack.playbook("-e", f"release_python={other}", project=project)
    assert run.returncode != 0
    built_for = f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    said = " ".join(run.output.split())  # the message, however the callback wraps it
    assert f"Python, for {built_for};" in said
    assert f"release_python ({other}) is cpython-312-macosx-14.0-arm64," in said
    assert "Nothing was installed." in said
    assert not (stack.root / "releases" / new_id).exists()
    assert stack.health(home)["release"] == before and masters(stack) == pids


def _ran(output: str) -> str:
    """The names of the tasks that ran (not skipped) in a playbook's output."""
    ran, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif task and line.startswith(("ok:", "changed:", "fatal:")):
            ran.append(task)
            task = None
    return "\n".join(ran)


def test_over_https_django_trusts_only_the_scheme_and_host_nginx_sets(stack, sites):
    """Every site's settings say https (its TLS is on): Django redirects any request that did
    not arrive over https to the host nginx matched, whatever a client claims in X-Forwarded-*;
    through nginx, plain http never reaches it (nginx redirects) and https is served."""
    for site in sites:
        env = (stack.root / "etc" / "sites" / f"{site['name']}.env").read_text().splitlines()
        assert "SITEKIT_PUBLIC_SCHEME=https" in env
        domain = site["domains"][0]
        # straight from the master's socket, as nginx would forward a plain-http request
        status, headers = stack.over_socket(site["name"], domain, "/healthz?x=1",
                                            {"X-Forwarded-Proto": "http"})
        assert (status, headers["Location"]) == (301, f"https://{domain}/healthz?x=1")
        assert "Strict-Transport-Security" not in headers  # never over plain HTTP
        # through nginx over https, with a client's spoofed headers: served, not redirected
        status, headers, _ = stack.request(domain, "/healthz", headers=SPOOFED_FORWARDING)
        assert (status, headers["X-Sitekit-Site"]) == (200, site["name"])
        # through nginx over http claiming https: nginx's redirect, Django never asked
        status, headers, _ = stack.request(f"{domain.upper()}.:{stack.port}", "/healthz?x=1",
                                           headers=SPOOFED_FORWARDING, scheme="http")
        assert (status, headers["Location"]) == (
            301, f"https://{domain}:{stack.tls_port}/healthz?x=1")
        assert "X-Sitekit-Site" not in headers
    first = sites[0]["domains"][0]
    status, headers = stack.raw(f"GET http://{first}/a HTTP/1.1\r\nHost: evil.example\r\n"
                                "Connection: close\r\n\r\n")
    assert (status, headers["Location"]) == (301, f"https://{first}:{stack.tls_port}/a")
    # what a master answers to a request nginx received over https
    status, headers = stack.over_socket(sites[0]["name"], first, "/healthz",
                                        {"X-Forwarded-Proto": "https"})
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_make_down_leaves_nothing_running(stack):
    supervisord = int((stack.root / "run" / "supervisord.pid").read_text())
    nginx = int((stack.root / "run" / "nginx.pid").read_text())
    pids = [supervisord, nginx, *children(supervisord), *children(nginx)]
    proc = subprocess.run(["make", "-s", "down", f"STACK={stack.root}", f"VENV={BIN.parent}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    deadline = time.time() + 30
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if Path(f"/proc/{p}").exists()]
    leftover = []
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit():
            try:
                if str(stack.root) in cmdline(int(proc_dir.name)):
                    leftover.append(cmdline(int(proc_dir.name)))
            except OSError:
                pass
    assert leftover == []
    assert not list((stack.root / "run").glob("*/gunicorn.sock"))
    assert stat.S_ISDIR((stack.root / "run").stat().st_mode)
