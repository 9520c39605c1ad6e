"""One edit at a time: an advisory lock (``flock``) beside what an edit reads and writes.

An edit takes its locks before it reads anything and keeps them until it has written (or
refused): the catalogue's (``.sites.yml.lock`` beside ``sites.yml``) for every edit, and first
the codebase's (``.settings.lock`` beside ``settings/``) for an edit that may create a site's
code, which is where SITE_IDs are handed out. A second edit waits for the first, then reads
what the first wrote. The kernel drops the lock of a process that dies, however it dies.

The holder writes who it is into the lock file, so that a waiting edit can say whom it waits
for. A lock file is never removed: the next edit takes the same file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sitekit.editor.change import Source, read_source
from sitekit.editor.write import EditError
from sitekit.inventory import Inventory

#: How long an edit waits for another to finish, by default (an edit takes well under a
#: second; one that holds a lock longer is stuck, or waiting for a person).
WAIT_SECONDS = 30.0
_POLL_SECONDS = 0.05


def lock_path(path: Path) -> Path:
    """The lock file of ``path``: ``.<name>.lock`` beside it (beside the file a symbolic link
    points to, so that every way to the file takes the same lock, as the atomic write replaces
    that file)."""
    path = path.resolve()
    return path.with_name(f".{path.name}.lock")


def codebase_lock(project_root: Path) -> Path:
    """The lock of a checkout's sites' code (``settings/`` and ``project/sites/``)."""
    return lock_path(project_root / "settings")


def _open(path: Path, what: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except PermissionError:
        try:  # someone else's lock file: a read-only descriptor takes the lock as well
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass
        raise EditError(
            f"cannot lock {what}: {path} cannot be created or opened; nothing was written"
        ) from None
    except OSError as exc:
        raise EditError(
            f"cannot lock {what}: {path}: {exc.strerror or exc}; nothing was written"
        ) from None


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it (``pid 123 (sitekit site add ...)``)."""
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    line = text.splitlines()[0] if text else "another sitekit command"
    return "".join(ch if ch.isprintable() else "?" for ch in line)[:300]


@contextmanager
def held(
    path: Path,
    what: str,
    *,
    by: str,
    wait: float = WAIT_SECONDS,
    waiting: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the lock file ``path`` (of ``what``, as a message names it) for the block.

    ``by`` says who holds it (written into the file for anyone who waits). When another
    process holds it, ``waiting`` is told so once and the lock is tried again until ``wait``
    seconds have passed; then :class:`EditError` says whom it waited for.
    """
    fd = _open(path, what)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise EditError(
                    f"cannot lock {what}: {exc.strerror}; nothing was written"
                ) from None
            holder = _holder(fd)
            if waiting is not None:
                waiting(f"waiting for {holder} to finish editing {what} (at most {wait:g} s)")
            deadline = time.monotonic() + wait
            while True:
                time.sleep(_POLL_SECONDS)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise EditError(
                            f"{what} is still being edited by {_holder(fd)} after {wait:g} s; "
                            "nothing was written: run the command again when that one has "
                            "finished"
                        ) from None
        by = " ".join(by.split())  # one line, whatever the command line held
        _record(fd, f"pid {os.getpid()} ({by[:200]})\n")
        try:
            yield
        finally:
            _record(fd, "")
    finally:
        os.close(fd)  # releases the lock


def _record(fd: int, text: str) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode("utf-8"), 0)
    except OSError:
        pass  # a lock file opened read-only: the lock holds, its holder goes unnamed


@contextmanager
def editing(
    inv: Inventory,
    *,
    scaffolds: bool,
    by: str,
    wait: float = WAIT_SECONDS,
    waiting: Callable[[str], None] | None = None,
) -> Iterator[Source]:
    """Lock an environment's catalogue (and first, when the edit ``scaffolds`` a site's code,
    the codebase's) and read it: the block plans and writes its change while no other edit
    can. See :func:`held` for ``by``, ``wait`` and ``waiting``."""
    source = read_source(inv)  # the file exists and can be read before it is locked
    with ExitStack() as locks:
        if scaffolds:
            locks.enter_context(
                held(
                    codebase_lock(inv.project_root),
                    "the sites' code (settings/, project/sites/)",
                    by=by,
                    wait=wait,
                    waiting=waiting,
                )
            )
        locks.enter_context(held(lock_path(source.path), source.label, by=by, wait=wait,
                                 waiting=waiting))
        yield read_source(inv)
