"""Production-shaped deploy on lb, web1, web2 and db, checked host by host and over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import socket
import ssl
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from tests.rehearsal.conftest import (
    BIN,
    INVENTORY,
    ROOT,
    rehearsal_group,
    rehearsal_hosts,
    rehearsal_sites,
)

pytestmark = pytest.mark.rehearsal

HOSTS = rehearsal_hosts()
SITES = rehearsal_sites()
# What inventories/rehearsal's catalogue runs, stated here rather than derived by the code under
# test: harbor's own master, and pool quiet's for meadow and ember.
MASTERS = [
    {"name": "harbor", "kind": "site", "settings_module": "settings.harbor",
     "sites": ["harbor"], "workers": 2},
    {"name": "quiet", "kind": "pool", "settings_module": "settings.pool",
     "sites": ["meadow", "ember"], "workers": 2},
]
MASTER_OF = {site: m["name"] for m in MASTERS for site in m["sites"]}
WEB = ["web1", "web2"]
STORAGE = rehearsal_group("storage")[0]
# the sites' bucket, as every environment names it (roles/sitekit/defaults)
BUCKET = yaml.safe_load((ROOT / "roles/sitekit/defaults/main.yml").read_text())["sitekit_s3_bucket"]
S3 = f"http://{HOSTS[STORAGE]}:8333"


CA = Path("/nonexistent")  # the environment's CA, read from the lb once it is deployed


@pytest.fixture(scope="module", autouse=True)
def _environment_ca(rehearsal, tmp_path_factory):
    """The CA that issued the sites' certificates, from the lb (where it was created)."""
    global CA
    CA = tmp_path_factory.mktemp("ca") / "ca.pem"
    CA.write_text(rehearsal.bed.run("lb", "cat /etc/sitekit/tls-ca/ca.pem").stdout)


