"""Fixtures of the scale tests: generated catalogues of 1,000 sites and 5,000 domains (dedicated
masters) and of 10,000 sites and 50,000 domains (10 pools and a few dedicated masters), and the
nginx configurations the real nginx role writes for them and for the local catalogue.

The role runs once per session through ``ansible-playbook``: ``ansible/site.yml``'s preflight and
its nginx plays (``tests/harness.py``), on local hosts each with its own throwaway root, in two
runs side by side: the web hosts (the 1,000 sites without and with TLS, and the local catalogue
as a web host alone, terminating TLS, and behind load balancers), and the load balancers. The
role's own rendering of 1,000 server blocks takes about two minutes: these tests take that. The
web hosts' run has a soft limit of 1,024 open files, so the role starts their nginx from there.
"""

from __future__ import annotations

import resource
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from sitekit.catalogue import validate
from tests.harness import (
    REPO,
    free_port,
    lay_out,
    link_settings,
    local_catalogue,
    make_catalogue,
    pool_catalogue,
    render_nginx,
    stop_nginx,
    write_settings,
)

SITES = 1000
DOMAINS_PER_SITE = 5
SEED = 421
SOFT_LIMIT = 1024  # systemd's default soft limit for services, and a login shell's usual one
HUGE_SITES, HUGE_POOLS, HUGE_DEDICATED = 10_000, 10, 10

# The shapes a host's nginx takes for the local catalogue: web hosts, then load balancers.
WEB_SHAPES = {
    "web": {},
    "web with TLS": {"sitekit_tls": "self-signed"},
    "web behind lbs": {"nginx_trusted_proxies": ["10.231.7.10", "10.231.7.11"]},
}
LB_SHAPES = {
    "lb": {"nginx_upstreams": ["10.231.7.21", "10.231.7.22"]},
    "lb with TLS": {"nginx_upstreams": ["10.231.7.21", "10.231.7.22"],
                    "sitekit_tls": "self-signed"},
}


@dataclass
class Catalogue:
    raw: list[dict]  # as written in a sites.yml
    sites: list[dict]  # validated and normalised, as the preflight hands them to the roles
    project: Path  # a codebase with one settings module per site (and the local ones)
    pools: dict | None = None  # sitekit_pools


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (make system-deps installs it)")
    return nginx


@pytest.fixture(scope="session")
def big_catalogue(tmp_path_factory) -> Catalogue:
    """1,000 sites with 5 domains each, validated against a codebase that has their settings."""
    project = tmp_path_factory.mktemp("codebase")
    raw = make_catalogue(SITES, DOMAINS_PER_SITE, SEED)
    link_settings(write_settings(project / "settings", raw))
    result = validate(raw, env="scale", project_root=project)
    assert result.ok, result.problems[:10]
    return Catalogue(raw, [site.as_dict() for site in result.sites], project)


@pytest.fixture(scope="session")
def huge_catalogue(big_catalogue) -> Catalogue:
    """10,000 sites with 5 domains each (the first 1,000 are big_catalogue's), all but the first
    10 in 10 pools, validated against the same codebase, given their settings modules."""
    raw = make_catalogue(HUGE_SITES, DOMAINS_PER_SITE, SEED)
    pools = pool_catalogue(raw, HUGE_POOLS, dedicated=HUGE_DEDICATED)
    write_settings(big_catalogue.project / "settings", raw)
    result = validate(raw, env="scale", project_root=big_catalogue.project, pools=pools)
    assert result.ok, result.problems[:10]
    return Catalogue(raw, [site.as_dict() for site in result.sites], big_catalogue.project, pools)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, big_catalogue, huge_catalogue, nginx_binary):
    """Shape (``scale off``, ``scale self-signed``, or one of the local catalogue's) ->
    the NginxConfig the nginx role wrote and started, and each run's time."""
    work = tmp_path_factory.mktemp("nginx")

    def port(*taken: int) -> int:
        # never one with "443" in it: gixy takes any listen with those digits for https (and
        # would then ask a plain-http server block for TLS settings)
        while "443" in str(chosen := free_port(*taken)):
            taken = (*taken, chosen)
        return chosen

    def host(name: str, **variables) -> dict:
        root = work / name.replace(" ", "-") / "stack"
        public = port()
        return {"sitekit_root": str(root), "nginx_binary": nginx_binary, "sitekit_tls": "off",
                "sitekit_public_port": public, "sitekit_tls_port": port(public), **variables}

    web = {name: host(name, **shape) for name, shape in WEB_SHAPES.items()}
    web["scale off"] = host("scale off", sitekit_sites=big_catalogue.raw,
                            sitekit_nginx_logs="per-site")
    web["scale self-signed"] = host("scale self-signed", sitekit_sites=big_catalogue.raw,
                                    sitekit_tls="self-signed", sitekit_nginx_logs="per-site")
    web["10k"] = host("10k", sitekit_sites=huge_catalogue.raw, sitekit_pools=huge_catalogue.pools)
    lb = {name: host(name, **shape) for name, shape in LB_SHAPES.items()}
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    settings = big_catalogue.project / "settings"
    # Laid out first, with the local catalogue: the load balancers (site.yml lays out web hosts
    # only) and the 1,000 sites (the layout's loops over every master, each item skipped in
    # local mode, are slow; without them the layout does not depend on the catalogue).
    laid_out = {name: web[name] for name in ("scale off", "scale self-signed", "10k")} | lb
    try:
        run = lay_out(work / "layout", laid_out)
        assert run.ok, run.output[-6000:]
        for variables in laid_out.values():
            variables["sitekit_laid_out"] = True
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(render_nginx, work / "web", web, settings=settings,
                                nofile=(SOFT_LIMIT, hard)),
                    pool.submit(render_nginx, work / "lb", lb, lb=True, settings=settings)]
            configs, seconds = {}, {}
            for future, hosts in zip(runs, (web, lb), strict=True):
                found, run = future.result()
                assert run.ok, run.output[-6000:]
                configs.update(found)
                seconds.update(dict.fromkeys(hosts, run.seconds))
        assert set(configs) == set(web) | set(lb)
        yield configs, seconds
    finally:
        stop_nginx(web)
        stop_nginx(lb)


@pytest.fixture(scope="session")
def local_sites() -> list[dict]:
    """The present sites of the local catalogue."""
    result = validate(local_catalogue(), env="local", project_root=REPO)
    return [s.as_dict() for s in result.sites if s.state == "present"]
