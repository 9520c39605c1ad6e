"""bench/deploy_load.py as CI runs it: a full deploy under load, its figures printed.

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
