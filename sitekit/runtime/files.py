"""Writing files whole or not at all: a reader sees the old content or the new, never a part.

Every file sitekit writes goes through here: the controller's tools (the catalogue editor, the
release builder) and what a release runs (the error pages of ``render_error_pages``).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: The names of the temporaries below: ``.<name>.<random>.tmp`` (:func:`replacing`) and
#: ``.sitekit-new-<name>-<random>`` (:func:`create_directory`), ``<random>`` as
#: :mod:`tempfile` makes it.
_TEMPORARY = re.compile(
    r"\A\.(?:(?P<file>.+)\.[a-z0-9_]{8}\.tmp|sitekit-new-(?P<dir>.+)-[a-z0-9_]{8})\Z"
)


def temporaries(directory: Path, name: str | None = None) -> list[Path]:
    """The temporaries :func:`replacing` and :func:`create_directory` made in ``directory``
    (only those for ``name`` when given), sorted. Their process removes them unless it was
    killed; a live writer's look the same, so only a caller that holds the lock every writer
    of ``directory`` takes may take them for leftovers."""
    try:
        entries = sorted(Path(directory).iterdir())
    except OSError:
        return []
    found = []
    for path in entries:
        match = _TEMPORARY.match(path.name)
        if match and (name is None or name in (match["file"], match["dir"])):
            found.append(path)
    return found


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def replacing(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file to write ``path``'s new content to. When the block ends, it replaces ``path`` in
    one rename, with ``mode`` (default: ``path``'s own, or a new file's under the umask) and,
    as root, ``path``'s owner; when the block raises, it is removed and ``path`` is untouched.
    """
    path = path.resolve()
    old = path.stat() if path.exists() else None
    if mode is None:
        mode = stat.S_IMODE(old.st_mode) if old else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if old is not None and os.geteuid() == 0:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: str | bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one rename; see
    :func:`replacing` for its mode and owner."""
    with replacing(path, mode) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


def create_directory(target: Path, files: Mapping[Path, str], staging: Path) -> None:
    """Create the directory ``target`` holding ``files`` (relative path -> text) in one rename.

    The files are written first in a new directory under ``staging`` (on the same filesystem
    as ``target``), which is removed if anything fails. Files and directories get the modes of
    new ones under the umask.
    """
    mask = _umask()
    tmp = Path(tempfile.mkdtemp(dir=staging, prefix=f".sitekit-new-{target.name}-"))
    try:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
            os.chmod(tmp / rel, 0o666 & ~mask)
        for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
            os.chmod(directory, 0o777 & ~mask)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
