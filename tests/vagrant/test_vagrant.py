"""The testers' Vagrant environment, brought up for real with Vagrant's docker provider.

`vagrant up` boots lb1, web1, web2 and db1 as containers (systemd, sshd) and provisions them with
the real playbook through the inventory Vagrant writes; a second `vagrant provision` changes
nothing; every site answers through the lb by the Host lines `sitekit hosts vagrant` prints; and
`vagrant destroy -f` leaves no container, network or firewall rule behind.

Runs where docker can (root, dockerd, systemd in a container); skipped with the reason elsewhere,
and fails in CI (``CI=true``). ``make test-vagrant`` runs it alone.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.harness import unavailable
from tests.vagrant import image

pytestmark = pytest.mark.vagrant

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "inventories" / "vagrant"
BIN = Path(sys.executable).parent
PREFIX = "sitekit-vagrant-"


def inventory() -> dict:
    return yaml.safe_load((INVENTORY / "hosts.yml").read_text())["all"]["children"]


def addresses() -> dict[str, str]:
    return {name: own["sitekit_private_address"]
            for group in inventory().values() for name, own in group["hosts"].items() if own}


def sites() -> list[dict]:
    data = yaml.safe_load((INVENTORY / "group_vars" / "all" / "sites.yml").read_text())
    return [s for s in data["sitekit_sites"] if s.get("state", "present") == "present"]


def firewall() -> dict[str, str]:
    """The host's firewall and bridge filtering, as text to compare before and after."""
    found = {}
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"],
                 ["sysctl", "-n", "net.ipv4.ip_forward"]):
        if shutil.which(argv[0]):
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            lines = [line for line in proc.stdout.splitlines() if not line.startswith("#")]
            found[argv[0]] = "\n".join(lines)
    nf = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
    found["bridge-nf-call-iptables"] = nf.read_text().strip() if nf.exists() else "absent"
    return found


def docker_lines(env: dict[str, str], *argv: str) -> list[str]:
    proc = subprocess.run(["docker", *argv], env=env, capture_output=True, text=True,
                          check=True, timeout=60)
    return proc.stdout.split()


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float
    stdout: str = ""

    def recap(self) -> dict[str, dict[str, int]]:
        found = {}
        for line in self.output.splitlines():
            name, _, counts = line.partition(" : ")
            if "ok=" in counts and "changed=" in counts:
                found[name.strip()] = {k: int(v) for k, v in
                                       (item.split("=") for item in counts.split())}
        return found


