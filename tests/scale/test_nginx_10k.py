"""10,000 sites and 50,000 domains: the catalogue validates, the real nginx role renders it and
starts nginx from a soft limit of 1,024 open files, `nginx -t` passes there as the role runs it
and as nginx alone, and nginx serves, logs and reloads a sample of the sites by Host.

The catalogue is shaped as a SaaS host runs one: 10 pools of 999 sites and 10 dedicated sites.
With more than 256 present sites, nginx logs every site's requests in one access log, the site's
name first (``sitekit_nginx_logs: auto``), so what it needs of open files does not grow with the
catalogue; its sites proxy to one upstream per master.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sitekit import logs
from tests.harness import (
    alive,
    echo_backend,
    http_request,
    limit_open_files,
    nginx_test,
    nofile_limits,
    pid_from,
)
from tests.scale.conftest import (
    DOMAINS_PER_SITE,
    HUGE_DEDICATED,
    HUGE_POOLS,
    HUGE_SITES,
    SEED,
    SOFT_LIMIT,
)

SAMPLE = 40  # sites asked for by Host


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL, preexec_fn=limit_open_files(SOFT_LIMIT))


@pytest.fixture(scope="module")
def huge(rendered, huge_catalogue):
    """The role's configuration of the 10,000 sites, nginx as the role started it, the sites
    asked for by Host (name -> one of its domains), a backend on each of their masters' socket."""
    config = rendered[0]["10k"]
    rng = random.Random(SEED)
    # a dedicated site and sites of every pool among them
    asked_sites = huge_catalogue.sites[:1] + rng.sample(huge_catalogue.sites[1:], SAMPLE - 1)
    asked = {s["name"]: rng.choice(s["domains"]) for s in asked_sites}
    servers = {}
    try:
        for site in asked_sites:
            master = site["pool"] or site["name"]
            if master in servers:
                continue
            servers[master] = echo_backend(config.upstream(site["name"]), master)
        yield config, asked, {s["name"]: s["pool"] or s["name"] for s in asked_sites}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()


def test_the_catalogue_validates_with_50000_domains(huge_catalogue):
    sites = huge_catalogue.sites
    domains = [d for s in sites for d in s["domains"]]
    assert len(sites) == HUGE_SITES and len(domains) == HUGE_SITES * DOMAINS_PER_SITE == 50_000
    assert len(set(domains)) == len(domains)
    pooled = [s for s in sites if s["pool"]]
    assert len(pooled) == HUGE_SITES - HUGE_DEDICATED
    assert len({s["pool"] for s in pooled}) == HUGE_POOLS


def test_the_role_renders_one_block_per_site_and_one_upstream_per_master(huge, huge_catalogue):
    config, _, _ = huge
    blocks = config.blocks
    assert len(blocks) == HUGE_SITES
    main = config.conf.read_text()
    # 10 pools and 10 dedicated masters: 20 upstreams, whatever the number of sites
    assert len(re.findall(r"^\s*upstream \w+ \{", main, re.M)) == HUGE_POOLS + HUGE_DEDICATED
    names = set()
    for path in blocks:
        names.update(re.search(r"server_name ([^;]+);", path.read_text())[1].split())
    assert names == {d for s in huge_catalogue.sites for d in s["domains"]}
    # auto: more than 256 sites log to one shared access log, not a file per site
    variables = config.variables
    assert variables["nginx_open_files"] == 128
    assert ".access.log" not in blocks[0].read_text()


def test_nginx_t_passes_from_a_1024_soft_limit_as_the_role_runs_it_and_alone(huge):
    config, _, _ = huge
    for plain in (False, True):
        result = nginx_test(config, nofile=SOFT_LIMIT, plain=plain)
        print(f"\n{HUGE_SITES} sites, nginx -t {'alone' if plain else 'as the role runs it'} "
              f"from a soft limit of {SOFT_LIMIT}: {result['median_s']:.2f} s")
        assert result["ok"], result["stderr"]
        assert result["messages"] == [], result["stderr"]


def test_nginx_serves_logs_and_reloads_the_sites_by_host(huge):
    config, asked, masters = huge
    master = pid_from(config.pidfile)
    assert alive(master)  # started by the role, from a soft limit of 1,024
    assert nofile_limits(master)[0] == int(config.variables["nginx_rlimit_nofile"])
    # a handful of files, not two per site
    assert len(os.listdir(f"/proc/{master}/fd")) < 64

    def ask(tag: str) -> None:
        for name, host in asked.items():
            assert http_request(config.port, host, f"/{tag}") == (
                200, f"{masters[name]} {host}\n".encode()), (name, host)

    ask("first")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        http_request(config.port, "unknown.example.invalid")  # the default server: 444
    reloaded = run([*config.cmd, "-s", "reload"])  # as an operator reloads it
    assert reloaded.returncode == 0, reloaded.stderr
    ask("after-reload")

    # each request is in the shared access log under its own site's name, and `sitekit logs`
    # finds it there for that site only
    lines = wait_for_lines(config.log_dir / "access.log", 2 * len(asked))
    for name, host in asked.items():
        mine = [ln for ln in lines if f" {host} " in ln]
        assert len(mine) == 2 and all(ln.startswith(f"{name} ") for ln in mine), (name, mine)
    name, other = list(asked)[:2]
    _, shell = logs.command({"name": name, "domains": []}, "shared", str(config.log_dir), 10,
                            False, False)
    shown = subprocess.run(["sh", "-c", shell], capture_output=True, text=True, check=True)
    assert f" {asked[name]} " in shown.stdout and f" {asked[other]} " not in shown.stdout

    errors = (config.log_dir / "error.log").read_text()
    assert "[emerg]" not in errors and "Too many open files" not in errors, errors[-2000:]


def test_nginx_alone_starts_and_reloads_from_a_1024_soft_limit(huge):
    """Without prlimit (nginx_cmd's), as a service with systemd's default limit would."""
    config, asked, masters = huge
    stop(pid_from(config.pidfile))
    plain = config.plain_cmd
    started = run(plain)
    assert started.returncode == 0, started.stderr
    master = pid_from(config.pidfile)
    try:
        assert nofile_limits(master)[0] == SOFT_LIMIT
        name, host = next(iter(asked.items()))
        assert http_request(config.port, host) == (200, f"{masters[name]} {host}\n".encode())
        reloaded = run([*plain, "-s", "reload"])
        assert reloaded.returncode == 0, reloaded.stderr
        deadline = time.monotonic() + 30
        while http_request(config.port, host)[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert http_request(config.port, host) == (200, f"{masters[name]} {host}\n".encode())
    finally:
        stop(master)


def stop(pid: int | None) -> None:
    """SIGQUIT, as `make down` stops nginx, and wait for the master to exit."""
    if pid is None:
        return
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def wait_for_lines(path: Path, count: int, timeout: float = 15.0) -> list[str]:
    """The log's lines once it has at least *count* (a line is written after its response)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)
