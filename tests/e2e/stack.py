"""What the end-to-end tests add to the harness (tests/harness.py): copies of the checkout, release
ids, and what a client may send.

The stack itself is the harness's: deployed by the real playbook with the local inventory into a
temporary root on free ports, so it never touches a developer's own ``make up`` stack, and
stopped as ``make down`` stops it at the end.
"""

from __future__ import annotations

import http.cookies
import importlib
import re
import shutil
import subprocess
import uuid
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


class AdminSession:
    """A person at a site's admin over https through nginx: cookies kept, CSRF tokens read from
    the forms, files posted as a browser posts them (multipart)."""

    def __init__(self, stack, host: str):
        self.stack, self.host, self.cookies = stack, host, {}

    def request(self, method: str, path: str, body: bytes | None = None,
                content_type: str | None = None) -> tuple[int, dict[str, str], str]:
        headers = {"Host": self.host, "Referer": f"https://{self.host}{path}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if content_type:
            headers["Content-Type"] = content_type
        conn = self.stack.connection(self.host)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            for name, value in resp.getheaders():
                if name.lower() == "set-cookie":
                    for morsel in http.cookies.SimpleCookie(value).values():
                        self.cookies[morsel.key] = morsel.value
            return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def csrf(self, path: str) -> str:
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body[:500])
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)

    def post(self, path: str, fields: dict[str, str],
             files: dict[str, tuple[str, bytes]] | None = None):
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in {"csrfmiddlewaretoken": self.csrf(path), **fields}.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
                         f"\r\n\r\n{value}\r\n".encode())
        for name, (filename, data) in (files or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                         f'filename="{filename}"\r\nContent-Type: application/octet-stream'
                         "\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, f"multipart/form-data; boundary={boundary}")

    def login(self, username: str, password: str):
        return self.post("/admin/login/?next=/admin/",
                         {"username": username, "password": password, "next": "/admin/"})
