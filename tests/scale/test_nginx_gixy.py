"""The rendered nginx configurations pass gixy-ng, an nginx security analyser, with no finding.

Rendered through the nginx role's real templates and defaults (bench/nginx_render.py) for the
local catalogue, in each shape a host can take: a web host alone (plain HTTP, and terminating
TLS), a web host behind load balancers (it trusts their X-Forwarded-* headers), and a load
balancer (plain HTTP, and terminating TLS). Re-run after a template change:
`pytest tests/scale -k gixy`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.common import REPO, free_port
from bench.nginx_render import render_jinja2, validate

GIXY = Path(sys.executable).parent / "gixy"

SHAPES = {
    "web": {},
    "web with TLS": {"sitekit_tls": "self-signed"},
    "web behind lbs": {"nginx_trusted_proxies": ["10.231.7.10", "10.231.7.11"]},
    "lb": {"nginx_flavour": "lb", "nginx_upstreams": ["10.231.7.21", "10.231.7.22"]},
    "lb with TLS": {"nginx_flavour": "lb", "nginx_upstreams": ["10.231.7.21", "10.231.7.22"],
                    "sitekit_tls": "self-signed"},
}


@pytest.fixture(scope="module")
def local_sites():
    raw = yaml.safe_load(
        (REPO / "inventories" / "local" / "group_vars" / "all" / "sites.yml").read_text()
    )["sitekit_sites"]
    sites, _ = validate(raw, REPO, repeat=1)
    return sites


def render(shape, tmp_path, sites, nginx_binary):
    """The main configuration file and the server block of each site, as the role renders them."""
    settings = {"nginx_binary": nginx_binary, "sitekit_tls_port": free_port(), **SHAPES[shape]}
    config, _, _ = render_jinja2(shape, tmp_path / "stack", free_port(), settings, sites)
    blocks = [p for p in config.files if p.parent.name == "sites" and p.name != "00-default.conf"]
    assert len(blocks) == len(sites)  # gixy reads every server block through the include
    return config.conf, blocks


def gixy(conf: Path) -> tuple[list[dict], str, subprocess.CompletedProcess]:
    """gixy's findings on *conf* (and every file it includes), and a readable report of them."""
    proc = subprocess.run([str(GIXY), "--format", "json", str(conf)],
                          capture_output=True, text=True, timeout=300, check=False)
    findings = json.loads(proc.stdout or "[]")
    report = "\n".join(
        f"[{f.get('severity')}] {f.get('plugin')}: {f.get('summary')} ({f.get('reason')})\n"
        f"{f.get('file', '')}:{f.get('line', '')}{f.get('config', '')}"
        for f in findings
    )
    return findings, report, proc


@pytest.mark.parametrize("shape", SHAPES)
def test_gixy_finds_nothing(tmp_path, local_sites, nginx_binary, shape):
    conf, _ = render(shape, tmp_path, local_sites, nginx_binary)
    findings, report, proc = gixy(conf)
    assert findings == [], f"gixy on the {shape} configuration:\n{report}"
    assert proc.returncode == 0, proc.stderr


def test_gixy_reads_every_site_block(tmp_path, local_sites, nginx_binary):
    """A flaw put in any one site's server block is reported: the clean result above covers
    every block, not only the main file."""
    conf, blocks = render("web", tmp_path, local_sites, nginx_binary)
    clean = {p: p.read_text() for p in blocks}
    for block in blocks:
        # the client's Host header passed upstream as sent (gixy: host_spoofing)
        block.write_text(clean[block].replace(
            "location / {", "location / {\n        proxy_set_header Host $http_host;", 1))
        findings, report, proc = gixy(conf)
        block.write_text(clean[block])
        assert [(f["plugin"], f["file"]) for f in findings] == [("host_spoofing", str(block))], (
            report)
        assert proc.returncode != 0
