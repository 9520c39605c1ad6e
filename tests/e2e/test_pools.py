"""A catalogue that mixes dedicated and pooled sites, deployed by the real playbook.

The local catalogue's sites with the first and the last in pool ``shared`` and the others on
their own masters (the catalogue passed as extra vars, so the sites and domains stay the local
inventory's): each site answers with its own brand, content and 404 by Host, pooled or not;
one master per dedicated site plus one for the pool; several server blocks point at the pool's
socket; unknown hosts never reach a master. Then the last site moves out of the pool and back
(one field, one deploy each): the master it left drops it only after nginx has switched.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from sitekit.catalogue import RESOURCE_FIELDS
from tests.e2e.stack import BIN, brand, checkout_copy, deployed_stack, masters
from tests.harness import local_catalogue

pytestmark = pytest.mark.e2e

POOL = "shared"


def present():
    return local_catalogue(present=True)


def mixed(pooled: list[str]) -> dict:
    """The local catalogue with *pooled* sites in pool ``shared`` (their resources dropped)."""
    sites = []
    for site in local_catalogue():
        site = dict(site)
        if site["name"] in pooled:
            site = {k: v for k, v in site.items() if k not in RESOURCE_FIELDS}
            site["pool"] = POOL
        sites.append(site)
    return {"sitekit_sites": sites, "sitekit_pools": {POOL: {"workers": 2, "threads": 4}}}


@pytest.fixture(scope="module")
def pooled_names():
    names = [s["name"] for s in present()]
    assert len(names) >= 3, "the local catalogue needs 3 sites for a mixed catalogue"
    return [names[0], names[-1]]


@pytest.fixture(scope="module")
def pooled_stack(tmp_path_factory, pooled_names):
    root = tmp_path_factory.mktemp("pooled")
    catalogues = {}
    for label, names in (("mixed", pooled_names), ("moved", pooled_names[:1])):
        path = root.parent / f"{root.name}-{label}.json"
        path.write_text(json.dumps(mixed(names)))
        catalogues[label] = f"@{path}"
    with deployed_stack(root, "-e", catalogues["mixed"]) as deployed:
        deployed.catalogues = catalogues
        yield deployed


def env_file(stack, master: str) -> dict[str, str]:
    path = stack.root / "etc" / "sites" / f"{master}.env"
    return dict(line.split("=", 1) for line in path.read_text().splitlines()
                if line and not line.startswith("#"))


def test_one_master_per_dedicated_site_and_one_for_the_pool(pooled_stack, pooled_names):
    dedicated = [s["name"] for s in present() if s["name"] not in pooled_names]
    assert sorted(masters(pooled_stack)) == sorted([*dedicated, POOL])
    # the pool's master runs settings.pool; its env file names its sites file, next to it:
    # both readable by it only
    env = pooled_stack.root / "etc" / "sites" / f"{POOL}.env"
    sites_file = pooled_stack.root / "etc" / "sites" / f"{POOL}.sites.json"
    assert oct(env.stat().st_mode & 0o777) == "0o600"
    assert oct(sites_file.stat().st_mode & 0o777) == "0o600"
    lines = dict(line.split("=", 1) for line in env.read_text().splitlines()
                 if line and not line.startswith("#"))
    assert lines["DJANGO_SETTINGS_MODULE"] == "settings.pool"
    assert lines["SITEKIT_POOL_SITES_FILE"] == str(sites_file)
    assert [s["name"] for s in json.loads(sites_file.read_text())] == pooled_names
    # one server block per site, proxying to its master's upstream (nginx.conf: one per
    # master), which is that master's socket: the pooled sites all to the pool's
    conf = (pooled_stack.root / "etc" / "nginx" / "nginx.conf").read_text()
    upstreams = dict(re.findall(r"upstream (\S+) \{\s*server unix:(\S+) ", conf))
    assert len(upstreams) == len(dedicated) + 1
    for site in present():
        block = (pooled_stack.root / "etc" / "nginx" / "sites" / f"{site['name']}.conf").read_text()
        master = POOL if site["name"] in pooled_names else site["name"]
        (upstream,) = re.findall(r"proxy_pass http://(\S+);", block)
        assert upstreams[upstream] == f"{pooled_stack.root}/run/{master}/gunicorn.sock"


def test_every_site_answers_with_its_own_brand_content_and_404(pooled_stack, pooled_names):
    for site in present():
        for host in site["domains"]:
            status, headers, body = pooled_stack.request(host)
            assert status == 200, (host, body[:300])
            assert headers["X-Sitekit-Site"] == site["name"]
            assert headers.get("X-Sitekit-Pool") == (
                POOL if site["name"] in pooled_names else None), host
            assert f"<title>{brand(site['name'])}" in body, host
            assert pooled_stack.health(host)["site"] == site["name"]
            status, headers, body = pooled_stack.request(host, "/no-such-page/")
            assert status == 404, host
            assert headers["X-Sitekit-Site"] == site["name"]
            assert brand(site["name"]) in body and "Page not found" in body, host


def test_unknown_hosts_never_reach_the_pool(pooled_stack, pooled_names):
    log = pooled_stack.root / "log" / "sites" / POOL / "access.log"
    before = log.read_text()
    first = pooled_names[0]
    known = next(s for s in present() if s["name"] == first)["domains"][0]
    for host in ("unknown.example.org", f"evil.{known}", "127.0.0.1"):
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert pooled_stack.raw(request) is None, host  # http: closed without an answer
        # https, with a pooled site's name as SNI: nginx's 421
        status, headers, _ = pooled_stack.request(host, server_name=known)
        assert status == 421 and "X-Sitekit-Site" not in headers, host
    # straight at the pool's socket, a host of a site outside the pool is refused by Django
    dedicated = next(s for s in present() if s["name"] not in pooled_names)
    status, headers = pooled_stack.over_socket(POOL, dedicated["domains"][0], "/",
                                               {"X-Forwarded-Proto": "https"})
    assert status == 400
    assert [line for line in log.read_text()[len(before):].splitlines()
            if "evil" in line or "unknown" in line] == []


def test_sitekit_manage_runs_a_pooled_sites_command_as_its_pool(pooled_stack, pooled_names,
                                                                  tmp_path):
    """A checkout whose catalogue is the deployed one: `sitekit manage` finds the pool's env
    file for a pooled site and runs the site's own settings with it."""
    project = checkout_copy(tmp_path / "checkout")
    catalogue = project / "inventories" / "local" / "group_vars" / "all" / "sites.yml"
    catalogue.write_text(json.dumps(mixed(pooled_names)))
    site = pooled_names[0]

    def manage(*argv: str, env: dict | None = None):
        return subprocess.run(
            [str(BIN / "sitekit"), "--project", str(project), "manage", "local", site, "--root",
             str(pooled_stack.root), *argv], cwd=project, env=env, capture_output=True,
            text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)

    env = dict(os.environ, SITEKIT_USER_PASSWORD="pooled-editor-pw")
    granted = manage("--env", "SITEKIT_USER_PASSWORD", "--", "site_editors", "grant",
                     "pooled-ed", site, "--create", env=env)
    assert granted.returncode == 0, granted.stderr
    assert f"pooled-ed edits {site}: granted" in granted.stdout
    assert f"{site}: pooled-ed" in manage("--", "site_editors", "list", site).stdout
    shown = manage("--", "shell", "-c", "import os; from django.conf import settings; "
                   "print('run', settings.SITEKIT_SITE, os.environ['SITEKIT_ENV_FILE'])")
    assert f"run {site} {pooled_stack.root}/etc/sites/{POOL}.env" in shown.stdout, shown.stderr


