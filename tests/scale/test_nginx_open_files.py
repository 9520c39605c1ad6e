"""nginx starts, serves and reloads 1,000 sites under the usual soft limit of 1,024 open files.

With per-site logs (this host's sitekit_nginx_logs: per-site; with auto, 1,000 sites would log
to the shared access log) every site has its own access and error log, and nginx's master opens
all of them when it loads its configuration: 2,000 files for 1,000 sites. The role starts,
tests and reloads nginx with ``nginx_cmd``, which runs it through prlimit with
``nginx_rlimit_nofile``; here the role runs (and starts nginx) from a process whose soft limit
is 1,024 (as a login shell's or a service's), these tests reload with that very command from
there, and show that nginx without it fails there. The role's own refusal of a catalogue that
needs more than the hard limit allows is checked through ``ansible-playbook``.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.harness import (
    alive,
    children,
    echo_backend,
    http_request,
    limit_open_files,
    nofile_limits,
    pid_from,
    render_nginx,
)
from tests.scale.conftest import SEED, SITES, SOFT_LIMIT

SAMPLE = 25  # sites asked for by Host


def run(argv: list[str], limit: int = SOFT_LIMIT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL, preexec_fn=limit_open_files(limit))


@pytest.fixture(scope="module")
def asked(big_catalogue) -> dict[str, str]:
    """The sites asked for by Host: site name -> one of its domains."""
    rng = random.Random(SEED)
    sample = rng.sample(big_catalogue.sites, SAMPLE)
    return {site["name"]: rng.choice(site["domains"]) for site in sample}


@pytest.fixture(scope="module")
def stack(rendered, asked):
    """The 1,000 sites as the role wrote and started them; an echo backend listening where
    each asked site's server block proxies to (its master's socket, as the model resolved it)."""
    config = rendered[0]["scale off"]
    servers = []
    try:
        for name in asked:
            servers.append(echo_backend(config.upstream(name), "ok"))
        yield config, config.variables
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_the_limit_covers_every_sites_logs(stack):
    config, variables = stack
    # 1,000 sites: 2 logs each and a margin of 128; the file cache (1,000); then 2 per worker
    # connection (1,024), capped at the hard limit
    assert SITES == 1000 and variables["nginx_worker_connections"] == 1024
    assert variables["nginx_open_files"] == 2128
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert int(variables["nginx_rlimit_nofile"]) == min(5176, hard)
    assert f"worker_rlimit_nofile {variables['nginx_rlimit_nofile']};" in \
        config.conf.read_text()
    # the command the role starts, tests and reloads nginx with
    assert config.cmd[:3] == ["prlimit", f"--nofile={variables['nginx_rlimit_nofile']}:{hard}",
                              "--"]


def test_without_the_raised_limit_nginx_cannot_start(stack, tmp_path):
    """The same configuration started by nginx alone, from a 1,024 soft limit: it fails.
    (Its error log apart: the running nginx's stays as the role and the test below leave it.)"""
    config, _ = stack
    plain = config.plain_cmd
    assert Path(plain[0]).name == "nginx"
    plain[plain.index("-e") + 1] = str(tmp_path / "error.log")
    running = pid_from(config.pidfile)
    started = run(plain)
    if started.returncode == 0 and pid_from(config.pidfile) != running:  # it must not
        os.kill(pid_from(config.pidfile), signal.SIGQUIT)
    assert started.returncode != 0
    assert "Too many open files" in started.stderr, started.stderr
    tested = run([*plain, "-t"])
    assert tested.returncode != 0 and "Too many open files" in tested.stderr


def test_nginx_starts_serves_and_reloads_1000_sites_from_a_1024_soft_limit(stack, asked):
    config, variables = stack
    limit = int(variables["nginx_rlimit_nofile"])

    # started by the role's "Start nginx" task (nginx_cmd), the playbook run from that limit
    master = pid_from(config.pidfile)
    assert alive(master)
    assert nofile_limits(master)[0] == limit
    assert len(os.listdir(f"/proc/{master}/fd")) > 2 * SITES  # every site's logs, well over 1,024
    workers = wait_for_workers(master)
    assert all(nofile_limits(w)[0] == limit for w in workers)  # worker_rlimit_nofile

    for host in asked.values():
        assert http_request(config.port, host) == (200, f"ok {host}\n".encode())
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        http_request(config.port, "unknown.example.invalid")  # the default server: 444

    # reloaded as the role's handler does (nginx_cmd -s reload), from the same soft limit:
    # the command loads the configuration itself, then signals the master, which keeps its pid
    # and its limit and starts new workers
    reloaded = run([*config.cmd, "-s", "reload"])
    assert reloaded.returncode == 0, reloaded.stderr
    new_workers = wait_for_workers(master, replacing=workers)
    assert all(nofile_limits(w)[0] == limit for w in new_workers)
    for host in asked.values():
        assert http_request(config.port, host) == (200, f"ok {host}\n".encode())
    errors = (config.log_dir / "error.log").read_text()
    assert "Too many open files" not in errors and "[emerg]" not in errors, errors[-2000:]

    # stopped as `make down` does (SIGQUIT to the master): every request is in its site's log
    os.kill(master, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while alive(master) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(master)
    for name, host in asked.items():
        lines = (config.log_dir / f"{name}.access.log").read_text().splitlines()
        assert len([ln for ln in lines if f" {host} " in ln]) == 2, (name, lines)


def wait_for_workers(master: int, replacing: list[int] = (), timeout: float = 30) -> list[int]:
    """The master's workers once there are some and none of *replacing* is among them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [p for p in children(master) if alive(p)]
        if workers and not set(workers) & set(replacing):
            return workers
        time.sleep(0.1)
    raise AssertionError(f"nginx {master}: workers {children(master)} (before: {replacing})")


def test_the_role_refuses_more_sites_than_the_hard_limit_allows(tmp_path, big_catalogue,
                                                                nginx_binary):
    """In local mode nginx runs as the deploying user and cannot go above its hard limit: the
    role stops before rendering anything, naming the numbers. (100 sites under a hard limit of
    256, as 1,000 under 1,024 would be: the sitekit role's loops make a large catalogue slow.)"""
    sites, hard = 100, 256
    root = tmp_path / "stack"
    hosts = {"refused": {"sitekit_root": str(root), "nginx_binary": nginx_binary,
                         "sitekit_tls": "off", "sitekit_sites": big_catalogue.raw[:sites]}}
    _, proc = render_nginx(tmp_path, hosts, settings=big_catalogue.project / "settings",
                           nofile=(hard, hard))
    output = proc.output
    assert proc.returncode != 0, output[-3000:]
    message = " ".join(output.split())
    assert f"nginx needs {2 * sites + 128} open files for {sites} sites" in message, \
        output[-3000:]
    assert f"hard limit of open files is {hard}: it cannot go above it" in message
    assert "TASK [nginx : Check that nginx can open every site's logs]" in output
    assert not re.search(r"TASK \[nginx : (Render|Stage)", output)
    assert not list((root / "etc" / "nginx" / "sites").glob("*.conf"))
