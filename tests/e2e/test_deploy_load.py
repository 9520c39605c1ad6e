"""bench/deploy_load.py as CI runs it: a full deploy under load, then a site moving between a
pool and its own master under the same load, on one throwaway stack; the figures printed.

The script deploys its own throwaway stack, then a new release (a migration, a new domain, every
master re-exec'd, nginx reloaded) while a bounded load runs against every domain, then moves a
site out of its pool and back (one catalogue line and one deploy each way); it exits 1 if a
request failed or a check did not hold. The figures (requests sent and failed, p99 before and
during the deploys) are printed in the test log, not asserted as timings.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e


def test_a_full_deploy_then_a_site_moving_out_of_its_pool_and_back_fail_no_request(capsys):
    script = ROOT / "bench" / "deploy_load.py"
    proc = subprocess.run([sys.executable, str(script), "--move", "ember", "--before", "10"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False)
    with capsys.disabled():
        print("\n" + proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "failed requests in all: 0 (target: 0)" in proc.stdout
    assert "FAIL" not in proc.stdout
    # every check of both parts was made, and held
    for check in ("every 2 s of the deploy had answered requests",
                  "every domain answered from the old release and the new one during the deploy",
                  "every domain answers from the new release",
                  "masters reloaded in place (same pids)",
                  "the new domain deploy-load.harbor.localhost is served",
                  "ember starts in pool shared",
                  "ember served by its own master",
                  "ember served by pool shared again",
                  "ember's own master stopped",
                  "ember.localhost answered by the pool and by its own master (out of the pool)",
                  "pool master reloaded in place (out of the pool)",
                  "ember.localhost answered by the pool and by its own master (back)",
                  "pool master reloaded in place (back)",
                  "every domain answers 200 from its site at the end"):
        assert f"ok   {check}" in proc.stdout, check
