"""A throwaway local stack for the end-to-end tests.

The stack is deployed by the real playbook with the local inventory into a temporary root on a
free port, so it never touches a developer's own ``make up`` stack, and is stopped with
``make down`` at the end.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.stack import BIN, ROOT, deployed_stack
from tests.harness import local_catalogue


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with deployed_stack(tmp_path_factory.mktemp("stack")) as deployed:
        deployed.built_id = subprocess.run(
            [str(BIN / "sitekit"), "release", "id"], cwd=ROOT, capture_output=True, text=True,
            check=True).stdout.strip()
        yield deployed


@pytest.fixture(scope="session")
def sites():
    return local_catalogue(present=True)
