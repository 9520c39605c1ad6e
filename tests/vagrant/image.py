"""The docker provider's machine image for the Vagrantfile, and a docker daemon to run it.

No registry is needed: the image is the rehearsal's debootstrap base image (built once and cached,
see :mod:`tests.rehearsal.testbed`) imported into docker, plus ``tests/vagrant/Dockerfile`` (the
``vagrant`` user with Vagrant's well-known key, sudo, systemd as the command). Docker keeps it;
its tag carries a digest of everything it is made of, so a changed recipe builds a new one.

Where no docker daemon answers, :class:`Dockerd` runs one of its own (root): on its own socket and
data directory, with ``--iptables=false --ip-forward=false``, so that it changes nothing of the
host's firewall (no FORWARD policy, no NAT: the machines have no way out, and the rehearsal's
bridge keeps working beside it). Stopping it removes the bridge it made.

For people::

    python -m tests.vagrant.image          # build (or find) the image, then
    vagrant up --provider=docker
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.rehearsal import testbed as tb

HERE = Path(__file__).resolve().parent
DOCKERFILE = HERE / "Dockerfile"
IMAGE = "sitekit/vagrant-bookworm"
BASE = "sitekit/bookworm-rootfs"
OWN_ROOT = Path("/run/sitekit-docker")
OWN_SOCKET = OWN_ROOT / "docker.sock"
OWN_DATA = Path("/var/lib/sitekit-docker")


class ImageError(RuntimeError):
    """The image could not be built, or no docker daemon could be had."""


def _log(message: str) -> None:
    print(f"[vagrant-image] {message}", file=sys.stderr, flush=True)


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 600,
         **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)


def docker_answers(env: dict[str, str] | None = None) -> bool:
    if not shutil.which("docker"):
        return False
    return _run(["docker", "info", "--format", "{{.ServerVersion}}"], env, 30).returncode == 0


class Dockerd:
    """A docker daemon for the test: the one that answers already, else one of our own.

    ``env`` is the environment for docker clients (``DOCKER_HOST`` names our own socket).
    """

    def __init__(self, log=_log):
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.made_bridge = False
        self.env = dict(os.environ)

    def start(self) -> dict[str, str]:
        if docker_answers(self.env):
            return self.env
        if os.geteuid() != 0 or not shutil.which("dockerd"):
            raise ImageError("no docker daemon answers, and none can be started here "
                             "(needs root and dockerd: apt-get install docker.io)")
        self.made_bridge = not Path("/sys/class/net/docker0").exists()
        OWN_ROOT.mkdir(parents=True, exist_ok=True)
        log = open(OWN_ROOT / "dockerd.log", "a")  # noqa: SIM115 (outlives this call)
        self.proc = subprocess.Popen(
            ["dockerd", f"--host=unix://{OWN_SOCKET}", f"--data-root={OWN_DATA}",
             f"--exec-root={OWN_ROOT / 'exec'}", f"--pidfile={OWN_ROOT / 'docker.pid'}",
             "--iptables=false", "--ip-forward=false", "--ip-masq=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{OWN_SOCKET}")
        deadline = time.monotonic() + 60
        while not docker_answers(self.env):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ImageError(f"dockerd did not start: {tb._tail(OWN_ROOT / 'dockerd.log')}")
            time.sleep(0.5)
        self.log(f"own dockerd on {OWN_SOCKET} (no iptables, no forwarding)")
        return self.env

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.proc = None
        if self.made_bridge and Path("/sys/class/net/docker0").exists():
            _run(["ip", "link", "del", "docker0"])
        tb._remove_tree(OWN_ROOT / "exec", self.log)  # its sockets and namespaces' mount points


def vagrant_public_key() -> str:
    """The public half of Vagrant's well-known key (what Vagrant logs in with: the Vagrantfile
    keeps it on every machine)."""
    home = Path(os.environ.get("VAGRANT_HOME") or Path.home() / ".vagrant.d")
    key = home / "insecure_private_key"
    if not key.exists() and shutil.which("vagrant"):
        _run(["vagrant", "box", "list"], timeout=120)  # sets up Vagrant's home and its key
    if not key.exists():
        raise ImageError(f"no {key}: is vagrant installed (apt-get install vagrant)?")
    proc = _run(["ssh-keygen", "-y", "-f", str(key)])
    if proc.returncode != 0:
        raise ImageError(f"ssh-keygen -y -f {key}: {proc.stderr.strip()}")
    return proc.stdout.strip() + " vagrant insecure public key\n"


def image_version(public_key: str) -> str:
    digest = hashlib.sha256("\n".join(
        [tb.image_version(), DOCKERFILE.read_text(), public_key]).encode()).hexdigest()
    return digest[:16]


def _exists(ref: str, env: dict[str, str]) -> bool:
    return _run(["docker", "image", "inspect", ref], env, 60).returncode == 0


def _drop_older(env: dict[str, str], keep: set[str], log=_log) -> None:
    """Remove the images of earlier recipes (the cache keeps one of each)."""
    for repo in (IMAGE, BASE):
        proc = _run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repo], env, 60)
        for ref in proc.stdout.split():
            if ref not in keep:
                log(f"removing {ref} (an earlier recipe)")
                _run(["docker", "rmi", ref], env, 300)


def build_image(env: dict[str, str], log=_log) -> str:
    """The image's tag (``IMAGE:<version>``, also tagged ``latest``), built when missing."""
    public_key = vagrant_public_key()
    tag = f"{IMAGE}:{image_version(public_key)}"
    if not _exists(tag, env):
        base_root = tb.build_base_image(log=log)
        base = f"{BASE}:{tb.image_version()}"
        started = time.monotonic()
        if not _exists(base, env):
            log(f"importing {base_root} as {base}")
            tar = subprocess.Popen(["tar", "-C", str(base_root), "--numeric-owner",
                                    f"--exclude=./{tb.STAMP}", "-cf", "-", "."],
                                   stdout=subprocess.PIPE)
            proc = subprocess.run(["docker", "import", "-", base], stdin=tar.stdout, env=env,
                                  capture_output=True, text=True, timeout=900, check=False)
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait() != 0 or proc.returncode != 0:
                raise ImageError(f"docker import failed: {proc.stderr.strip()}")
        with tempfile.TemporaryDirectory(prefix="sitekit-vagrant-image-") as context:
            shutil.copy(DOCKERFILE, Path(context) / "Dockerfile")
            (Path(context) / "vagrant.pub").write_text(public_key)
            proc = _run(["docker", "build", "--network=none", "--build-arg", f"BASE={base}",
                         "-t", tag, context], env, 900)
        if proc.returncode != 0:
            raise ImageError(f"docker build failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        log(f"built {tag} in {time.monotonic() - started:.1f} s")
        _drop_older(env, {tag, f"{IMAGE}:latest", base}, log)
    proc = _run(["docker", "tag", tag, f"{IMAGE}:latest"], env, 60)
    if proc.returncode != 0:
        raise ImageError(f"docker tag failed: {proc.stderr.strip()}")
    return tag


def main() -> int:
    if not docker_answers():
        print("error: no docker daemon answers (start it: systemctl start docker)", file=sys.stderr)
        return 1
    try:
        print(build_image(dict(os.environ)))
    except (ImageError, tb.TestbedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
