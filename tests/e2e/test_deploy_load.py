"""bench/deploy_load.py as CI runs it: a full deploy, and a site moving between a pool and its
own master, under load; the figures printed.

The script deploys its own throwaway stack, then a new release (a migration, a new domain, every
master re-exec'd, nginx reloaded) while a bounded load runs against every domain; it exits 1 if
a request failed or a check did not hold. The figures (requests sent and failed, p99 before and
during the deploy) are printed in the test log, not asserted as timings.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e


def test_a_full_deploy_under_load_fails_no_request(capsys):
    script = ROOT / "bench" / "deploy_load.py"
    proc = subprocess.run([sys.executable, str(script), "--before", "10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800, check=False)
    with capsys.disabled():
        print("\n" + proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "failed requests in all: 0 (target: 0)" in proc.stdout
    assert "FAIL" not in proc.stdout


def test_moving_a_site_between_a_pool_and_its_own_master_fails_no_request(capsys):
    """``--move``: one catalogue line and one deploy each way, under the same load."""
    script = ROOT / "bench" / "deploy_load.py"
    proc = subprocess.run([sys.executable, str(script), "--move", "ember", "--before", "5"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    with capsys.disabled():
        print("\n" + proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "failed requests in all: 0 (target: 0)" in proc.stdout
    assert "ok   ember served by its own master" in proc.stdout
    assert "ok   ember's own master stopped" in proc.stdout
    assert "FAIL" not in proc.stdout
