"""A catalogue of 1,000 sites with 5,000 domains validates, and the nginx role's configuration
for it passes ``nginx -t``."""

from __future__ import annotations

import re

import pytest

from sitekit.catalogue import validate
from tests.harness import nginx_test
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
def test_the_configuration_renders_and_passes_nginx_t(rendered, big_catalogue, tls):
    configs, seconds = rendered
    config = configs[f"scale {tls}"]
    files = config.files
    # the main configuration, the default server and one server block per site
    assert len(files) == SITES + 2
    blocks = config.blocks
    assert len(blocks) == SITES
    names = {n for p in blocks for n in re.search(r"server_name ([^;]+);", files[p])[1].split()}
    assert names == {d for s in big_catalogue.sites for d in s["domains"]}
    if tls != "off":  # an http block (redirect) and an https block per site, with its certificate
        assert all(files[p].count("server {") == 2 for p in blocks)
        assert all((config.root / "etc" / "tls" / s["name"] / "fullchain.pem").is_file()
                   for s in big_catalogue.sites)
        assert "ssl_reject_handshake on;" in files[
            next(p for p in files if p.name == "00-default.conf")]

    # as the role's handler runs it: nginx_cmd + -t
    result = nginx_test(config, runs=1)
    print(f"\n{SITES} sites, TLS {tls}: the nginx role's run {seconds[f'scale {tls}']:.1f} s "
          f"(certificates included), nginx -t in {result['median_s']:.2f} s")
    assert result["ok"], result["stderr"]
    assert result["messages"] == [], result["stderr"]
    assert result["stderr"].splitlines() == [
        f"nginx: the configuration file {config.conf} syntax is ok",
        f"nginx: configuration file {config.conf} test is successful",
    ]
