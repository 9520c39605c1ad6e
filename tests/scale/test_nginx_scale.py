"""A catalogue of 1,000 sites with 5,000 domains validates, renders and passes ``nginx -t``."""

from __future__ import annotations

import re

import pytest

from bench.common import free_port
from bench.nginx_render import (
    check_render,
    nginx_test,
    render_jinja2,
    render_playbook,
    stop_daemon_nginx,
)
from sitekit.catalogue import validate
from tests.scale.conftest import DOMAINS_PER_SITE, SITES


def test_the_catalogue_validates(big_catalogue):
    result = validate(big_catalogue.raw, env="scale", project_root=big_catalogue.project)
    assert result.ok, result.problems[:10]
    assert len(result.sites) == SITES
    domains = [d for s in result.sites for d in s.domains]
    assert len(domains) == SITES * DOMAINS_PER_SITE == 5000
    assert len(set(domains)) == len(domains)
    # realistic names: several labels, lengths of real domains
    assert all(d.count(".") >= 1 for d in domains)
    assert max(len(d) for d in domains) > 30


@pytest.mark.parametrize("tls", ["off", "self-signed"])
def test_the_configuration_renders_and_passes_nginx_t(tmp_path, big_catalogue, nginx_binary,
                                                      tls):
    config, _, seconds = render_jinja2(
        "scale", tmp_path / "stack", free_port(),
        {"nginx_binary": nginx_binary, "sitekit_tls": tls, "sitekit_tls_port": free_port()},
        big_catalogue.sites,
    )
    # the main configuration, the default server and one server block per site
    assert len(config.files) == SITES + 2
    blocks = [p for p in config.files if p.parent.name == "sites" and p.name != "00-default.conf"]
    assert len(blocks) == SITES
    names = {n for p in blocks for n in
             re.search(r"server_name ([^;]+);", config.files[p])[1].split()}
    assert names == {d for s in big_catalogue.sites for d in s["domains"]}
    if tls != "off":  # an http block (redirect) and an https block per site, with its certificate
        assert all(config.files[p].count("server {") == 2 for p in blocks)
        assert all((tmp_path / "stack" / "etc" / "tls" / s["name"] / "fullchain.pem").is_file()
                   for s in big_catalogue.sites)
        assert "ssl_reject_handshake on;" in config.files[
            next(p for p in config.files if p.name == "00-default.conf")]

    # as the role's handler runs it: nginx_cmd + -t
    result = nginx_test(config, runs=1)
    print(f"\n{SITES} sites, TLS {tls}: rendered (certificates included) in {seconds:.2f} s, "
          f"nginx -t in {result['median_s']:.2f} s")
    assert result["ok"], result["stderr"]
    assert result["messages"] == [], result["stderr"]
    assert result["stderr"].splitlines() == [
        f"nginx: the configuration file {config.conf} syntax is ok",
        f"nginx: configuration file {config.conf} test is successful",
    ]


@pytest.mark.parametrize("tls", ["off", "self-signed"])
def test_the_rendering_is_the_roles(tmp_path, big_catalogue, nginx_binary, tls):
    """What the tests and the benchmark render is what the role writes (1 site, same root)."""
    port = free_port()
    settings = {"nginx_binary": nginx_binary, "sitekit_tls": tls, "sitekit_tls_port": free_port()}
    daemons = []
    try:
        by_role, _ = render_playbook(
            "one", tmp_path / "stack", port, settings, big_catalogue.raw[:1],
            big_catalogue.sites[:1], big_catalogue.project, tmp_path, daemons)
    finally:
        for cmd, pidfile in daemons:
            stop_daemon_nginx(cmd, pidfile)
    by_jinja2, _, _ = render_jinja2(
        "one", tmp_path / "stack", port, settings, big_catalogue.sites[:1])
    assert check_render(by_role.files, by_jinja2.files) == []
