"""A pooled master of 1,000 sites (5,000 domains): each answers by Host in its own brand, and
the master reloads in place under load onto a sites file with one site more.

The gunicorn_site role renders the pool's files (env file, sites file, gunicorn configuration)
for a generated catalogue, each site with its own settings module (SITE_ID, brand, cookies)
and no app of its own; the master runs them as its supervisor program would, from a release
that is this checkout with those settings, on a database migrated and synced by the release
role's commands. The reload is the deploy's: the role renders the catalogue with one site
more, the Sites table is synced, then SIGHUP, while a bounded load goes on over a sample of
the pool's domains.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.load import Load, summary
from tests.harness import (
    BIN,
    REPO,
    SCRUBBED_ENV,
    Service,
    UnixHTTPConnection,
    brand_name,
    link_settings,
    make_catalogue,
    pid_from,
    prepare_database,
    render_gunicorn,
    scratch_project,
    write_settings,
)

SITES = 1000
DOMAINS_PER_SITE = 5
SEED = 1016
POOL = "big"
SAMPLE = 50
FILES = ("run_dir", "log_dir", "env", "pool_sites", "gunicorn")
BRAND_RE = re.compile(r'<span class="brand-name">([^<]*)</span>')


def generated(count: int) -> list[dict]:
    """*count* sites of pool POOL; every tenth one's last domain a wildcard under its first."""
    sites = make_catalogue(count, DOMAINS_PER_SITE, SEED)
    for index, site in enumerate(sites):
        site.pop("workers")
        site["pool"] = POOL
        if index % 10 == 0:
            site["domains"][-1] = "*." + site["domains"][0]
    return sites


def host_of(site: dict, turn: int) -> str:
    """One of the site's domains (a name under it for a wildcard), chosen by *turn*."""
    domain = site["domains"][turn % len(site["domains"])]
    return f"w{turn}.{domain[2:]}" if domain.startswith("*.") else domain


def get(sock: Path, host: str, path: str = "/") -> tuple[int, dict[str, str], str]:
    conn = UnixHTTPConnection(sock, 30)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


@dataclass
class Pool:
    work: Path
    root: Path
    settings: Path
    sites: list[dict]  # the catalogue, the site added at the reload last
    master: dict  # the pool's master as the model resolved it
    service: Service
    env: dict[str, str]

    @property
    def socket(self) -> Path:
        return Path(self.master["socket"])

    def render(self, sites: list[dict], label: str) -> dict:
        hosts = {"pool": {"sitekit_root": str(self.root), "sitekit_tls": "off",
                          "sitekit_pools": {POOL: {"workers": 2}}}}
        masters = render_gunicorn(self.work / label, hosts, sites, files=FILES,
                                  settings=self.settings)
        return masters["pool"][POOL]

    def sync(self, sites: list[dict], label: str) -> None:
        """The Sites table as the release role syncs it (migrations first)."""
        directory = self.work / label
        directory.mkdir(exist_ok=True)
        prepare_database(sys.executable, self.env, directory, seed=False,
                         project=self.root / "current",
                         sites=tuple((s["name"], f"settings.{s['name']}", s["domains"][0])
                                     for s in sites))


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    work = tmp_path_factory.mktemp("pool-scale")
    sites = generated(SITES + 1)
    settings = write_settings(work / "settings", sites)
    link_settings(settings)
    root = work / "stack"
    (root / "var").mkdir(parents=True)
    # the live release: this checkout with the generated settings, and its virtualenv
    release = scratch_project(work / "release", settings)
    (release / "venv").symlink_to(BIN.parent)
    # a copy: Python puts a script's real directory first on sys.path, and settings/ is here
    (release / "manage.py").unlink()
    shutil.copy(REPO / "manage.py", release / "manage.py")
    (root / "current").symlink_to(release)
    # what the master's supervisor program gives it besides its env file
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SITEKIT_") and k not in SCRUBBED_ENV}
    pool = Pool(work, root, settings, sites, {}, None, env)
    pool.master = pool.render(sites[:SITES], "render")
    env.update(DJANGO_SETTINGS_MODULE="settings.pool", SPT_NOENV="1",
               SITEKIT_ENV_FILE=pool.master["env_file"], SITEKIT_CURRENT=str(root / "current"),
               SITEKIT_SOCKET=pool.master["socket"], SITEKIT_KSM="0")
    pool.sync(sites[:SITES], "sync")
    pool.service = Service(POOL, [str(root / "current" / "venv" / "bin" / "gunicorn"), "-c",
                                  pool.master["conf_file"]], work / "master.log", env=env,
                           cwd=root)
    pool.service.start()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if get(pool.socket, sites[0]["domains"][0], "/healthz")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert pool.service.alive(), pool.service.log_tail(40)
            assert time.monotonic() < deadline, pool.service.log_tail(40)
            time.sleep(0.2)
        yield pool
    finally:
        pool.service.stop()