@dataclass
class Environment:
    env: dict[str, str]
    up: Run
    before: dict[str, str]

    def vagrant(self, *argv: str, timeout: float = 1800) -> Run:
        start = time.monotonic()
        proc = subprocess.run(["vagrant", *argv], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        return Run(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - start,
                   proc.stdout)


def _vagrant_env(work: Path, docker_env: dict[str, str], tag: str) -> dict[str, str]:
    return dict(docker_env, VAGRANT_DOTFILE_PATH=str(work / ".vagrant"),
                VAGRANT_DEFAULT_PROVIDER="docker", SITEKIT_VAGRANT_IMAGE=tag,
                PATH=f"{BIN}:{docker_env.get('PATH', os.defpath)}", VAGRANT_NO_COLOR="1",
                ANSIBLE_NOCOLOR="1")


@pytest.fixture(scope="module")
def machines(tmp_path_factory):
    if sys.platform != "linux" or os.geteuid() != 0:
        unavailable("the Vagrant docker test needs root on Linux (it may run its own dockerd)")
    missing = [tool for tool in ("vagrant", "docker", "dockerd") if not shutil.which(tool)]
    if "docker" in missing or "vagrant" in missing or (
            "dockerd" in missing and not image.docker_answers()):
        unavailable(f"the Vagrant docker test needs {', '.join(missing)} "
                    "(apt-get install --no-install-recommends vagrant docker.io)")
    before = firewall()
    daemon = image.Dockerd()
    try:
        docker_env = daemon.start()
        started = time.monotonic()
        tag = image.build_image(docker_env)
        print(f"\nvagrant: image {tag} ready in {time.monotonic() - started:.0f} s",
              file=sys.stderr)
        work = tmp_path_factory.mktemp("vagrant")
        env = Environment(_vagrant_env(work, docker_env, tag), Run(0, "", 0), before)
        try:
            # one machine after the other: the last one's provisioner needs all four up
            env.up = env.vagrant("up", "--provider=docker", "--no-parallel")
            print(f"vagrant: up (4 machines, first provision) {env.up.seconds:.0f} s",
                  file=sys.stderr)
            assert env.up.returncode == 0, env.up.output[-8000:]
            yield env
        finally:
            down = env.vagrant("destroy", "-f", timeout=600)
            assert down.returncode == 0, down.output[-4000:]
            left = [c for c in docker_lines(docker_env, "ps", "-a", "--format", "{{.Names}}")
                    if c.startswith(PREFIX)]
            networks = [n for n in docker_lines(docker_env, "network", "ls", "--format",
                                                "{{.Name}}") if n.startswith("vagrant_network")]
            assert (left, networks) == ([], []), "vagrant destroy left these behind"
    finally:
        daemon.stop()
    assert firewall() == before, "the host's firewall changed"


def test_up_provisions_every_machine_without_failure(machines):
    recap = machines.up.recap()
    assert sorted(recap) == sorted(addresses()), machines.up.output[-4000:]
    for name, counts in recap.items():
        assert counts["failed"] == 0 and counts["unreachable"] == 0, (name, counts)
    assert "same name" not in machines.up.output  # no host named like a group


def test_the_playbook_ran_on_the_inventory_vagrant_wrote(machines):
    """Connections as the provider gives them (docker's bridge here), groups from hosts.yml."""
    written = Path(machines.env["VAGRANT_DOTFILE_PATH"], "provisioners", "ansible", "inventory",
                   "vagrant_ansible_inventory").read_text()
    for name in addresses():
        line = next(x for x in written.splitlines() if x.startswith(f"{name} "))
        # the container's address on docker's bridge, not the private one of hosts.yml
        assert "ansible_host=" in line and f"={addresses()[name]} " not in line, line
        assert "ansible_ssh_private_key_file=" in line, line
    for group, members in inventory().items():
        assert f"[{group}]\n" + "\n".join(members["hosts"]) in written, written


def test_a_second_provision_changes_nothing(machines):
    again = machines.vagrant("provision", list(addresses())[-1])
    print(f"vagrant: second provision {again.seconds:.0f} s", file=sys.stderr)
    assert again.returncode == 0, again.output[-8000:]
    recap = again.recap()
    assert sorted(recap) == sorted(addresses())
    changed = {name: counts["changed"] for name, counts in recap.items() if counts["changed"]}
    assert changed == {}, again.output[-8000:]


def hosts_lines() -> dict[str, str]:
    """domain -> address, as `sitekit hosts vagrant` tells a tester to put in /etc/hosts."""
    proc = subprocess.run([str(BIN / "sitekit"), "--project", str(ROOT), "hosts", "vagrant"],
                          capture_output=True, text=True, check=True, timeout=60)
    found = {}
    for line in proc.stdout.splitlines():
        if line and not line.startswith("#"):
            address, *domains = line.split()
            found.update(dict.fromkeys(domains, address))
    return found


def get(address: str, host: str, tls: bool = True, path: str = "/"):
    """A request to *address* with this Host (and SNI), as a browser resolving it there would."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the environment's own CA (a tester accepts it)
        conn = http.client.HTTPSConnection(address, 443, timeout=15, context=context)
        conn.sock = context.wrap_socket(socket.create_connection((address, 443), timeout=15),
                                        server_hostname=host)
    else:
        conn = http.client.HTTPConnection(address, 80, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode(errors="replace")
    finally:
        conn.close()


def test_every_site_answers_through_the_lb_by_host(machines):
    lines = hosts_lines()
    lb = addresses()[next(iter(inventory()["lb"]["hosts"]))]
    expected = {d: s["name"] for s in sites() for d in s["domains"]}
    assert lines == dict.fromkeys(expected, lb)
    for domain, site in expected.items():
        status, headers, body = get(lines[domain], domain)
        assert (status, headers.get("X-Sitekit-Site")) == (200, site), (domain, body[:300])
        status, headers, _ = get(lines[domain], domain, tls=False, path="/a?b=1")
        assert (status, headers["Location"]) == (301, f"https://{domain}/a?b=1")


def test_an_unknown_host_is_refused(machines):
    lb = addresses()[next(iter(inventory()["lb"]["hosts"]))]
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        get(lb, "unknown.example.org", tls=False)
    with pytest.raises(ssl.SSLError):
        get(lb, "unknown.example.org")


def test_both_web_hosts_serve_the_same_release(machines):
    releases = {}
    for name in inventory()["web"]["hosts"]:
        run = machines.vagrant("ssh", name, "-c", "readlink -e /srv/sitekit/current", timeout=120)
        assert run.returncode == 0, run.output
        releases[name] = run.stdout.strip()
    assert len(set(releases.values())) == 1, releases
    assert next(iter(releases.values())).startswith("/srv/sitekit/releases/"), releases
