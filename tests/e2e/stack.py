"""What the end-to-end tests add to the harness (tests/harness.py): copies of the checkout, release
ids, and what a client may send.

The stack itself is the harness's: deployed by the real playbook with the local inventory into a
temporary root on free ports, so it never touches a developer's own ``make up`` stack, and
stopped as ``make down`` stops it at the end.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
from pathlib import Path

from tests.harness import (
    BIN,
    REPO,
    Run,
    Stack,
    children,
    cmdline,
    deployed_stack,
    free_port,
    sni,
)

__all__ = ["BIN", "ROOT", "Run", "Stack", "children", "cmdline", "deployed_stack", "free_port",
           "sni"]

ROOT = REPO


# Forwarding headers a client may send; nginx replaces or ignores every one of them.
SPOOFED_FORWARDING = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "443",
    "X-Forwarded-Ssl": "on",
    "X-Forwarded-Protocol": "ssl",
    "X-Real-IP": "203.0.113.9",
    "Forwarded": "for=203.0.113.9;host=evil.example;proto=https",
}


def checkout_copy(dest: Path) -> Path:
    """A checkout at ``dest`` whose inventories can be edited; the rest links to this one."""
    dest.mkdir()
    shutil.copytree(ROOT / "inventories", dest / "inventories")
    shutil.copytree(ROOT / "ansible", dest / "ansible", symlinks=True)
    for name in ("roles", "templates", "settings", "project", "sitekit", "manage.py",
                 "requirements.txt"):
        (dest / name).symlink_to(ROOT / name)
    return dest


RELEASE_ENTRIES = ("manage.py", "project", "settings", "sitekit", "requirements.txt", "templates",
                   "inventories", "pyproject.toml")


def release_checkout(dest: Path, note: str) -> Path:
    """A full copy of the checkout at ``dest`` that builds another release than this one (a
    comment naming *note* is added to the project): edit it further to make that release
    differ, or break."""
    dest.mkdir()
    for entry in RELEASE_ENTRIES:
        src = ROOT / entry
        if src.is_dir():
            shutil.copytree(src, dest / entry, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / entry)
    with open(dest / "project" / "__init__.py", "a") as f:
        f.write(f"\n# {note}\n")
    return dest


def release_id(project: Path) -> str:
    return subprocess.run([str(BIN / "sitekit"), "--project", str(project), "release", "id"],
                          capture_output=True, text=True, check=True).stdout.strip()


def masters(stack) -> dict[str, int]:
    """Site name -> pid of each gunicorn master that this stack's supervisord runs."""
    return stack.masters()


def brand(name: str) -> str:
    return importlib.import_module(f"settings.{name}").SITEKIT_BRAND["name"]