def test_a_second_run_changes_nothing(pooled_stack):
    run = pooled_stack.playbook("-e", pooled_stack.catalogues["mixed"])
    assert run.returncode == 0, run.output[-4000:]
    assert run.recap["changed"] == 0, run.output[-4000:]


def test_a_site_moves_out_of_the_pool_and_back(pooled_stack, pooled_names):
    """One field, one deploy each way (bench/deploy_load.py --move measures it under load)."""
    moving = pooled_names[-1]
    host = next(s for s in present() if s["name"] == moving)["domains"][0]
    pool_pid = masters(pooled_stack)[POOL]

    out = pooled_stack.playbook("-e", pooled_stack.catalogues["moved"])
    assert out.returncode == 0, out.output[-4000:]
    now = masters(pooled_stack)
    assert moving in now and now[POOL] == pool_pid  # its own master; the pool reloaded in place
    status, headers, _ = pooled_stack.request(host)
    assert status == 200 and "X-Sitekit-Pool" not in headers
    # the pool dropped it once nginx had switched: its socket refuses the site's host now
    status, _ = pooled_stack.over_socket(POOL, host, "/healthz", {"X-Forwarded-Proto": "https"})
    assert status == 400
    status, _ = pooled_stack.over_socket(moving, host, "/healthz", {"X-Forwarded-Proto": "https"})
    assert status == 200
    # what the pool signed for the site (sessions, links) stays valid on its own master
    own, pool = env_file(pooled_stack, moving), env_file(pooled_stack, POOL)
    assert pool["SITEKIT_SECRET_KEY"] in own["SITEKIT_SECRET_KEY_FALLBACKS"].split(",")
    assert own["SITEKIT_SECRET_KEY"] != pool["SITEKIT_SECRET_KEY"]

    back = pooled_stack.playbook("-e", pooled_stack.catalogues["mixed"])
    assert back.returncode == 0, back.output[-4000:]
    now = masters(pooled_stack)
    assert moving not in now and now[POOL] == pool_pid
    status, headers, _ = pooled_stack.request(host)
    assert status == 200 and headers["X-Sitekit-Pool"] == POOL
    # what belonged to the master it left is gone
    assert not (pooled_stack.root / "run" / moving).exists()
    assert not (pooled_stack.root / "etc" / "sites" / f"{moving}.env").exists()
    # and what its own master signed stays valid in the pool
    fallbacks = env_file(pooled_stack, POOL)["SITEKIT_SECRET_KEY_FALLBACKS"].split(",")
    assert own["SITEKIT_SECRET_KEY"] in fallbacks
