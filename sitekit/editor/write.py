"""Writing a planned change: a new site's files first, then the catalogue, all or nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from sitekit.editor.change import Change
from sitekit.runtime.files import create_directory, temporaries, write_atomic


class EditError(Exception):
    """An edit that was planned but could not be written."""


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _create_files(root: Path, files: dict[str, str], made: list[Path]) -> list[Path]:
    """Create a new site's files: its package appears in one rename, then its settings module
    (so a half-written site is never importable). What it creates is recorded in ``made``."""
    created: list[Path] = []
    packages: dict[Path, dict[Path, str]] = {}
    singles: dict[Path, str] = {}
    for rel, text in files.items():
        parts = Path(rel).parts
        if parts[:2] == ("project", "sites") and len(parts) > 3:
            packages.setdefault(root.joinpath(*parts[:3]), {})[Path(*parts[3:])] = text
        else:
            singles[root / rel] = text
    for target, members in packages.items():
        if target.exists():
            raise EditError(f"{target} appeared while this command ran")
        create_directory(target, members, staging=root)
        made.append(target)
        created += [target / rel for rel in members]
    for path, text in singles.items():
        if path.exists():
            raise EditError(f"{path} appeared while this command ran")
        write_atomic(path, text)
        made.append(path)
        created.append(path)
    return created


def remove_leftovers(change: Change, *, code: bool) -> list[Path]:
    """Remove what an interrupted edit (a killed process) left where ``change`` writes: the
    catalogue's temporary files and, with ``code``, those of the sites' code (settings modules
    in ``settings/``, packages staged in the checkout). Returns what was removed.

    Only while holding the locks of :func:`sitekit.editor.lock.editing` (``code``: the
    codebase's too): then no other edit is writing there, and each of these temporaries is a
    leftover.
    """
    source = change.source
    found = temporaries(source.path.parent, source.path.name)
    if code:
        root = source.project_root
        found += [p for p in temporaries(root) if p.name.startswith(".sitekit-new-")]
        found += temporaries(root / "settings")
    removed = []
    for path in found:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue  # left for the next edit; it is never read
        removed.append(path)
    return removed


def apply(change: Change) -> list[Path]:
    """Write a planned change: new files first, then the catalogue. Returns what was written."""
    if not change.ok:
        raise EditError("a change with problems cannot be written")
    source = change.source
    try:
        current = source.path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"{source.label} cannot be read again: {exc}") from None
    if current != source.text:
        raise EditError(
            f"{source.label} changed while this command ran; nothing was written: run it again"
        )
    written: list[Path] = []
    made: list[Path] = []
    try:
        if change.files:
            written += _create_files(source.project_root, change.files, made)
        if change.after != source.text:
            write_atomic(source.path, change.after)
            written.append(source.path)
    except (OSError, EditError) as exc:
        _remove(made)  # all or nothing: no new site's code without its catalogue entry
        message = f"writing failed: {exc}" if isinstance(exc, OSError) else str(exc)
        raise EditError(f"{message}; nothing was written") from None
    return written
