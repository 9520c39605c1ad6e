"""The nginx configurations the nginx role writes pass gixy-ng, an nginx security analyser, with
no finding.

Written by the real role (tests/scale/conftest.py) for the local catalogue, in each shape a host
can take: a web host alone (plain HTTP, and terminating TLS), a web host behind load balancers
(it trusts their X-Forwarded-* headers), and a load balancer (plain HTTP, and terminating TLS).
Re-run after a template change: `pytest tests/scale -k gixy`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scale.conftest import LB_SHAPES, WEB_SHAPES

GIXY = Path(sys.executable).parent / "gixy"


def render(shape, rendered, sites):
    """The main configuration file and the server block of each site, as the role wrote them."""
    config = rendered[0][shape]
    assert len(config.blocks) == len(sites)  # gixy reads every server block through the include
    return config.conf, config.blocks


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


@pytest.mark.parametrize("shape", [*WEB_SHAPES, *LB_SHAPES])
def test_gixy_finds_nothing(rendered, local_sites, shape):
    conf, _ = render(shape, rendered, local_sites)
    findings, report, proc = gixy(conf)
    assert findings == [], f"gixy on the {shape} configuration:\n{report}"
    assert proc.returncode == 0, proc.stderr


def test_gixy_reads_every_site_block(rendered, local_sites):
    """A flaw put in any one site's server block is reported: the clean result above covers
    every block, not only the main file."""
    conf, blocks = render("web", rendered, local_sites)
    clean = {p: p.read_text() for p in blocks}
    for block in blocks:
        # the client's Host header passed upstream as sent (gixy: host_spoofing)
        block.write_text(clean[block].replace(
            "location / {", "location / {\n        proxy_set_header Host $http_host;", 1))
        try:
            findings, report, proc = gixy(conf)
        finally:
            block.write_text(clean[block])
        assert [(f["plugin"], f["file"]) for f in findings] == [("host_spoofing", str(block))], (
            report)
        assert proc.returncode != 0