def sample(sites: list[dict]) -> list[tuple[dict, str]]:
    """SAMPLE sites spread over the list (first and last included), each with one host."""
    picked = [sites[round(i * (len(sites) - 1) / (SAMPLE - 1))] for i in range(SAMPLE)]
    return [(site, host_of(site, i)) for i, site in enumerate(picked)]


def test_the_pools_sites_are_in_its_sites_file_not_its_environment(pool):
    env_file = Path(pool.master["env_file"])
    sites_file = Path(pool.master["sites_file"])
    assert sites_file.parent == env_file.parent
    assert oct(sites_file.stat().st_mode & 0o777) == oct(env_file.stat().st_mode & 0o777) == "0o600"
    env = dict(line.split("=", 1) for line in env_file.read_text().splitlines()
               if line and not line.startswith("#"))
    assert env["SITEKIT_POOL_SITES_FILE"] == str(sites_file)
    # no variable lists the sites' domains; each fits in one environment string
    domains = {d for site in pool.sites for d in site["domains"]}
    assert [k for k, v in env.items() if domains & set(re.split("[,=]", v))] == [
        "SITEKIT_WARMUP_HOST"]
    assert max(len(line.encode()) for line in env_file.read_text().splitlines()) < 128 * 1024
    listed = json.loads(sites_file.read_text())
    assert [s["name"] for s in listed] == [s["name"] for s in pool.sites[:SITES]]
    assert sum(len(s["domains"]) for s in listed) == SITES * DOMAINS_PER_SITE
    # more than the kernel lets one environment string hold (MAX_ARG_STRLEN, 128 KiB)
    assert sites_file.stat().st_size > 128 * 1024


def test_a_sample_of_domains_each_answers_with_its_sites_brand(pool):
    checked = sample(pool.sites[:SITES])
    assert any(site["domains"][-1].startswith("*.") and host.startswith("w")
               for site, host in checked), "the sample has no name under a wildcard"
    for site, host in checked:
        status, headers, body = get(pool.socket, host)
        assert status == 200, (host, body[:300])
        assert headers["X-Sitekit-Site"] == site["name"], host
        assert headers["X-Sitekit-Pool"] == POOL
        assert BRAND_RE.findall(body) == [brand_name(site["name"])], host
        assert f"<title>{brand_name(site['name'])}</title>" in body, host
    status, _, body = get(pool.socket, checked[0][1], "/healthz")
    assert json.loads(body)["site_id"] == 1001


@pytest.mark.parametrize("host", ["unknown.example.net", "site0001.example", "127.0.0.1"])
def test_an_unknown_host_gets_400(pool, host):
    status, headers, _ = get(pool.socket, host)
    assert status == 400
    assert "X-Sitekit-Site" not in headers


def test_the_master_reloads_in_place_under_load_onto_a_site_more(pool):
    added = pool.sites[SITES]
    new_host = added["domains"][0]
    pid = pool.service.pid
    assert pid_from(Path(pool.master["pidfile"])) == pid
    assert get(pool.socket, new_host)[0] == 400  # not (yet) one of the pool's sites
    # the deploy: the role renders the catalogue with one site more, the Sites table is synced
    master = pool.render(pool.sites, "render-more")
    assert master["sites"][-1] == added["name"]
    sites_file = json.loads(Path(master["sites_file"]).read_text())
    assert sites_file[-1]["name"] == added["name"]
    pool.sync(pool.sites, "sync-more")

    hosts = [host for _, host in sample(pool.sites[:SITES])]
    with Load(0, hosts, clients=4, connect=lambda host: UnixHTTPConnection(pool.socket, 60),
              timeout=60) as load:
        time.sleep(2.0)
        signalled = time.monotonic()
        os.kill(pid, signal.SIGHUP)
        deadline = signalled + 90
        while True:
            try:
                if get(pool.socket, new_host, "/healthz")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            assert pool.service.alive(), pool.service.log_tail(40)
            assert time.monotonic() < deadline, pool.service.log_tail(40)
            time.sleep(0.1)
        served = time.monotonic()
        time.sleep(2.0)
    figures = summary(load.samples)
    assert figures["failed"] == 0, figures
    before = [s for s in load.samples if s.start < signalled]
    after = [s for s in load.samples if s.start > served]
    assert before and after, figures
    # requests were in flight when the master was signalled: answered (by its old workers, or
    # queued on the socket until the new ones accepted them)
    assert [s for s in before if s.start + s.latency > signalled], figures
    # the same master, its sites read afresh from the file
    assert pool.service.alive() and pool.service.pid == pid
    assert pid_from(Path(pool.master["pidfile"])) == pid
    assert "graceful re-exec" in Path(pool.master["log_dir"], "error.log").read_text()
    status, headers, body = get(pool.socket, new_host)
    assert status == 200 and headers["X-Sitekit-Site"] == added["name"]
    assert BRAND_RE.findall(body) == [brand_name(added["name"])]
    for site, host in sample(pool.sites[:SITES])[:5]:
        assert get(pool.socket, host)[1]["X-Sitekit-Site"] == site["name"]
