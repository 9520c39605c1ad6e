"""Helpers for the end-to-end tests: a throwaway local stack deployed by the real playbook.

The stack is deployed by the real playbook with the local inventory into a temporary root on a
free port, so it never touches a developer's own ``make up`` stack, and is stopped with
``make down`` at the end.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.load import Load

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = ROOT / "ansible" / "site.yml"
INVENTORY = ROOT / "inventories" / "local"


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def masters(stack) -> dict[str, int]:
    """Site name -> pid of each gunicorn master that this stack's supervisord runs."""
    supervisord = int((stack.root / "run" / "supervisord.pid").read_text())
    found = {}
    for pid in children(supervisord):
        title = cmdline(pid)
        assert title.startswith("gunicorn: master [sitekit-"), title
        name = title.split("[sitekit-", 1)[1].rstrip("] ")
        assert name not in found, f"two masters for site {name}"
        found[name] = pid
    return found


def catalogue() -> list[dict]:
    data = yaml.safe_load((INVENTORY / "group_vars" / "all" / "sites.yml").read_text())
    return data["sitekit_sites"]


def brand(name: str) -> str:
    return importlib.import_module(f"settings.{name}").SITEKIT_BRAND["name"]


@dataclass
class Run:
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        match = re.search(r"localhost\s+:\s+(ok=.*)$", self.output, re.MULTILINE)
        assert match, f"no PLAY RECAP in output:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", match.group(1))}


def sni(host: str) -> str:
    """The server name a client sends for a Host header: lower-case, no port, no trailing dot."""
    name = host.lower()
    if name.startswith("["):
        return name
    return name.rsplit(":", 1)[0].rstrip(".") if ":" in name else name.rstrip(".")


@contextlib.contextmanager
def deployed_stack(root: Path, *extra: str):
    """A stack deployed into *root* on free ports (extra ``ansible-playbook`` arguments given),
    stopped with ``make down`` afterwards."""
    port = free_port()
    tls_port = next(p for p in iter(free_port, None) if p != port)
    stack = Stack(root, port, tls_port)
    try:
        stack.first_run = stack.playbook(*extra)
        assert stack.first_run.returncode == 0, stack.first_run.output[-6000:]
        yield stack
    finally:
        subprocess.run(["make", "-s", "down", f"STACK={root}", f"VENV={BIN.parent}"],
                       cwd=ROOT, capture_output=True, timeout=120, check=False)


@dataclass
class Stack:
    """A deployed stack: http on ``port`` (redirects, ACME challenges), https on ``tls_port``."""

    root: Path
    port: int
    tls_port: int = 0

    @property
    def ca(self) -> Path:
        """The environment's CA certificate, which issued every self-signed site's."""
        return self.root / "etc" / "tls-ca" / "ca.pem"

    def tls_context(self, minimum: ssl.TLSVersion | None = None,
                    maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client context that verifies the server's certificate with the stack's CA."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if minimum:
            context.minimum_version = minimum
        if maximum:
            context.maximum_version = maximum
        return context

    def vars(self) -> list[str]:
        return ["-e", f"sitekit_root={self.root}", "-e", f"sitekit_public_port={self.port}",
                "-e", f"sitekit_tls_port={self.tls_port}"]

    def playbook(self, *extra: str, project: Path = ROOT) -> Run:
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        cmd = [
            str(BIN / "ansible-playbook"), "-i", str(INVENTORY), str(PLAYBOOK), *self.vars(),
            "-e", f"sitekit_project_dir={project}", *extra,
        ]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900, check=False)
        return Run(proc.returncode, proc.stdout + proc.stderr)

    def plan(self, *extra: str, project: Path = ROOT) -> subprocess.CompletedProcess:
        """``sitekit plan local`` of this stack (its root, port and project)."""
        cmd = [
            str(BIN / "sitekit"), "--project", str(project), "plan", "local", *self.vars(),
            "-e", f"sitekit_project_dir={project}", *extra,
        ]
        return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900,
                              check=False)

    def request(self, host: str, path: str = "/", method: str = "GET",
                headers: dict[str, str] | None = None, scheme: str = "https",
                server_name: str | None = None):
        """(status, headers, body) of one request with this Host header: over https by
        default (SNI = the host's name, unless *server_name*; the certificate verified with
        the stack's CA for that name), or over plain http with ``scheme="http"``."""
        if scheme == "http":
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        else:
            conn = self.connection(host, server_name)
        try:
            conn.request(method, path, headers={"Host": host, **(headers or {})})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read().decode()
        finally:
            conn.close()

    def connection(self, host: str, server_name: str | None = None) -> http.client.HTTPConnection:
        """An https connection to this stack for *host*, connected and verified (SNI = the
        host's name, unless *server_name*)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.tls_port, timeout=30,
                                           context=self.tls_context())
        conn.sock = self.tls_socket(server_name or sni(host))
        return conn

    def load(self, sites: list[dict], clients: int = 4) -> Load:
        """A bounded load (bench/load.py) over https on every domain of *sites*."""
        return Load(self.tls_port, [d for site in sites for d in site["domains"]],
                    clients=clients, connect=self.connection)

    def tls_socket(self, server_name: str, context: ssl.SSLContext | None = None):
        """A TLS connection to the https port, verified for *server_name* (sent as SNI)."""
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=30)
        try:
            return (context or self.tls_context()).wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise

    def raw(self, request: str,
            server_name: str | None = None) -> tuple[int, dict[str, str]] | None:
        """Send *request* as written (over TLS with this SNI when *server_name* is given): the
        status and headers, or None when nginx closed the connection without answering (444)."""
        conn = (self.tls_socket(server_name) if server_name
                else socket.create_connection(("127.0.0.1", self.port), timeout=30))
        with conn:
            conn.sendall(request.encode("latin-1"))
            data = b""
            try:
                while chunk := conn.recv(65536):
                    data += chunk
            except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
                pass
        if not data:
            return None
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        return int(head[0].split()[1]), dict(line.split(": ", 1) for line in head[1:])

    def over_socket(self, site: str, host: str, path: str, headers: dict[str, str]):
        """GET straight from a master's socket, as nginx forwards a request: status, headers."""
        conn = http.client.HTTPConnection("localhost", timeout=30)
        conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.sock.connect(str(self.root / "run" / site / "gunicorn.sock"))
        try:
            conn.request("GET", path, headers={"Host": host, **headers})
            resp = conn.getresponse()
            resp.read()
            return resp.status, dict(resp.getheaders())
        finally:
            conn.close()

    def health(self, host: str) -> dict:
        status, _, body = self.request(host, "/healthz")
        assert status == 200, body
        return json.loads(body)

    def pid(self, name: str) -> int:
        return int((self.root / "run" / name / "gunicorn.pid").read_text().split()[0])
