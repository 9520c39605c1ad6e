"""Multi-host rehearsal testbed: Debian bookworm hosts in systemd-nspawn containers.

The testbed boots a handful of hosts (by default ``lb``, ``web1``, ``web2`` and ``db``) as
systemd-nspawn containers attached to a private Linux bridge, each with a static address on a
/24 that is unlikely to clash with anything (``10.231.7.0/24`` on bridge ``skbr0``). The hosts are
reached over SSH with a key of the testbed's own, so the production-shaped playbook can be
converged onto them exactly as onto real machines.

Every host runs on its own overlayfs whose lower layer is one shared base image, built once with
debootstrap and cached (``$SITEKIT_TESTBED_CACHE`` or ``/var/cache/sitekit-testbed``). The
containers have no route anywhere but the bridge: no gateway, no DNS. Everything the hosts need
is therefore preinstalled in the image, and apt's package lists are kept so that
``apt: state=present`` for an installed package needs no network.

Library use (root only)::

    ok, reason = can_run()
    with Testbed(tmp_path / "testbed") as bed:      # up() on enter, down() on exit
        bed.write_connection_vars(tmp_path / "hosts.yml")
        bed.run("lb", "curl -s http://10.231.7.11/")
        bed.stop("web1"); bed.start("web1")

For people::

    python -m tests.rehearsal.testbed up [--work DIR]   # boots the four hosts until Ctrl-C
    python -m tests.rehearsal.testbed status
    python -m tests.rehearsal.testbed down [--work DIR] # clears a testbed left by a crashed run

A testbed holds a lock on its bridge for its whole life (``/run/sitekit-testbed``). A testbed
whose owning process died is found through that directory and torn down by the next ``up()`` on
the same bridge, or by ``down``.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import ipaddress
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"

# Bump when the image customisation in _customise_image changes; the package list is hashed in.
IMAGE_RECIPE = 2

# Preinstalled in the base image: the hosts have no network, so anything the playbook or the
# tests use on them must be here. nftables (the object store's firewall) comes with
# debootstrap's default set, the priority-important packages.
BASE_PACKAGES: tuple[str, ...] = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "python3",
    "python3-venv",
    "python3-apt",
    "python3-psycopg2",
    "python3-cryptography",  # the sites' certificates (sitekit.deploy.tls_certificates)
    # what python3-cryptography needs through a virtual package, which debootstrap's
    # dependency resolution does not follow
    "python3-cffi-backend",
    "sudo",
    "acl",
    "iproute2",
    "iputils-ping",
    "procps",
    "curl",
    "ca-certificates",
    "nginx-light",
    "supervisor",
    "postgresql",
    "locales",
    "rsync",
    "unzip",
    "xz-utils",
)

# Host tools the testbed needs, by the Debian package that ships them.
HOST_TOOLS: dict[str, str] = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
HOST_PACKAGES: tuple[str, ...] = ("systemd-container", "debootstrap", "iproute2", "openssh-client")
ARCHIVE_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

DEFAULT_BRIDGE = "skbr0"
DEFAULT_SUBNET = "10.231.7.0/24"
DEFAULT_PREFIX = "sk"
DEFAULT_HOSTS: dict[str, str] = {
    "lb": "10.231.7.10",
    "web1": "10.231.7.11",
    "web2": "10.231.7.12",
    "db": "10.231.7.20",
}

IMAGE_NAME = f"{SUITE}-base"
STAMP = ".sitekit-testbed-image"
KEY_NAME = "id_ed25519"
RUN_DIR = Path("/run/sitekit-testbed")
NSPAWN_RUN = Path("/run/systemd/nspawn")
STATE_FILE = "state.json"

NO_KNOWN_HOSTS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null")
# Also given to Ansible (ansible_ssh_common_args): no host keys remembered, only our key offered.
COMMON_SSH_OPTIONS = (*NO_KNOWN_HOSTS, "-o", "IdentitiesOnly=yes")
SSH_OPTIONS = (*COMMON_SSH_OPTIONS, "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
               "-o", "ConnectTimeout=5")

SEARCH_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

Log = Callable[[str], None]


class TestbedError(RuntimeError):
    """The testbed could not be built, booted or reached."""

    __test__ = False  # not a pytest test class despite its name


def _log(message: str) -> None:
    print(f"[testbed] {message}", file=sys.stderr, flush=True)


def default_cache_dir() -> Path:
    return Path(os.environ.get("SITEKIT_TESTBED_CACHE") or "/var/cache/sitekit-testbed")


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in SEARCH_PATH:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _need(name: str) -> str:
    found = _tool(name)
    if not found:
        raise TestbedError(f"{name} not found; run ensure_host_packages() first")
    return found


def _cmd(*argv: str | os.PathLike, check: bool = True, timeout: float | None = 300,
         **kwargs: Any) -> subprocess.CompletedProcess:
    args = [str(a) for a in argv]
    args[0] = _tool(args[0]) or args[0]
    kwargs.setdefault("capture_output", "stdout" not in kwargs)
    proc = subprocess.run(args, text=True, timeout=timeout, check=False, **kwargs)
    if check and proc.returncode != 0:
        detail = ((proc.stdout or "") + (proc.stderr or "")).strip()[-2000:]
        raise TestbedError(f"{shlex.join(args)} failed with exit {proc.returncode}: {detail}")
    return proc


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    # The container console uses ANSI colours; keep the tail readable.
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _flock(path: Path, *, blocking: bool = True):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        yield fd
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Host preparation and capability checks
# --------------------------------------------------------------------------------------------


def missing_host_packages() -> list[str]:
    missing = {pkg for tool, pkg in HOST_TOOLS.items() if not _tool(tool)}
    if not ARCHIVE_KEYRING.exists():
        missing.add("debian-archive-keyring")
    return sorted(missing)


def ensure_host_packages(log: Log = _log) -> list[str]:
    """Install the host packages the testbed needs (root, apt); return what was installed."""
    missing = missing_host_packages()
    if not missing:
        return []
    if os.geteuid() != 0:
        raise TestbedError(f"missing host packages {missing}; installing them needs root")
    apt = _tool("apt-get")
    if not apt:
        raise TestbedError(f"missing host packages {missing} and no apt-get to install them")
    log(f"installing host packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _cmd(apt, "update", env=env, timeout=600)
    _cmd(apt, "install", "-y", "--no-install-recommends", *missing, env=env, timeout=900)
    return missing


def can_run(work_parent: str | os.PathLike | None = None) -> tuple[bool, str]:
    """Whether this machine can host the testbed, and why not.

    Checks root, the tools (present, or installable with apt), an overlayfs mount in a scratch
    directory under ``work_parent`` (default: the temp dir) and that a bridge and a veth pair can
    be created. Changes nothing that it does not undo.
    """
    if sys.platform != "linux":
        return False, "the testbed needs Linux"
    if os.geteuid() != 0:
        return False, "the testbed needs root (systemd-nspawn, overlayfs mounts, bridges)"
    missing = missing_host_packages()
    if missing and not _tool("apt-get"):
        return False, f"missing host packages {missing} and no apt-get to install them"
    if not _tool("ip"):
        if missing:
            return True, f"ok (will install {' '.join(missing)}; bridge check skipped)"
        return False, "ip (iproute2) not found"

    parent = Path(work_parent) if work_parent else Path(tempfile.gettempdir())
    try:
        parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="sitekit-testbed-probe-", dir=parent))
    except OSError as exc:
        return False, f"cannot create a scratch directory under {parent}: {exc}"
    try:
        for sub in ("lower", "upper", "work", "merged"):
            (scratch / sub).mkdir()
        (scratch / "lower" / "probe").write_text("lower\n")
        opts = (f"lowerdir={scratch / 'lower'},upperdir={scratch / 'upper'},"
                f"workdir={scratch / 'work'}")
        proc = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts,
                               str(scratch / "merged")], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            return False, f"overlayfs mount failed under {parent}: {proc.stderr.strip()}"
        try:
            (scratch / "merged" / "probe").write_text("upper\n")
        finally:
            subprocess.run(["umount", str(scratch / "merged")], capture_output=True, check=False)
        if (scratch / "upper" / "probe").read_text() != "upper\n":
            return False, "overlayfs mounted but did not copy up"
    except OSError as exc:
        return False, f"overlayfs check failed: {exc}"
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(scratch)], check=False)

    hierarchies = _cgroup_hierarchies()
    if not hierarchies:
        return False, "no cgroup2 or name=systemd cgroup hierarchy mounted"
    for mount, own in hierarchies:
        probe = mount / own.lstrip("/") / f"sitekit-testbed-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            return False, f"cannot create a cgroup under {probe.parent}: {exc}"

    tag = uuid.uuid4().hex[:6]
    for kind, argv, name in (
        ("bridge", ["link", "add", f"skpb{tag}", "type", "bridge"], f"skpb{tag}"),
        ("veth pair", ["link", "add", f"skpv{tag}", "type", "veth", "peer", "name", f"skpw{tag}"],
         f"skpv{tag}"),
    ):
        proc = _cmd("ip", *argv, check=False)
        if proc.returncode != 0:
            return False, f"cannot create a {kind}: {proc.stderr.strip()}"
        _cmd("ip", "link", "del", name, check=False)

    if missing:
        return True, f"ok (will install {' '.join(missing)})"
    return True, "ok"


# --------------------------------------------------------------------------------------------
# Base image
# --------------------------------------------------------------------------------------------


def image_version(packages: Iterable[str] = BASE_PACKAGES) -> str:
    digest = hashlib.sha256(
        "\n".join([SUITE, MIRROR, *sorted(set(packages))]).encode()).hexdigest()
    return f"{SUITE}-r{IMAGE_RECIPE}-{digest[:16]}"


def ensure_keypair(cache_dir: str | os.PathLike | None = None) -> Path:
    """The testbed's SSH private key (ed25519, made once in the cache dir)."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = cache / KEY_NAME
    with _flock(cache / ".key.lock"):
        if not (key.exists() and key.with_suffix(".pub").exists()):
            key.unlink(missing_ok=True)
            key.with_suffix(".pub").unlink(missing_ok=True)
            _cmd("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sitekit-testbed",
                 "-f", key)
    key.chmod(0o600)
    return key


