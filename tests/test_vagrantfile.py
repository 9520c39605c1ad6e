"""The Vagrantfile is valid and takes its machines from the vagrant inventory."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_vagrantfile_validates():
    vagrant = shutil.which("vagrant")
    if vagrant is None:
        pytest.fail("vagrant is not installed (apt-get install --no-install-recommends vagrant)")
    proc = subprocess.run([vagrant, "validate", "--ignore-provider"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout
    inventory = yaml.safe_load((ROOT / "inventories" / "vagrant" / "hosts.yml").read_text())
    groups = inventory["all"]["children"]
    names = {n for g in groups.values() for n in g["hosts"]}
    for name in names:  # every inventory host is a machine of the Vagrantfile
        assert f"==> {name}:" in proc.stdout
    assert proc.stdout.count("==> ") == len(names)  # db1, also in storage, is one machine
    assert not names & set(groups), "a host named like a group (Ansible warns)"
