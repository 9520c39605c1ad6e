"""Releases: the codebase every master runs, identified by a hash of its content.

A release is ``manage.py``, ``project/``, ``settings/``, ``sitekit/`` and ``requirements.txt``.
Its id is the first 12 hex digits of a SHA-256 over the paths, executable bits and contents of
those files, so the same tree always gives the same id and a re-run deploys nothing new.
:func:`build` writes a reproducible ``<id>.tar.gz`` (with a ``RELEASE`` file holding the id)
and a wheelhouse of the pinned requirements, so hosts install offline.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from sitekit.runtime.files import replacing, write_atomic

RELEASE_PATHS = ("manage.py", "project", "settings", "sitekit", "requirements.txt")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")
ID_LENGTH = 12


class ReleaseError(Exception):
    """A release that cannot be built."""


@dataclass
class Built:
    release_id: str
    archive: Path
    wheelhouse: Path
    changed: bool
    #: what the wheelhouse's compiled wheels need: the interpreter and platform that built it
    python_target: str = ""

    @property
    def wheelhouse_archive(self) -> Path:
        """The wheelhouse as one tar (:func:`write_wheelhouse_archive`), next to it."""
        return wheelhouse_archive(self.wheelhouse)

    def as_dict(self) -> dict[str, object]:
        return {
            "release_id": self.release_id,
            "archive": str(self.archive),
            "wheelhouse": str(self.wheelhouse),
            "wheelhouse_archive": str(self.wheelhouse_archive),
            "installer": installer(self.wheelhouse),
            # each host's release_python must print python_target with python_target_code
            "python_target": self.python_target,
            "python_target_code": PYTHON_TARGET_CODE,
            "changed": self.changed,
        }


def release_files(root: Path) -> list[Path]:
    """The files of a release, relative to ``root``, in a stable order."""
    found: list[Path] = []
    for entry in RELEASE_PATHS:
        path = root / entry
        if path.is_file():
            found.append(Path(entry))
            continue
        if not path.is_dir():
            raise ReleaseError(f"{path} is missing: a release needs {', '.join(RELEASE_PATHS)}")
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in filenames:
                if not name.endswith(SKIP_SUFFIXES):
                    found.append(Path(dirpath, name).relative_to(root))
    return sorted(found, key=lambda p: p.as_posix())


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)


def release_id(root: Path) -> str:
    digest = hashlib.sha256()
    for rel in release_files(root):
        full = root / rel
        digest.update(rel.as_posix().encode())
        digest.update(b"\0x\0" if _executable(full) else b"\0-\0")
        digest.update(hashlib.sha256(full.read_bytes()).digest())
    return digest.hexdigest()[:ID_LENGTH]


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def write_archive(root: Path, dest: Path, rid: str) -> None:
    """Write a reproducible gzip'd tar of the release, with ``RELEASE`` holding its id."""
    with (
        replacing(dest) as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in release_files(root):
            full = root / rel
            _add(tar, rel.as_posix(), full.read_bytes(), 0o755 if _executable(full) else 0o644)
        _add(tar, "RELEASE", f"{rid}\n".encode(), 0o644)


#: The installer a host runs from the wheelhouse (``python pip-….whl/pip install``): the release's
#: virtualenv is made without pip (``venv --without-pip``, 0.1 s where installing pip into it
#: took 4 to 5 s on every host and release), and needs none to run. It runs on the hosts'
#: Python (``release_python``): 3.10 or later.
INSTALLER = "pip==26.3"


def installer(wheelhouse: Path) -> str:
    """The installer's wheel in ``wheelhouse`` (its file name), '' when it has none."""
    name = INSTALLER.split("==")[0]
    found = sorted(p.name for p in wheelhouse.glob(f"{name}-*.whl"))
    return found[-1] if found else ""


#: Python code printing what an interpreter's compiled wheels must be built for (its
#: implementation and version, and its platform), e.g. ``cpython-311-linux-x86_64``: the
#: wheelhouse is built by the control machine's Python for its own, and each host's
#: ``release_python`` must be the same (the release role checks it before installing).
PYTHON_TARGET_CODE = ("import sys, sysconfig; "
                      "print(sys.implementation.cache_tag + '-' + sysconfig.get_platform())")


def python_target(python: str) -> str:
    """What ``python`` prints with :data:`PYTHON_TARGET_CODE`."""
    try:
        proc = subprocess.run([python, "-c", PYTHON_TARGET_CODE], capture_output=True,
                              text=True, check=False)
    except OSError as exc:
        raise ReleaseError(f"cannot run {python} to learn what it builds wheels for: "
                           f"{exc.strerror or exc}") from None
    target = proc.stdout.strip()
    if proc.returncode != 0 or not target:
        raise ReleaseError(f"cannot run {python} to learn what it builds wheels for: "
                           f"{proc.stderr.strip() or 'no output'}")
    return target


def build_wheelhouse(root: Path, out: Path, python: str, target: str) -> tuple[Path, bool]:
    """A wheelhouse for ``requirements.txt`` and the installer, built by ``python`` for its
    interpreter and platform (``target``: :func:`python_target`), keyed by their hash and
    built once."""
    requirements = root / "requirements.txt"
    key = hashlib.sha256(requirements.read_bytes() + f"\n{INSTALLER}\n{target}\n".encode()
                         ).hexdigest()[:ID_LENGTH]
    wheelhouse = out / f"wheelhouse-{key}"
    marker = wheelhouse / ".complete"
    if marker.exists():
        return wheelhouse, False
    wheelhouse.mkdir(parents=True, exist_ok=True)
    cmd = [python, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
           "--wheel-dir", str(wheelhouse), "-r", str(requirements), INSTALLER]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ReleaseError(
            f"building the wheelhouse failed ({' '.join(cmd)}):\n{proc.stderr.strip()}"
        )
    if not installer(wheelhouse):
        raise ReleaseError(f"building the wheelhouse left no {INSTALLER} wheel in {wheelhouse}")
    write_atomic(wheelhouse / "requirements.txt", requirements.read_bytes())
    write_atomic(marker, "ok\n")
    return wheelhouse, True


def wheelhouse_archive(wheelhouse: Path) -> Path:
    return wheelhouse.with_name(f"{wheelhouse.name}.tar")


def write_wheelhouse_archive(wheelhouse: Path, again: bool = False) -> bool:
    """The wheelhouse as one uncompressed tar (its wheels are compressed already) of its
    directory, its ``.complete`` marker last: what a host unpacks in one step, once (a copy of
    the directory took one module call per wheel, 14 s per deploy of a new release). Written
    when missing, or ``again``; whether it was."""
    dest = wheelhouse_archive(wheelhouse)
    if dest.exists() and not again:
        return False
    names = sorted(p.name for p in wheelhouse.iterdir() if p.is_file() and p.name != ".complete")
    with replacing(dest) as raw, tarfile.open(fileobj=raw, mode="w",
                                              format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(wheelhouse.name)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        tar.addfile(info)
        for name in [*names, ".complete"]:
            _add(tar, f"{wheelhouse.name}/{name}", (wheelhouse / name).read_bytes(), 0o644)
    return True


def build(root: Path, out: Path, python: str) -> Built:
    out.mkdir(parents=True, exist_ok=True)
    rid = release_id(root)
    archive = out / f"{rid}.tar.gz"
    changed = False
    if not archive.exists():
        write_archive(root, archive, rid)
        changed = True
    target = python_target(python)
    wheelhouse, wh_changed = build_wheelhouse(root, out, python, target)
    # a wheelhouse built again (its directory removed) gets a new tar too
    wh_changed = write_wheelhouse_archive(wheelhouse, again=wh_changed) or wh_changed
    return Built(rid, archive, wheelhouse, changed or wh_changed, target)