def _mounts_under(path: Path) -> list[Path]:
    """Mount points at or below path (deepest first), from /proc/self/mountinfo."""
    base = os.path.realpath(path)
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            target = line.split()[4].encode().decode("unicode_escape")
            if target == base or target.startswith(base.rstrip("/") + "/"):
                found.append(Path(target))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unmount(target: Path, log: Log = _log, attempts: int = 5) -> None:
    for attempt in range(attempts):
        if target not in _mounts_under(target):
            return
        proc = subprocess.run(["umount", str(target)], capture_output=True, text=True,
                              check=False)
        if proc.returncode == 0:
            continue
        time.sleep(0.2 * (attempt + 1))
    if target in _mounts_under(target):
        log(f"{target} is busy; detaching it lazily")
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def _remove_tree(path: Path, log: Log = _log) -> None:
    """rm -rf that first unmounts whatever is mounted below and never crosses a filesystem."""
    if not path.exists() and not path.is_symlink():
        return
    for target in _mounts_under(path):
        _unmount(target, log)
    left = _mounts_under(path)
    if left:
        raise TestbedError(f"refusing to remove {path}: still mounted: {left}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    """Write a file inside a container tree, replacing a symlink rather than following it."""
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def _nspawn_run(root: Path, script: str, log_file: Path, timeout: float = 900) -> None:
    """Run a shell script inside an image tree (not booted), sharing the host's network."""
    groups = _cgroups_for("image", f"build-{os.getpid()}")
    _remove_cgroups(groups, _log)
    for group in groups:
        group.mkdir(parents=True)
    try:
        with open(log_file, "a") as out:
            out.write(f"\n### nspawn script in {root}\n{script}\n")
            out.flush()
            proc = subprocess.run(_in_cgroups(groups, [
                _need("systemd-nspawn"), "--quiet", "--register=no", "--keep-unit",
                "--resolv-conf=copy-host", "--timezone=off", "--link-journal=no", "-D", str(root),
                "--setenv=DEBIAN_FRONTEND=noninteractive", "--setenv=LC_ALL=C.UTF-8",
                "/bin/sh", "-euxc", script]),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                check=False)
    finally:
        _kill_cgroups(groups)
        _remove_cgroups(groups, _log)
    if proc.returncode != 0:
        raise TestbedError(f"image script failed (exit {proc.returncode}):\n{_tail(log_file)}")


SSHD_CONFIG = """\
# sitekit testbed: root by key only, no DNS lookups (the hosts have no resolver).
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
"""

IMAGE_SCRIPT = """\
sed -i 's/^# *\\(en_US.UTF-8 UTF-8\\)/\\1/' /etc/locale.gen
locale-gen
update-locale LANG=C.UTF-8
systemctl enable systemd-networkd.service ssh.service nginx.service supervisor.service \
    postgresql.service
# No network inside the testbed: periodic apt jobs could only fail, and would hold apt's lock.
systemctl mask apt-daily.timer apt-daily-upgrade.timer apt-daily.service \
    apt-daily-upgrade.service
# One machine id per host (written by the testbed); D-Bus reads the same one.
ln -sf /etc/machine-id /var/lib/dbus/machine-id
apt-get update
apt-get clean
"""


def _customise_image(root: Path, public_key: str, log_file: Path) -> None:
    _write(root, "/etc/ssh/sshd_config.d/10-sitekit-testbed.conf", SSHD_CONFIG)
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    _write(root, "/root/.ssh/authorized_keys", public_key, 0o600)
    _nspawn_run(root, IMAGE_SCRIPT, log_file)
    # Per-host files; up() writes the real ones into each host's overlay.
    _write(root, "/etc/resolv.conf", "")
    _write(root, "/etc/hostname", "testbed\n")
    _write(root, "/etc/machine-id", "", 0o444)


def _read_stamp(image: Path) -> str | None:
    try:
        return (image / STAMP).read_text().strip()
    except OSError:
        return None


def build_base_image(cache_dir: str | os.PathLike | None = None, *, force: bool = False,
                     log: Log = _log) -> Path:
    """The cached base image (a directory tree); built with debootstrap when missing or stale.

    The tree is built in a temporary directory next to it and renamed into place, and carries a
    stamp with ``image_version()``: a changed package list or recipe rebuilds it.
    """
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    key = ensure_keypair(cache)
    image = cache / IMAGE_NAME
    version = image_version()
    with _flock(cache / ".image.lock"):
        if not force and _read_stamp(image) == version:
            return image
        ensure_host_packages(log)
        for stale in cache.glob(f"{IMAGE_NAME}.*.tmp"):
            _remove_tree(stale, log)
        log(f"building base image {version} in {image} (debootstrap {SUITE}, a few minutes)")
        started = time.monotonic()
        build_log = cache / "build.log"
        build_log.write_text(f"### building {version}\n")
        tmp = Path(tempfile.mkdtemp(prefix=f"{IMAGE_NAME}.", suffix=".tmp", dir=cache))
        tmp.chmod(0o755)
        try:
            with open(build_log, "a") as out:
                proc = subprocess.run(
                    [_need("debootstrap"), f"--include={','.join(BASE_PACKAGES)}",
                     "--components=main", SUITE, str(tmp), MIRROR],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    timeout=3600, check=False)
            if proc.returncode != 0:
                raise TestbedError(
                    f"debootstrap failed (exit {proc.returncode}):\n{_tail(build_log)}")
            _customise_image(tmp, key.with_suffix(".pub").read_text(), build_log)
            (tmp / STAMP).write_text(version + "\n")
            old = None
            if image.exists():
                old = cache / f"{IMAGE_NAME}.{os.getpid()}.old.tmp"
                image.rename(old)
            tmp.rename(image)
            if old:
                _remove_tree(old, log)
        except BaseException:
            _remove_tree(tmp, log)
            raise
        log(f"base image built in {time.monotonic() - started:.1f} s")
    return image


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _is_nspawn(pid: int | None, machine: str) -> bool:
    """pid is still the systemd-nspawn of this machine (and not a recycled pid)."""
    if not pid or not _alive(pid):
        return False
    argv = _cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]) == "systemd-nspawn" and (
        f"--machine={machine}" in argv or any(
            a == "-M" and b == machine for a, b in itertools.pairwise(argv)))


