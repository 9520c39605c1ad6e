"""A throwaway local stack for the end-to-end tests.

The stack is deployed by the real playbook with the local inventory into a temporary root on a
free port, so it never touches a developer's own ``make up`` stack, and is stopped with
``make down`` at the end.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.stack import BIN, ROOT, Stack, catalogue, free_port


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    port = free_port()
    tls_port = next(p for p in iter(free_port, None) if p != port)
    deployed = Stack(root, port, tls_port)
    deployed.built_id = subprocess.run(
        [str(BIN / "sitekit"), "release", "id"], cwd=ROOT, capture_output=True, text=True,
        check=True).stdout.strip()
    first = deployed.playbook()
    deployed.first_run = first
    try:
        assert first.returncode == 0, first.output[-6000:]
        yield deployed
    finally:
        subprocess.run(["make", "-s", "down", f"STACK={root}", f"VENV={BIN.parent}"],
                       cwd=ROOT, capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="session")
def sites():
    return [s for s in catalogue() if s.get("state", "present") == "present"]