def get(address: str, host: str, path: str = "/", headers: dict[str, str] | None = None,
        tls: bool | None = None, binary: bool = False):
    """A request with this Host: over https to the lb (SNI = host, verified with the
    environment's CA), over plain http to a web host (TLS terminates at the lb)."""
    if tls is None:
        tls = address == HOSTS["lb"]
    if tls:
        context = ssl.create_default_context(cafile=str(CA))
        conn = http.client.HTTPSConnection(address, 443, timeout=15, context=context)
        raw = socket.create_connection((address, 443), timeout=15)
        conn.sock = context.wrap_socket(raw, server_hostname=host.split(":")[0])
    else:
        conn = http.client.HTTPConnection(address, 80, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, dict(resp.getheaders()), body if binary else body.decode()
    finally:
        conn.close()


def own_address(address: str) -> str:
    """The address this machine reaches *address* from (what the host sees as the client)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((address, 80))
        return s.getsockname()[0]


def processes(host) -> list[dict]:
    """pid, ppid, user and title of every process (full user names, untruncated titles)."""
    out = host.check_output("ps -e -ww -o pid=,ppid=,user:32=,args=")
    found = []
    for line in out.splitlines():
        pid, ppid, user, args = line.split(None, 3)
        found.append({"pid": int(pid), "ppid": int(ppid), "user": user, "args": args.strip()})
    return found


def brand(name: str) -> str:
    import importlib

    return importlib.import_module(f"settings.{name}").SITEKIT_BRAND["name"]


def through_socket(rehearsal, name: str, site: str, host: str, path: str = "/") -> str:
    """The body a web host's master answers, asked on that host through its socket as the lb's
    https request reaches it (X-Forwarded-Proto: https)."""
    script = (
        "import http.client, socket\n"
        "c = http.client.HTTPConnection('localhost')\n"
        "c.sock = socket.socket(socket.AF_UNIX)\n"
        f"c.sock.connect('/run/sitekit/{site}/gunicorn.sock')\n"
        f"c.request('GET', {path!r}, headers={{'Host': {host!r}, 'X-Forwarded-Proto': 'https'}})\n"
        "r = c.getresponse()\n"
        "print(r.status)\n"
        "print(r.read().decode())\n"
    )
    out = rehearsal.bed.run(name, f"python3 -c {shlex.quote(script)}")
    assert out.returncode == 0, out.stderr
    status, body = out.stdout.split("\n", 1)
    assert status == "200", out.stdout[:300]
    return body


def test_first_converge(rehearsal):
    recap = rehearsal.first.recap()
    assert sorted(recap) == sorted(HOSTS)
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values())


def test_second_converge_changes_nothing(rehearsal):
    again = rehearsal.converge()
    assert again.returncode == 0, again.output[-6000:]
    changed = {host: counts["changed"] for host, counts in again.recap().items()}
    assert changed == dict.fromkeys(HOSTS, 0), again.changed_tasks()


@pytest.mark.parametrize("name", ["lb", *WEB])
def test_nginx_runs_with_a_valid_configuration(rehearsal, name):
    host = rehearsal.host(name)
    assert host.service("nginx").is_running
    assert host.run("nginx -t").rc == 0
    assert host.socket("tcp://0.0.0.0:80").is_listening


@pytest.mark.parametrize("name", ["lb", *WEB])
def test_nginx_has_the_open_files_its_sites_logs_need(rehearsal, name):
    """2 logs per site plus a margin, on a web host its file cache, and 2 per worker connection:
    the systemd drop-in, the init script's ULIMIT, worker_rlimit_nofile and the running master
    all say the same."""
    host = rehearsal.host(name)
    # 3 sites: 6 log files, a margin of 128, 2 per connection of 1,024; a web host's file
    # cache of 1,000 (the lb serves no files)
    limit = 2182 if name == "lb" else 3182
    drop_in = host.file("/etc/systemd/system/nginx.service.d/sitekit-limits.conf")
    assert f"LimitNOFILE={limit}" in drop_in.content_string.splitlines()
    assert host.check_output("systemctl show -P LimitNOFILESoft nginx") == str(limit)
    assert f'ULIMIT="-n {limit}"' in host.file("/etc/default/nginx").content_string
    assert f"worker_rlimit_nofile {limit};" in host.file("/etc/nginx/nginx.conf").content_string
    master = host.file("/run/nginx.pid").content_string.split()[0]
    limits = host.file(f"/proc/{master}/limits").content_string
    soft = next(ln for ln in limits.splitlines() if ln.startswith("Max open files")).split()[3]
    assert int(soft) == limit


@pytest.mark.parametrize("name", WEB)
def test_one_master_per_dedicated_site_and_per_pool_as_its_own_user(rehearsal, name):
    assert {m["kind"] for m in MASTERS} == {"site", "pool"}  # the catalogue mixes both
    host = rehearsal.host(name)
    running = processes(host)
    titles = sorted(p["args"] for p in running if p["args"].startswith("gunicorn: master"))
    assert titles == sorted(f"gunicorn: master [sitekit-{m['name']}]" for m in MASTERS)
    for spec in MASTERS:
        title = f"gunicorn: master [sitekit-{spec['name']}]"
        master = next(p for p in running if p["args"] == title)
        assert master["user"] == f"sk-{spec['name']}"
        environ = host.check_output(f"tr '\\0' '\\n' < /proc/{master['pid']}/environ")
        assert f"DJANGO_SETTINGS_MODULE={spec['settings_module']}" in environ.splitlines()
        workers = [p for p in running if p["ppid"] == master["pid"]]
        assert len(workers) == spec["workers"]
        assert {w["user"] for w in workers} == {f"sk-{spec['name']}"}
        assert all(w["args"].startswith("gunicorn: worker [") for w in workers)
    # no master, user or run directory for a pooled site of its own
    for site in SITES:
        if MASTER_OF[site["name"]] != site["name"]:
            assert not host.user(f"sk-{site['name']}").exists
            assert not host.file(f"/run/sitekit/{site['name']}").exists


@pytest.mark.parametrize("name", WEB)
def test_sockets_and_secrets_belong_to_their_master(rehearsal, name):
    host = rehearsal.host(name)
    for spec in MASTERS:
        user = f"sk-{spec['name']}"
        sock = host.file(f"/run/sitekit/{spec['name']}/gunicorn.sock")
        assert sock.is_socket
        assert sock.user == user and sock.group == user
        assert sock.mode & 0o007 == 0, oct(sock.mode)  # nothing for "other"
        env = host.file(f"/etc/sitekit/sites/{spec['name']}.env")
        assert env.user == user
        assert env.mode == 0o600, oct(env.mode)
    # one master's user cannot read another master's secrets
    first, second = MASTERS[0]["name"], MASTERS[1]["name"]
    denied = host.run(f"runuser -u sk-{second} -- cat /etc/sitekit/sites/{first}.env")
    assert denied.rc != 0 and "Permission denied" in denied.stderr
    own = host.run(f"runuser -u sk-{first} -- cat /etc/sitekit/sites/{first}.env")
    assert own.rc == 0 and "SITEKIT_SECRET_KEY=" in own.stdout
    # nor connect to another site's socket (nginx's user can)
    connect = ("python3 -c 'import socket, sys; "
               "socket.socket(socket.AF_UNIX).connect(sys.argv[1])' "
               f"/run/sitekit/{first}/gunicorn.sock")
    denied = host.run(f"runuser -u sk-{second} -- {connect}")
    assert denied.rc != 0 and "PermissionError" in denied.stderr
    assert host.run(f"runuser -u www-data -- {connect}").rc == 0


def test_postgresql_admits_the_web_hosts_only(rehearsal):
    db = rehearsal.host("db")
    assert db.service("postgresql").is_running
    assert db.socket(f"tcp://{HOSTS['db']}:5432").is_listening
    probe = (
        "import psycopg2, sys\n"
        "try:\n"
        f"    psycopg2.connect(host='{HOSTS['db']}', dbname='sitekit', user='sitekit',"
        " password='wrong', connect_timeout=5)\n"
        "except psycopg2.OperationalError as exc:\n"
        "    print(exc)\n"
    )
    for name, expected in (("web1", "password authentication failed"),
                           ("lb", "no pg_hba.conf entry")):
        out = rehearsal.bed.run(name, f"python3 -c {shlex.quote(probe)}").stdout
        assert expected in out, (name, out)


def test_every_domain_answers_through_the_lb_with_its_brand(rehearsal):
    for site in SITES:
        for domain in site["domains"]:
            status, headers, body = get(HOSTS["lb"], domain)
            assert status == 200, (domain, body[:300])
            assert headers["X-Sitekit-Site"] == site["name"]
            pooled = MASTER_OF[site["name"]] != site["name"]
            assert headers.get("X-Sitekit-Pool") == (MASTER_OF[site["name"]] if pooled else None)
            assert f'<span class="brand-name">{brand(site["name"])}</span>' in body
            status, headers, body = get(HOSTS["lb"], domain, "/no-such-page/")
            assert (status, headers["X-Sitekit-Site"]) == (404, site["name"])
            assert brand(site["name"]) in body


def test_http_redirects_to_https_on_the_lb(rehearsal):
    for site in SITES:
        for domain in site["domains"]:
            status, headers, _ = get(HOSTS["lb"], domain, "/a?b=1", tls=False)
            assert (status, headers["Location"]) == (301, f"https://{domain}/a?b=1")
            assert "X-Sitekit-Site" not in headers  # the lb answered


def test_unknown_host_is_rejected_by_the_lb(rehearsal):
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(HOSTS["lb"], "unknown.example.org", tls=False)
    with pytest.raises(ssl.SSLError):  # refused during the handshake
        get(HOSTS["lb"], "unknown.example.org")


def test_masters_log_the_client_address_the_lb_saw_never_a_claimed_one(rehearsal):
    """The lb passes its client's address on; a web host takes it from the lb only."""
    site = SITES[0]
    logs = f"/var/log/sitekit/sites/{MASTER_OF[site['name']]}/access.log"
    spoofed = {"X-Forwarded-For": "203.0.113.9", "X-Real-IP": "203.0.113.9",
               "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    for via in ("lb", "web1"):
        marker = f"/?probe={uuid.uuid4().hex}"
        status, headers, _ = get(HOSTS[via], site["domains"][0], marker, spoofed)
        # through the lb's https: served; straight to web1 over http claiming https: the
        # claim does not count, and the site redirects to https
        assert (status, headers["X-Sitekit-Site"]) == (200 if via == "lb" else 301, site["name"])
        deadline, lines = time.monotonic() + 10, []
        while not lines and time.monotonic() < deadline:  # logged just after answering
            for name in WEB:
                found = rehearsal.bed.run(name, f"grep -hF {shlex.quote(marker)} {logs}")
                lines += found.stdout.splitlines()
        assert len(lines) == 1, (via, lines)
        assert lines[0].split()[0] == own_address(HOSTS[via]), (via, lines[0])


def test_the_sites_table_holds_this_environments_canonical_domains(rehearsal):
    for site in SITES:
        status, _, body = get(HOSTS["lb"], site["domains"][0], "/healthz")
        assert status == 200
        assert json.loads(body)["domain"] == site["domains"][0]


def test_a_new_site_row_takes_an_id_after_the_catalogues_on_postgresql(rehearsal):
    """sync_sites writes rows with the ids of the site modules: on PostgreSQL (not SQLite, which
    continues past the largest id by itself) it must move the id sequence past them, or the
    next row Django creates would take id 1 and fail."""
    script = ("from django.contrib.sites.models import Site\n"
              "row = Site.objects.create(domain='later.rehearsal.test', name='Later')\n"
              "print('new-site-id', row.id, Site.objects.order_by('-id')[1].id)\n"
              "row.delete()")
    run = rehearsal.bed.run("web1", (
        "cd /srv/sitekit/current && runuser -u sk-harbor -- env "
        "SITEKIT_ENV_FILE=/etc/sitekit/sites/harbor.env DJANGO_SETTINGS_MODULE=settings.harbor "
        f"venv/bin/python manage.py shell -c {shlex.quote(script)}"))
    assert run.returncode == 0, run.stderr[-3000:]
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("new-site-id "))
    new_id, largest_before = map(int, line.split()[1:])
    assert new_id > largest_before >= 3


def test_both_web_hosts_serve_the_same_release(rehearsal):
    releases = set()
    for name in WEB:
        live = rehearsal.bed.run(name, "cat /srv/sitekit/RELEASE").stdout.strip()
        assert live
        for site in SITES:
            _, headers, _ = get(HOSTS[name], site["domains"][0])
            assert headers["X-Sitekit-Release"] == live
        releases.add(live)
    assert len(releases) == 1


def test_content_written_through_one_web_host_is_read_through_the_other(rehearsal):
    site = SITES[0]
    title = f"Written on web1 at {time.time():.0f}"
    script = (
        "from django.contrib.sites.models import Site\n"
        "from project.core.models import Announcement\n"
        f"Announcement.objects.create(site=Site.objects.get_current(), title={title!r}, body='x')"
    )
    write = rehearsal.bed.run("web1", (
        f"cd /srv/sitekit/current && runuser -u sk-{site['name']} -- env "
        f"SITEKIT_ENV_FILE=/etc/sitekit/sites/{site['name']}.env "
        f"DJANGO_SETTINGS_MODULE=settings.{site['name']} "
        f"venv/bin/python manage.py shell -c {shlex.quote(script)}"))
    assert write.returncode == 0, write.stderr
    assert title in through_socket(rehearsal, "web2", MASTER_OF[site["name"]], site["domains"][0])


def s3_keys() -> tuple[str, str]:
    """The sites' key of the object store, as the environment's vault holds it."""
    out = subprocess.run(
        [str(BIN / "ansible-vault"), "view", "--vault-password-file",
         str(INVENTORY / "vault-password.txt"), str(INVENTORY / "group_vars/all/vault.yml")],
        capture_output=True, text=True, check=True).stdout
    vault = yaml.safe_load(out)
    return vault["vault_sitekit_s3_access_key"], vault["vault_sitekit_s3_secret_key"]


def curl(rehearsal, name: str, url: str, *options: str,
         upload: str | None = None) -> tuple[int, str, str]:
    """curl's exit status, the http status and the body of a request from host *name* (a PUT
    of *upload* when given)."""
    if upload is not None:
        options = ("-T", "-", *options)
    out = rehearsal.bed.run(name, shlex.join(
        ["curl", "-sS", "--max-time", "3", "-w", "\n%{http_code}", *options, url]),
        input=upload)
    body, _, status = out.stdout.rpartition("\n")
    return out.returncode, status, body


def test_object_store_runs_as_its_own_user_with_its_key_for_it_only(rehearsal):
    host = rehearsal.host(STORAGE)
    assert host.service("seaweedfs").is_running and host.service("seaweedfs").is_enabled
    weed = [p for p in processes(host) if " server " in f"{p['args']} " and "weed" in p["args"]]
    assert [p["user"] for p in weed] == ["seaweedfs"], weed
    assert host.user("seaweedfs").shell == "/usr/sbin/nologin"
    data = host.file("/var/lib/seaweedfs")
    assert (data.user, data.mode & 0o007) == ("seaweedfs", 0)
    identities = host.file("/etc/seaweedfs/s3.json")
    assert (identities.user, identities.mode) == ("seaweedfs", 0o600)
    # the S3 gateway on the private address; the master, volume and filer on loopback only
    assert host.socket(f"tcp://{HOSTS[STORAGE]}:8333").is_listening
    for port in (9333, 8080, 8888):
        assert host.socket(f"tcp://127.0.0.1:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening
        assert not host.socket(f"tcp://{HOSTS[STORAGE]}:{port}").is_listening


def test_object_store_answers_the_web_hosts_only(rehearsal):
    missing = f"{S3}/{BUCKET}/no-such-site/{uuid.uuid4().hex}.png"
    for name in WEB:
        assert curl(rehearsal, name, missing)[:2] == (0, "404"), name
        # its internal servers are not for them either
        assert curl(rehearsal, name, f"http://{HOSTS[STORAGE]}:9333/cluster/status")[0] != 0
    # refused (reset by the firewall), or no answer at all
    assert curl(rehearsal, "lb", missing)[0] in (7, 28)
    # the storage host's other services still answer the lb: SSH here (PostgreSQL:
    # test_postgresql_admits_the_web_hosts_only)
    ssh = rehearsal.bed.run("lb", f"timeout 3 bash -c 'head -c 4 < /dev/tcp/{HOSTS[STORAGE]}/22'")
    assert ssh.stdout == "SSH-", ssh.stderr


def test_the_sites_key_writes_and_anyone_on_a_web_host_only_reads(rehearsal):
    access, secret = s3_keys()
    signed = ("--aws-sigv4", "aws:amz:us-east-1:s3", "--user", f"{access}:{secret}")
    key = f"{S3}/{BUCKET}/harbor/announcements/{uuid.uuid4().hex}.txt"
    content = f"written from web1 {uuid.uuid4().hex}"
    try:
        assert curl(rehearsal, "web1", key, *signed, upload=content)[1] == "200"
        assert curl(rehearsal, "web2", key) == (0, "200", content)
        # anonymous: no writing, no listing, nothing outside the bucket
        assert curl(rehearsal, "web2", key.replace(".txt", "-2.txt"), upload="x")[1] == "403"
        assert curl(rehearsal, "web2", f"{S3}/{BUCKET}?list-type=2")[1] == "403"
        assert curl(rehearsal, "web2", f"{S3}/")[1] == "403"
        # the sites' key lists its bucket (curl signs the query as written: "/" encoded), and may
        # not make another one
        _, status, listed = curl(rehearsal, "web2", f"{S3}/{BUCKET}?list-type=2&prefix=harbor%2F",
                                 *signed)
        assert status == "200" and key.rsplit("/", 1)[-1] in listed
        assert curl(rehearsal, "web2", f"{S3}/another-bucket", *signed, "-X", "PUT")[1] == "403"
    finally:
        curl(rehearsal, "web1", key, *signed, "-X", "DELETE")
    assert curl(rehearsal, "web2", key)[1] == "404"


def test_check_mode_on_the_storage_host_reports_no_change(rehearsal):
    plan = rehearsal.converge("--check", "--diff", "--limit", "storage")
    assert plan.returncode == 0, plan.output[-6000:]
    assert plan.recap()[STORAGE]["changed"] == 0, plan.changed_tasks()
    _, secret = s3_keys()
    assert secret not in plan.output


def manage_shell(rehearsal, name: str, site: str, script: str) -> str:
    """What ``manage.py shell -c script`` prints on web host *name*, run as the site's master
    runs (its user, env file and settings module, in the live release)."""
    master = MASTER_OF[site]
    out = rehearsal.bed.run(name, (
        f"cd /srv/sitekit/current && runuser -u sk-{master} -- env "
        f"SITEKIT_ENV_FILE=/etc/sitekit/sites/{master}.env "
        f"DJANGO_SETTINGS_MODULE=settings.{site} "
        f"venv/bin/python manage.py shell -c {shlex.quote(script)}"))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


def test_an_image_uploaded_through_one_web_host_is_served_by_the_other(rehearsal):
    """Through web1's Django into the object store; out of it through the lb by web2's nginx,
    web1 stopped; gone from it when its announcement is deleted through web2."""
    site = SITES[0]
    domain = site["domains"][0]
    upload = (
        "import io\n"
        "from django.contrib.sites.models import Site\n"
        "from django.core.files.uploadedfile import SimpleUploadedFile\n"
        "from PIL import Image\n"
        "from project.core.models import Announcement\n"
        "buf = io.BytesIO()\n"
        "Image.new('RGB', (3, 2), (200, 30, 30)).save(buf, 'PNG')\n"
        "a = Announcement(site=Site.objects.get_current(), title='With an image', body='x',\n"
        "                 image=SimpleUploadedFile('upload.gif', buf.getvalue()))\n"
        "a.full_clean()\n"
        "a.save()\n"
        "print('uploaded', a.pk, a.image.url)\n"
    )
    out = manage_shell(rehearsal, "web1", site["name"], upload)
    _, pk, url = next(line for line in out.splitlines() if line.startswith("uploaded ")).split()
    assert url.startswith(f"/media/{site['name']}/announcements/") and url.endswith(".png"), url
    # web2's nginx reads it from the store
    status, headers, body = get(HOSTS["web2"], domain, url, binary=True)
    assert (status, headers["Content-Type"]) == (200, "image/png"), headers
    png = body
    assert png.startswith(b"\x89PNG")
    rehearsal.bed.stop("web1")
    try:
        status, headers, body = get(HOSTS["lb"], domain, url, binary=True)
        assert (status, body) == (200, png)
        assert headers["Content-Type"] == "image/png"
        assert headers["X-Content-Type-Options"] == "nosniff"
        delete = ("from project.core.models import Announcement\n"
                  f"a = Announcement.objects.get(pk={pk})\n"
                  "a.image.delete(save=False)\n"
                  "a.delete()\n")
        manage_shell(rehearsal, "web2", site["name"], delete)
        assert get(HOSTS["lb"], domain, url)[0] == 404
    finally:
        rehearsal.bed.start("web1")


def sitekit_manage(rehearsal, site: str, *argv: str, env: dict | None = None):
    """`sitekit manage rehearsal SITE ...` as an operator runs it: over ssh, with the testbed's
    connection variables (its key) as a further inventory file."""
    return subprocess.run(
        [str(BIN / "sitekit"), "--project", str(ROOT), "manage", "rehearsal", site, "-i",
         str(rehearsal.connection_vars), *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False)


def test_sitekit_manage_runs_a_sites_command_over_ssh_as_its_master(rehearsal):
    user = f"ed-{uuid.uuid4().hex[:8]}"
    password = f"Rehearsal {uuid.uuid4().hex} $HOME 'q\" \\x"  # spaces, quotes, no expansion
    env = dict(os.environ, SITEKIT_USER_PASSWORD=password)
    granted = sitekit_manage(rehearsal, "harbor", "--host", "web2", "--env",
                             "SITEKIT_USER_PASSWORD", "--", "site_editors", "grant", user,
                             "harbor", "--create", env=env)
    assert granted.returncode == 0, granted.stderr
    assert granted.stdout.splitlines() == [f"{user}: created (staff)",
                                           f"{user} edits harbor: granted"]
    assert "sitekit manage: rehearsal: harbor on web2 as sk-harbor" in granted.stderr
    assert password not in granted.stdout + granted.stderr

    # through web1: the database is shared
    listed = sitekit_manage(rehearsal, "harbor", "--host", "web1", "--", "site_editors", "list",
                            "harbor")
    assert listed.returncode == 0, listed.stderr
    assert user in listed.stdout.splitlines()[0].removeprefix("harbor: ").split(", ")

    # on web2, as harbor's master user and settings: the password arrived byte for byte
    check = sitekit_manage(rehearsal, "harbor", "--host", "web2", "--", "shell", "-c",
                           "import getpass, os; from django.conf import settings; "
                           "from django.contrib.auth import authenticate; "
                           "print(os.uname().nodename, getpass.getuser(), settings.SITEKIT_SITE, "
                           f"bool(authenticate(username={user!r}, password={password!r})))")
    assert check.returncode == 0, check.stderr
    web2 = rehearsal.bed.run("web2", "uname -n").stdout.strip()
    # (the shell may first say what it imported)
    assert check.stdout.splitlines()[-1].split() == [web2, "sk-harbor", "harbor", "True"]

    # a failing command's exit status and message come back
    failed = sitekit_manage(rehearsal, "harbor", "--host", "web2", "--", "site_editors", "grant",
                            "nobody", "nosuchsite")
    assert failed.returncode == 1, failed.stderr
    assert "CommandError: unknown site 'nosuchsite'" in failed.stderr


def test_every_site_keeps_answering_when_a_web_host_is_down(rehearsal):
    rehearsal.bed.stop("web1")
    try:
        failures = []
        for _ in range(3):
            for site in SITES:
                for domain in site["domains"]:
                    try:
                        status, _, _ = get(HOSTS["lb"], domain)
                    except OSError as exc:
                        status = repr(exc)
                    if status != 200:
                        failures.append((domain, status))
        assert failures == []
    finally:
        rehearsal.bed.start("web1")


def test_the_object_store_and_its_firewall_come_back_after_a_reboot(rehearsal):
    rehearsal.bed.stop(STORAGE)
    rehearsal.bed.start(STORAGE)
    missing = f"{S3}/{BUCKET}/no-such-site/x.png"
    deadline, answer = time.monotonic() + 60, ()
    while time.monotonic() < deadline:  # the S3 gateway starts after the master and filer
        answer = curl(rehearsal, "web1", missing)
        if answer[:2] == (0, "404"):
            break
        time.sleep(1)
    assert answer[:2] == (0, "404"), answer
    assert curl(rehearsal, "lb", missing)[0] in (7, 28)


def test_teardown_leaves_nothing_running(rehearsal):
    bed = rehearsal.bed
    bed.down()
    leftover = subprocess.run(["pgrep", "-f", f"systemd-nspawn.*-M {bed.prefix}-"],
                              capture_output=True, text=True, check=False).stdout.split()
    assert leftover == []
    links = subprocess.run(["ip", "link", "show", bed.bridge], capture_output=True, text=True,
                           check=False)
    assert links.returncode != 0  # the bridge is gone
    mounts = [line for line in Path("/proc/mounts").read_text().splitlines()
              if str(bed.work) in line]
    assert mounts == []