# Each container runs in cgroups of its own. systemd-nspawn without a host systemd
# (--keep-unit) otherwise puts every container's payload into the same cgroup, and the
# containers' systemds then trip over each other's units (random "219/CGROUP" failures).


def _cgroup_hierarchies() -> list[tuple[Path, str]]:
    """(mount point, this process's cgroup in it) for the hierarchies systemd manages:
    the cgroup2 one and, on hybrid or legacy hosts, cgroup v1 ``name=systemd``."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    unified: tuple[Path, str] | None = None
    named: tuple[Path, str] | None = None
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields, _, tail = line.partition(" - ")
            fstype, _source, options = [*tail.split(), "", ""][:3]
            target = Path(fields.split()[4])
            if fstype == "cgroup2" and "" in own and unified is None:
                unified = (target, own[""])
            elif (fstype == "cgroup" and "name=systemd" in options.split(",")
                  and "name=systemd" in own and named is None):
                named = (target, own["name=systemd"])
    return [h for h in (unified, named) if h]


def _cgroups_for(bridge: str, machine: str) -> list[Path]:
    return [mount / own.lstrip("/") / "sitekit-testbed" / bridge / machine
            for mount, own in _cgroup_hierarchies()]


def _in_cgroups(cgroups: Iterable[Path], argv: list[str]) -> list[str]:
    """argv that first moves itself into the cgroups, then execs argv (keeping its pid)."""
    join = ('while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; done; '
            'shift; exec "$@"')
    return ["/bin/sh", "-c", join, "sh", *map(str, cgroups), "--", *argv]


def _cgroup_pids(cgroup: Path) -> list[int]:
    pids: list[int] = []
    for procs in cgroup.rglob("cgroup.procs") if cgroup.is_dir() else ():
        with contextlib.suppress(OSError, ValueError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def _kill_cgroups(cgroups: Iterable[Path]) -> None:
    for cgroup in cgroups:
        kill = cgroup / "cgroup.kill"
        if kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        for pid in _cgroup_pids(cgroup):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _remove_cgroups(cgroups: Iterable[Path], log: Log) -> None:
    """rmdir the (empty) cgroups bottom-up, and their parents when nothing else is left."""
    for cgroup in cgroups:
        if not cgroup.is_dir():
            continue
        dirs = sorted((d for d in cgroup.rglob("*") if d.is_dir()),
                      key=lambda d: len(d.parts), reverse=True)
        for attempt in range(20):
            try:
                for d in [*dirs, cgroup]:
                    if d.is_dir():
                        d.rmdir()
                break
            except OSError:
                time.sleep(0.05 * (attempt + 1))
        else:
            log(f"cannot remove cgroup {cgroup} (processes left: {_cgroup_pids(cgroup)})")
            continue
        for parent in (cgroup.parent, cgroup.parent.parent):
            with contextlib.suppress(OSError):
                parent.rmdir()


def _wait_gone(pids: Mapping[str, int], popens: Mapping[str, subprocess.Popen],
               timeout: float) -> list[str]:
    """Wait until the processes are gone; return the names still running at the deadline."""
    deadline = time.monotonic() + timeout
    pending = dict(pids)
    while pending:
        for name, pid in list(pending.items()):
            popen = popens.get(name)
            if popen is not None and popen.pid == pid:
                if popen.poll() is not None:
                    del pending[name]
            elif not _alive(pid):
                del pending[name]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return sorted(pending)


# --------------------------------------------------------------------------------------------
# The testbed
# --------------------------------------------------------------------------------------------


class Testbed:
    """Hosts in systemd-nspawn containers on a private bridge, reachable as root over SSH.

    ``hosts`` maps host names to IPv4 addresses inside ``subnet`` (order is boot order). The
    bridge gets the subnet's first address. ``work_dir`` must be empty or missing; ``down()``
    removes it.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(self, work_dir: str | os.PathLike,
                 hosts: Mapping[str, str] | None = None, *,
                 bridge: str = DEFAULT_BRIDGE, subnet: str = DEFAULT_SUBNET,
                 prefix: str = DEFAULT_PREFIX, cache_dir: str | os.PathLike | None = None,
                 image: str | os.PathLike | None = None, boot_timeout: float = 90.0,
                 stop_timeout: float = 30.0, log: Log = _log) -> None:
        self.work = Path(work_dir).absolute()
        self.network = ipaddress.IPv4Network(subnet)
        if self.network.prefixlen > 30:
            raise ValueError(f"subnet {subnet} is too small")
        self.bridge_address = ipaddress.IPv4Interface(
            f"{next(self.network.hosts())}/{self.network.prefixlen}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,15}", bridge):
            raise ValueError(f"bad bridge name {bridge!r}")
        if not re.fullmatch(r"[a-z0-9-]{1,8}", prefix):
            raise ValueError(f"bad machine prefix {prefix!r}")
        self.bridge = bridge
        self.prefix = prefix
        self.hosts: dict[str, str] = {}
        for name, ip in (DEFAULT_HOSTS if hosts is None else hosts).items():
            if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", name) or len(prefix + name) > 11:
                raise ValueError(f"bad host name {name!r} (lower-case, short: veth names "
                                 f"are at most 15 characters)")
            addr = ipaddress.IPv4Address(ip)
            if (addr not in self.network or addr in (self.network.network_address,
                                                     self.network.broadcast_address,
                                                     self.bridge_address.ip)):
                raise ValueError(f"{name}: {ip} is not a host address in {subnet} "
                                 f"(the bridge has {self.bridge_address.ip})")
            if str(addr) in self.hosts.values():
                raise ValueError(f"{name}: {ip} is used twice")
            self.hosts[name] = str(addr)
        if not self.hosts:
            raise ValueError("no hosts")
        if any(c in str(self.work) for c in ",:"):
            raise ValueError(f"work dir {self.work} must not contain ',' or ':' (overlayfs)")
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.image = Path(image) if image else None
        self.key_path = self.cache_dir / KEY_NAME
        self.boot_timeout = boot_timeout
        self.stop_timeout = stop_timeout
        self.log = log
        self.timings: dict[str, float | None] = {"image_build": None, "boot": None}
        self._procs: dict[str, subprocess.Popen] = {}
        self._cgroups: dict[str, list[Path]] = {}
        self._lock_fd: int | None = None
        self._created_bridge = False
        self._mutex = threading.RLock()
        self._up = False

    # -- addresses and SSH -------------------------------------------------------------------

    def machine(self, host: str) -> str:
        return f"{self.prefix}-{self._known(host)}"

    def ip(self, host: str) -> str:
        return self.hosts[self._known(host)]

    def root(self, host: str) -> Path:
        return self.work / self._known(host) / "root"

    def cgroups(self, host: str) -> list[Path]:
        """The cgroups the host's container runs in (one per cgroup hierarchy systemd uses)."""
        if host not in self._cgroups:
            self._cgroups[host] = _cgroups_for(self.bridge, self.machine(host))
        return self._cgroups[host]

    def log_path(self, host: str) -> Path:
        return self.work / f"{self._known(host)}.log"

    def _known(self, host: str) -> str:
        if host not in self.hosts:
            raise KeyError(f"no host {host!r} in this testbed ({', '.join(self.hosts)})")
        return host

    def ssh_args(self, host: str) -> list[str]:
        """``ssh`` argv up to and including ``root@IP``; append a remote command."""
        return ["ssh", "-i", str(self.key_path), *SSH_OPTIONS, f"root@{self.ip(host)}"]

    def run(self, host: str, command: str | Iterable[str], *, check: bool = False,
            timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a command as root on a host over SSH (a list is shell-quoted)."""
        remote = command if isinstance(command, str) else shlex.join(command)
        return subprocess.run([*self.ssh_args(host), remote], capture_output=True, text=True,
                              timeout=timeout, check=check, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def inventory_vars(self) -> dict[str, dict[str, str]]:
        """Per-host connection variables for Ansible."""
        return {
            host: {
                "ansible_host": ip,
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(self.key_path),
                "ansible_ssh_common_args": " ".join(COMMON_SSH_OPTIONS),
                "ansible_python_interpreter": "/usr/bin/python3",
            }
            for host, ip in self.hosts.items()
        }

    def write_connection_vars(self, path: str | os.PathLike) -> Path:
        """Write ``all: {hosts: {...}}`` with inventory_vars(), usable as an extra ``-i``."""
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"all": {"hosts": self.inventory_vars()}},
                                       sort_keys=False, default_flow_style=False))
        return path

    # -- state ---------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "version": 1,
            "owner_pid": os.getpid(),
            "work": str(self.work),
            "bridge": self.bridge,
            "created_bridge": self._created_bridge,
            "subnet": str(self.network),
            "bridge_address": str(self.bridge_address),
            "prefix": self.prefix,
            "image": str(self.image) if self.image else None,
            "key": str(self.key_path),
            "hosts": {
                host: {
                    "ip": ip,
                    "machine": self.machine(host),
                    "root": str(self.root(host)),
                    "pid": self._procs[host].pid if host in self._procs else None,
                    "cgroups": [str(c) for c in self.cgroups(host)],
                    "log": str(self.log_path(host)),
                }
                for host, ip in self.hosts.items()
            },
        }

    def _save_state(self) -> None:
        state = json.dumps(self._state(), indent=2) + "\n"
        for path in (self.work / STATE_FILE, RUN_DIR / f"{self.bridge}.json"):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(state)
            tmp.rename(path)

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Testbed:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self) -> Testbed:
        """Build the image if needed, then create the bridge, the overlays and boot every host.

        Returns when every host answers SSH and systemd finished booting. On failure everything
        is torn down and TestbedError raised.
        """
        with self._mutex:
            if self._up:
                return self
            if os.geteuid() != 0:
                raise TestbedError("the testbed needs root")
            ensure_host_packages(self.log)
            if self.image is None:
                started = time.monotonic()
                stamp_before = _read_stamp(self.cache_dir / IMAGE_NAME)
                self.image = build_base_image(self.cache_dir, log=self.log)
                if stamp_before != _read_stamp(self.image):
                    self.timings["image_build"] = time.monotonic() - started
            else:
                ensure_keypair(self.cache_dir)
            if not (self.image / "usr" / "lib" / "os-release").exists():
                raise TestbedError(f"{self.image} is not an OS tree")
            if self.work.exists() and any(self.work.iterdir()):
                raise TestbedError(f"work dir {self.work} is not empty")
            self._acquire_bridge()
            atexit.register(self.down)
            self._up = True
            try:
                self._reclaim_stale()
                self.work.mkdir(parents=True, exist_ok=True)
                self._save_state()
                self._create_bridge()
                self._save_state()
                for host in self.hosts:
                    self._prepare_host(host)
                started = time.monotonic()
                for host in self.hosts:
                    self._spawn(host)
                self._save_state()
                self._wait_ready(list(self.hosts), time.monotonic() + self.boot_timeout)
                self.timings["boot"] = time.monotonic() - started
                self.log(f"{len(self.hosts)} hosts up in {self.timings['boot']:.1f} s: "
                         + ", ".join(f"{h} {ip}" for h, ip in self.hosts.items()))
            except BaseException:
                self.down()
                raise
            return self

    def down(self) -> None:
        """Stop every host, unmount the overlays, delete the bridge and remove the work dir.

        Idempotent; safe after a partial up().
        """
        with self._mutex:
            if not self._up:
                return
            try:
                _teardown(self._state(), self._procs, self.log, self.stop_timeout)
            finally:
                self._procs.clear()
                self._release_bridge()
                self._up = False
                atexit.unregister(self.down)

    def stop(self, host: str) -> None:
        """Power a host off (cleanly; killed if it does not stop in stop_timeout)."""
        with self._mutex:
            proc = self._procs.pop(self._known(host), None)
            if proc is None:
                return
            _stop_containers({host: proc.pid}, {host: proc}, {host: self.cgroups(host)},
                             self.log, self.stop_timeout,
                             {host: (self.machine(host), self.root(host))})
            self._save_state()

    def start(self, host: str, timeout: float | None = None) -> None:
        """Power a stopped host on again and wait until it answers SSH."""
        with self._mutex:
            if not self._up:
                raise TestbedError("the testbed is not up")
            if host in self._procs and self._procs[self._known(host)].poll() is None:
                return
            self._procs.pop(host, None)
            self._touch_apt(self.root(host))
            self._spawn(host)
            self._save_state()
            started = time.monotonic()
            self._wait_ready([host], time.monotonic() + (timeout or self.boot_timeout),
                             teardown=False)
            self.log(f"{host} up again in {time.monotonic() - started:.1f} s")

    def running(self, host: str) -> bool:
        proc = self._procs.get(self._known(host))
        return proc is not None and proc.poll() is None

    # -- internals -----------------------------------------------------------------------------

    def _acquire_bridge(self) -> None:
        """Lock the bridge for this testbed; tear down a testbed left on it by a dead process."""
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(RUN_DIR / f"{self.bridge}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            other = _load_json(RUN_DIR / f"{self.bridge}.json") or {}
            raise TestbedError(
                f"bridge {self.bridge} is in use by another testbed (pid "
                f"{other.get('owner_pid')}, work dir {other.get('work')})") from None
        self._lock_fd = fd

    def _reclaim_stale(self) -> None:
        stale = _load_json(RUN_DIR / f"{self.bridge}.json")
        if stale and stale.get("work") != str(self.work):
            self.log(f"tearing down a testbed left by pid {stale.get('owner_pid')} in "
                     f"{stale.get('work')}")
            _teardown(stale, {}, self.log, self.stop_timeout)

    def _release_bridge(self) -> None:
        (RUN_DIR / f"{self.bridge}.json").unlink(missing_ok=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _create_bridge(self) -> None:
        if _cmd("ip", "link", "show", "dev", self.bridge, check=False).returncode == 0:
            raise TestbedError(f"a link named {self.bridge} exists and is not ours; delete it "
                               f"or pick another bridge name")
        for route in json.loads(_cmd("ip", "-j", "-4", "route", "show").stdout or "[]"):
            dst = route.get("dst")
            if dst and dst != "default" and ipaddress.IPv4Network(dst, strict=False).overlaps(
                    self.network):
                raise TestbedError(f"{self.network} clashes with the route {dst} on "
                                   f"{route.get('dev')}; pick another subnet")
        _cmd("ip", "link", "add", "name", self.bridge, "type", "bridge")
        self._created_bridge = True
        # No IPv6 autoconfiguration on the bridge: it only carries the testbed's IPv4.
        _cmd("ip", "link", "set", "dev", self.bridge, "addrgenmode", "none", check=False)
        _cmd("ip", "addr", "add", str(self.bridge_address), "dev", self.bridge)
        _cmd("ip", "link", "set", "dev", self.bridge, "up")

    def _etc_hosts(self, host: str) -> str:
        lines = ["127.0.0.1\tlocalhost", f"127.0.1.1\t{host}",
                 "::1\tlocalhost ip6-localhost ip6-loopback",
                 "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", ""]
        lines += [f"{ip}\t{name}" for name, ip in self.hosts.items() if name != host]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _touch_apt(root: Path) -> None:
        """Make apt's lists look freshly updated, so cache_valid_time does not ask the network."""
        stamp = root / "var/lib/apt/periodic/update-success-stamp"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.touch()
        os.utime(stamp)
        os.utime(root / "var/lib/apt/lists")

    def _prepare_host(self, host: str) -> None:
        base = self.work / host
        for sub in ("upper", "overlay-work", "root"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        root = self.root(host)
        _cmd("mount", "-t", "overlay", f"sitekit-testbed-{host}", "-o",
             f"lowerdir={self.image},upperdir={base / 'upper'},workdir={base / 'overlay-work'}",
             root)
        self._save_state()
        _write(root, "/etc/hostname", f"{host}\n")
        _write(root, "/etc/hosts", self._etc_hosts(host))
        _write(root, "/etc/resolv.conf", "")
        _write(root, "/etc/machine-id", uuid.uuid4().hex + "\n", 0o444)
        _write(root, "/etc/systemd/network/10-sitekit-testbed.network",
               "[Match]\nName=host0\n\n[Network]\n"
               f"Address={self.hosts[host]}/{self.network.prefixlen}\n"
               "LinkLocalAddressing=no\nIPv6AcceptRA=no\n")
        public_key = self.key_path.with_suffix(".pub").read_text()
        (root / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
        _write(root, "/root/.ssh/authorized_keys", public_key, 0o600)
        self._touch_apt(root)

    def _spawn(self, host: str) -> None:
        groups = self.cgroups(host)
        if any(_cgroup_pids(g) for g in groups):
            raise TestbedError(f"{host}: its cgroups still hold processes: {groups}")
        _remove_cgroups(groups, self.log)
        for group in groups:
            group.mkdir(parents=True)
        argv = [_need("systemd-nspawn"), "--boot", "--register=no", "--keep-unit",
                f"--network-bridge={self.bridge}", "--resolv-conf=off", "--link-journal=no",
                "--console=read-only", "-D", str(self.root(host)), "-M", self.machine(host)]
        log_file = self.log_path(host)
        with open(log_file, "ab") as out:
            out.write(f"### {time.strftime('%H:%M:%S')} booting {host}\n".encode())
            out.flush()
            self._procs[host] = subprocess.Popen(
                _in_cgroups(groups, argv),
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def _fail(self, host: str, why: str, teardown: bool) -> TestbedError:
        message = f"{host} ({self.ip(host)}): {why}\n--- {self.log_path(host)} ---\n" + _tail(
            self.log_path(host))
        if teardown:
            self.down()
        return TestbedError(message)

    def _wait_ready(self, hosts: list[str], deadline: float, teardown: bool = True) -> None:
        pending = list(hosts)
        while pending:
            for host in list(pending):
                proc = self._procs[host]
                if proc.poll() is not None:
                    raise self._fail(host, f"systemd-nspawn exited with {proc.returncode}",
                                     teardown)
                if not _port_open(self.ip(host), 22):
                    continue
                with contextlib.suppress(subprocess.TimeoutExpired):
                    probe = subprocess.run([*self.ssh_args(host), "true"], capture_output=True,
                                           stdin=subprocess.DEVNULL, timeout=30, check=False)
                    if probe.returncode == 0:
                        pending.remove(host)
            if not pending:
                break
            if time.monotonic() > deadline:
                raise self._fail(pending[0], "no SSH before the boot timeout", teardown)
            time.sleep(0.25)
        for host in hosts:
            left = max(5.0, deadline - time.monotonic())
            try:
                state = self.run(host, "systemctl is-system-running --wait",
                                 timeout=left).stdout.strip()
            except subprocess.TimeoutExpired:
                raise self._fail(host, "systemd did not finish booting in time",
                                 teardown) from None
            if state == "degraded":
                failed = self.run(host, "systemctl --failed --no-legend --plain").stdout
                self.log(f"{host}: degraded; failed units: "
                         + ", ".join(line.split()[0] for line in failed.splitlines() if line))
            elif state != "running":
                raise self._fail(host, f"systemd is {state or 'unreachable'}", teardown)


def _port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=1):
            return True
    except OSError:
        return False


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _clear_nspawn_leftovers(machine: str, root: Path) -> None:
    """What a killed systemd-nspawn leaves in /run: its propagation dir and its image lock."""
    with contextlib.suppress(OSError):
        (NSPAWN_RUN / "propagate" / machine).rmdir()
    with contextlib.suppress(OSError):
        st = root.stat()
        (NSPAWN_RUN / "locks" / f"inode-{st.st_dev}:{st.st_ino}").unlink()


def _stop_containers(pids: Mapping[str, int], popens: Mapping[str, subprocess.Popen],
                     cgroups: Mapping[str, list[Path]], log: Log, timeout: float,
                     machines: Mapping[str, tuple[str, Path]]) -> None:
    """SIGTERM each nspawn (it powers its container off), kill what is left, drop the cgroups."""
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    left = _wait_gone(pids, popens, timeout)
    for name in left:
        log(f"{name} did not power off in {timeout:.0f} s; killing it")
        _kill_cgroups(cgroups.get(name, []))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pids[name], signal.SIGKILL)
    if left:
        left = _wait_gone({n: pids[n] for n in left}, popens, 10)
        if left:
            log(f"still running after SIGKILL: {', '.join(left)}")
    for name, proc in popens.items():
        if name in pids and proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
    for name in pids:
        groups = cgroups.get(name, [])
        if any(_cgroup_pids(g) for g in groups):
            # nspawn is gone but something of the container lives on.
            log(f"{name}: killing what is left in its cgroups")
            _kill_cgroups(groups)
        _remove_cgroups(groups, log)
        if name in machines:
            _clear_nspawn_leftovers(*machines[name])


def _teardown(state: Mapping[str, Any], popens: Mapping[str, subprocess.Popen], log: Log,
              stop_timeout: float = 30.0) -> None:
    """Tear down the testbed described by a state dict (the live one or a saved one)."""
    hosts: Mapping[str, Mapping[str, Any]] = state.get("hosts", {})
    pids: dict[str, int] = {}
    roots = {name: Path(h["root"]) for name, h in hosts.items()}
    cgroups = {name: [Path(c) for c in h.get("cgroups", [])] for name, h in hosts.items()}
    for name, h in hosts.items():
        pid = h.get("pid")
        if pid and (name in popens or _is_nspawn(pid, h["machine"])):
            pids[name] = pid
    machines = {name: (h["machine"], roots[name]) for name, h in hosts.items()}
    if pids:
        _stop_containers(pids, popens, cgroups, log, stop_timeout, machines)
    for name, groups in cgroups.items():
        if name not in pids and any(_cgroup_pids(g) for g in groups):
            log(f"{name}: killing an orphaned container")
            _kill_cgroups(groups)
            time.sleep(0.5)
        _remove_cgroups(groups, log)
        _clear_nspawn_leftovers(*machines[name])
    for root in roots.values():
        for target in _mounts_under(root):
            _unmount(target, log)
    bridge = state.get("bridge")
    if bridge and state.get("created_bridge"):
        shown = _cmd("ip", "-d", "-j", "link", "show", "dev", bridge, check=False)
        if shown.returncode == 0:
            info = json.loads(shown.stdout or "[]")
            if info and info[0].get("linkinfo", {}).get("info_kind") == "bridge":
                _cmd("ip", "link", "del", "dev", bridge, check=False)
    work = state.get("work")
    if work and Path(work).exists():
        _remove_tree(Path(work), log)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _cli_up(args: argparse.Namespace) -> int:
    ok, reason = can_run()
    if not ok:
        print(f"cannot run the testbed: {reason}", file=sys.stderr)
        return 2
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="sitekit-testbed-"))
    bed = Testbed(work, bridge=args.bridge, subnet=args.subnet, cache_dir=args.cache)
    # Also when started in the background, where SIGINT may come in ignored.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        bed.up()
        hosts_yml = bed.write_connection_vars(work / "hosts.yml")
        if bed.timings["image_build"] is not None:
            print(f"image build: {bed.timings['image_build']:.1f} s")
        print(f"boot: {bed.timings['boot']:.1f} s")
        print(f"work dir: {work}")
        print(f"connection vars: {hosts_yml}  (ansible-playbook -i <inventory> -i {hosts_yml}; "
              f"sitekit manage rehearsal SITE -i {hosts_yml} -- COMMAND)")
        for host in bed.hosts:
            print(f"  {host:6} {bed.ip(host):15} {shlex.join(bed.ssh_args(host))}")
        print("Ctrl-C tears the testbed down.", flush=True)
        while all(bed.running(host) for host in bed.hosts):
            time.sleep(1)
        down = [host for host in bed.hosts if not bed.running(host)]
        print(f"{', '.join(down)} stopped (see the logs in {work}); tearing down", flush=True)
        return 1
    except KeyboardInterrupt:
        print("\ntearing down...", flush=True)
        return 0
    except TestbedError as exc:
        print(f"testbed failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        bed.down()
        if not args.work:
            with contextlib.suppress(OSError):
                work.rmdir()  # left empty when up() failed early


def _cli_down(args: argparse.Namespace) -> int:
    if args.work:
        state = _load_json(Path(args.work) / STATE_FILE)
        if state is None:
            print(f"no testbed state in {args.work}", file=sys.stderr)
            return 1
    else:
        state = _load_json(RUN_DIR / f"{args.bridge}.json")
        if state is None:
            print(f"no testbed recorded on bridge {args.bridge}")
            return 0
    owner = state.get("owner_pid")
    if owner and owner != os.getpid() and _alive(owner) and not args.force:
        print(f"the testbed's owner (pid {owner}) is still running; stop it, or use --force",
              file=sys.stderr)
        return 1
    _teardown(state, {}, _log)
    bridge = state.get("bridge")
    if bridge:
        recorded = _load_json(RUN_DIR / f"{bridge}.json")
        if recorded and recorded.get("work") == state.get("work"):
            (RUN_DIR / f"{bridge}.json").unlink(missing_ok=True)
    print(f"torn down: {state.get('work')}")
    return 0


def _cli_status(args: argparse.Namespace) -> int:
    states = []
    if args.work:
        state = _load_json(Path(args.work) / STATE_FILE)
        states = [state] if state else []
    elif RUN_DIR.exists():
        states = [s for p in sorted(RUN_DIR.glob("*.json")) if (s := _load_json(p))]
    if not states:
        print("no testbed")
        return 0
    for state in states:
        owner = state.get("owner_pid")
        bridge = state.get("bridge")
        has_bridge = _cmd("ip", "link", "show", "dev", bridge, check=False).returncode == 0
        print(f"testbed in {state.get('work')}: owner pid {owner} "
              f"({'running' if owner and _alive(owner) else 'gone'}), bridge {bridge} "
              f"({'present' if has_bridge else 'absent'}) {state.get('bridge_address')}")
        for name, h in state.get("hosts", {}).items():
            up = _is_nspawn(h.get("pid"), h["machine"])
            ssh = up and _port_open(h["ip"], 22)
            print(f"  {name:6} {h['ip']:15} {'running' if up else 'stopped':8} "
                  f"{'ssh ok' if ssh else ''}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.rehearsal.testbed",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot lb, web1, web2 and db until Ctrl-C")
    up.add_argument("--work", help="work dir (empty or missing; default: a new temp dir)")
    up.add_argument("--cache", help=f"image cache (default: {default_cache_dir()})")
    up.add_argument("--bridge", default=DEFAULT_BRIDGE)
    up.add_argument("--subnet", default=DEFAULT_SUBNET)
    down = sub.add_parser("down", help="tear down a testbed left by a crashed run")
    down.add_argument("--work", help="its work dir (default: the one recorded on --bridge)")
    down.add_argument("--bridge", default=DEFAULT_BRIDGE)
    down.add_argument("--force", action="store_true", help="even if its owner still runs")
    status = sub.add_parser("status", help="show testbeds and their hosts")
    status.add_argument("--work")
    args = parser.parse_args(argv)
    return {"up": _cli_up, "down": _cli_down, "status": _cli_status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
