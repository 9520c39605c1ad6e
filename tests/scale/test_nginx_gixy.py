"""The rendered nginx configurations pass gixy-ng, an nginx security analyser, with no finding.

Rendered through the nginx role's real templates and defaults (bench/nginx_render.py) for the
local catalogue, in each shape a host can take: a web host alone (plain HTTP, and terminating
TLS), a web host behind load balancers (it trusts their X-Forwarded-* headers), and a load
balancer (plain HTTP, and terminating TLS).
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


@pytest.mark.parametrize("shape", SHAPES)
def test_gixy_finds_nothing(tmp_path, local_sites, nginx_binary, shape):
    settings = {"nginx_binary": nginx_binary, "sitekit_tls_port": free_port(), **SHAPES[shape]}
    config, _, _ = render_jinja2(shape, tmp_path / "stack", free_port(), settings, local_sites)
    blocks = [p for p in config.files if p.parent.name == "sites" and p.name != "00-default.conf"]
    assert len(blocks) == len(local_sites)  # gixy reads every server block through the include
    proc = subprocess.run([str(GIXY), "--format", "json", str(config.conf)],
                          capture_output=True, text=True, timeout=300, check=False)
    findings = json.loads(proc.stdout or "[]")
    report = "\n".join(
        f"[{f.get('severity')}] {f.get('plugin')}: {f.get('summary')} ({f.get('reason')})\n"
        f"{f.get('config', '')}"
        for f in findings
    )
    assert findings == [], f"gixy on the {shape} configuration:\n{report}"
    assert proc.returncode == 0, proc.stderr
