"""The multi-host rehearsal: lb, web1, web2 and db as systemd-nspawn containers.

Runs where the machine allows it (root, systemd-nspawn, overlayfs, bridges); elsewhere every
test is skipped with the reason printed, and fails in CI (``CI=true``), whose machine can. The
hosts and their addresses come from ``inventories/rehearsal/hosts.yml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import testinfra
import yaml

from tests.harness import unavailable
from tests.rehearsal import testbed as tb

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "rehearsal"
BIN = Path(sys.executable).parent


def rehearsal_hosts() -> dict[str, str]:
    data = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    hosts: dict[str, str] = {}
    for group in ("db", "web", "lb"):  # boot order: the database first
        for name, hostvars in data["all"]["children"][group]["hosts"].items():
            hosts[name] = hostvars["ansible_host"]
    return hosts


def rehearsal_group(group: str) -> list[str]:
    """The hosts of an inventory group (e.g. storage, whose hosts are also in another group)."""
    data = yaml.safe_load((INVENTORY / "hosts.yml").read_text())
    return list((data["all"]["children"].get(group) or {}).get("hosts") or {})


def rehearsal_sites() -> list[dict]:
    data = yaml.safe_load((INVENTORY / "group_vars" / "all" / "sites.yml").read_text())
    return [s for s in data["sitekit_sites"] if s.get("state", "present") == "present"]


@dataclass
class Converge:
    returncode: int
    output: str
    seconds: float

    def changed_tasks(self) -> list[str]:
        """``TASK name: host`` for every task that reported a change."""
        found, task = [], ""
        for line in self.output.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed: ["):
                found.append(f"{task}: {line.split('[', 1)[1].split(']', 1)[0]}")
        return found

    def recap(self) -> dict[str, dict[str, int]]:
        found = {}
        for line in self.output.splitlines():
            parts = line.split(":", 1)
            if len(parts) == 2 and "ok=" in parts[1] and "changed=" in parts[1]:
                counts = dict(item.split("=") for item in parts[1].split())
                found[parts[0].strip()] = {k: int(v) for k, v in counts.items()}
        return found


@dataclass
class Rehearsal:
    bed: tb.Testbed
    connection_vars: Path
    ssh_config: Path
    first: Converge | None = None
    hosts: dict = field(default_factory=dict)

    def converge(self, *extra: str) -> Converge:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1")
        cmd = [str(BIN / "ansible-playbook"), "-i", str(INVENTORY), "-i", str(self.connection_vars),
               "--vault-password-file", str(INVENTORY / "vault-password.txt"),
               str(ROOT / "ansible" / "site.yml"), *extra]
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1800, check=False)
        return Converge(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start)

    def host(self, name: str):
        """A testinfra host over SSH."""
        if name not in self.hosts:
            self.hosts[name] = testinfra.get_host(f"ssh://{name}", ssh_config=str(self.ssh_config))
        return self.hosts[name]


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory):
    ok, reason = tb.can_run()
    if not ok:
        unavailable(f"multi-host rehearsal not possible on this machine: {reason}")
    tb.ensure_host_packages()
    work = tmp_path_factory.mktemp("rehearsal")
    bed = tb.Testbed(work / "bed", rehearsal_hosts())
    started = time.monotonic()
    tb.build_base_image(bed.cache_dir)
    bed.up()
    print(f"\nrehearsal: image ready and {len(bed.hosts)} hosts booted in "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    try:
        ssh_config = work / "ssh_config"
        ssh_config.write_text("".join(
            f"Host {name}\n  HostName {ip}\n  User root\n  IdentityFile {bed.key_path}\n"
            "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n"
            for name, ip in bed.hosts.items()))
        run = Rehearsal(bed, bed.write_connection_vars(work / "connection.yml"), ssh_config)
        run.first = run.converge()
        print(f"rehearsal: first converge {run.first.seconds:.0f} s", file=sys.stderr)
        assert run.first.returncode == 0, run.first.output[-8000:]
        yield run
    finally:
        bed.down()
