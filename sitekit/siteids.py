"""What sitekit remembers between runs to read a large catalogue quickly: the SITE_IDs of the
settings modules, as :func:`sitekit.runtime.rules.settings_site_id` reads them, for modules
that have not changed since; and the data of a large catalogue text (:func:`remembered`).

Reading ten thousand modules (each opened and parsed) takes most of a second; a module whose
inode, size, modification and change times are those of the last reading is not read again.
The record is a JSON file in the user's cache directory (``$SITEKIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/sitekit``, else ``~/.cache/sitekit``), one per checkout; a module written less
than :data:`SETTLE` seconds before it was read is not remembered (a second write within the
same clock tick would not show in its times). Without a usable cache directory every module is
read, as before. The records only save work: deleting them changes nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from sitekit.runtime.rules import settings_site_id

#: Seconds a module must have been left unchanged before its reading is remembered.
SETTLE = 2.0
_VERSION = 1


def cache_dir() -> Path | None:
    """Where sitekit keeps what it remembers between runs (None: nowhere)."""
    base = os.environ.get("SITEKIT_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME")
        home = os.environ.get("HOME")
        if xdg:
            base = os.path.join(xdg, "sitekit")
        elif home:
            base = os.path.join(home, ".cache", "sitekit")
        else:
            return None
    return Path(base)


class SiteIds:
    """:func:`~sitekit.runtime.rules.settings_site_id` of the modules of one ``settings/``
    directory; :meth:`save` writes down what was read."""

    def __init__(self, settings_dir: Path):
        self.settings_dir = str(Path(settings_dir).resolve())
        self.path: Path | None = None
        self.known: dict[str, list] = {}
        self.changed = False
        where = cache_dir()
        if where is None:
            return
        digest = hashlib.sha256(self.settings_dir.encode()).hexdigest()[:20]
        self.path = where / f"site-ids-{digest}.json"
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(self.path.read_text(encoding="utf-8"))
            if (isinstance(record, dict) and record.get("version") == _VERSION
                    and record.get("dir") == self.settings_dir
                    and isinstance(record.get("modules"), dict)):
                self.known = record["modules"]

    def read(self, name: str) -> tuple[int | None, str | None] | None:
        """``settings_site_id`` of ``settings/<name>.py``; None when there is no such file."""
        path = os.path.join(self.settings_dir, f"{name}.py")
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        stamp = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        entry = self.known.get(name)
        if isinstance(entry, list) and len(entry) == 6 and entry[:4] == stamp:
            return entry[4], entry[5]
        site_id, reason = settings_site_id(path)
        settled = time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > SETTLE
        if settled:
            self.known[name] = [*stamp, site_id, reason]
            self.changed = True
        elif name in self.known:
            del self.known[name]
            self.changed = True
        return site_id, reason

    def save(self) -> None:
        """Write down the readings (never an error: the record only saves work)."""
        if self.path is None or not self.changed:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".site-ids-")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(json.dumps({"version": _VERSION, "dir": self.settings_dir,
                                          "modules": self.known}))
                os.replace(tmp, self.path)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            self.changed = False


#: Texts at least this long (a catalogue of some hundreds of sites) are remembered.
REMEMBER_FROM = 64 * 1024
_KEEP = 8  # texts remembered at most


def _plain_json(value, depth: int = 0) -> bool:
    """Whether JSON gives ``value`` back exactly (text keys; text, whole numbers, finite
    numbers, true/false, null, lists and mappings of them)."""
    if depth > 60:
        return False
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v, depth + 1) for k, v in value.items())
    return False


def _text_key(text: str, reader: bytes) -> str:
    return hashlib.sha256(reader + b"\0" + text.encode("utf-8", "surrogatepass")).hexdigest()


def remembered(text: str, reader: bytes):
    """The data remembered for ``text`` as read by the reader whose source is ``reader``
    (a fresh copy), else None."""
    found = remembered_reading(text, reader)
    return None if found is None else found[0]


def remembered_reading(text: str, reader: bytes):
    """(data, layout) remembered for ``text`` (:func:`remember`), else None."""
    where = cache_dir()
    if where is None or len(text) < REMEMBER_FROM:
        return None
    path = where / f"yaml-{_text_key(text, reader)}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        record = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(record, dict) and record.get("version") == _VERSION:
            return record["data"], record.get("layout")
    return None


def remember(text: str, reader: bytes, data, layout=None) -> None:
    """Remember the data ``text`` holds (when JSON keeps it exactly; never an error), and
    what the reader says of its ``layout`` (JSON data, or None)."""
    where = cache_dir()
    if where is None or len(text) < REMEMBER_FROM or not _plain_json(data):
        return
    with contextlib.suppress(OSError):
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"yaml-{_text_key(text, reader)}.json"
        fd, tmp = tempfile.mkstemp(dir=where, prefix=".yaml-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                # the C encoder
                out.write(json.dumps({"version": _VERSION, "data": data, "layout": layout}))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        older = sorted(where.glob("yaml-*.json"), key=lambda p: p.stat().st_mtime)
        for stale in older[:-_KEEP]:
            stale.unlink(missing_ok=True)
