"""What a site's master receives from nginx: Host and X-Forwarded-* are nginx's, not the client's.

The main configuration and a site's server block are rendered by Ansible from the role's
defaults and the model the preflight resolves, as a deploy renders them, and served by a real
nginx in front of a unix socket that answers with the headers it received. Requests come
from 127.0.0.1 (a client) and from 127.0.0.2 (an lb, when the configuration trusts it).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
LB = "127.0.0.2"
CLIENT = "127.0.0.1"
SPOOFED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "evil.example",
}

PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {repo}/roles/nginx/defaults/main.yml
    - {repo}/roles/nginx/vars/main.yml
  tasks:
    # the one model of what the site becomes, as the deploy's preflight resolves it
    - ansible.builtin.import_role:
        name: sitekit
        tasks_from: preflight
    - ansible.builtin.file:
        path: "{{{{ item }}}}"
        state: directory
        mode: "0700"
      loop: ["{{{{ nginx_sites_dir }}}}", "{{{{ nginx_log_dir }}}}", "{{{{ nginx_temp_dir }}}}",
             "{{{{ (sitekit_masters | first).run_dir }}}}"]
    - ansible.builtin.template:
        src: {repo}/templates/nginx/nginx.conf.j2
        dest: "{{{{ nginx_conf }}}}"
        mode: "0644"
    - ansible.builtin.template:
        src: {repo}/templates/nginx/site.conf.j2
        dest: "{{{{ nginx_sites_dir }}}}/{{{{ site.server_block }}}}"
        mode: "0644"
      vars:
        site: "{{{{ sitekit_present_sites | first }}}}"
"""


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the headers it arrived with, as JSON."""

    def do_GET(self):
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _From(http.client.HTTPConnection):
    """An HTTP connection from a given loopback address."""

    def __init__(self, source: str, port: int):
        super().__init__("127.0.0.1", port, timeout=10, source_address=(source, 0))


@pytest.fixture
def nginx_with(tmp_path):
    """Start nginx with a site whose web hosts trust the given lbs: ``nginx_with([LB])``."""
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed (make system-deps installs it)")
    started = []

    def start(trusted: list[str]) -> int:
        root = tmp_path / f"root{len(started)}"
        port = _free_port()
        playbook = tmp_path / f"render{len(started)}.yml"
        playbook.write_text(PLAYBOOK.format(repo=REPO))
        overrides = {
            "ansible_python_interpreter": sys.executable,
            "sitekit_root": str(root), "sitekit_mode": "local", "sitekit_env": "test",
            "sitekit_public_port": port, "sitekit_project_dir": str(REPO),
            "sitekit_secret_key_base": "k" * 40,
            "sitekit_sites": [{"name": "harbor", "domains": ["harbor.test", "www.harbor.test"]}],
            "nginx_flavour": "web", "nginx_trusted_proxies": trusted,
            # plain http, as a web host behind an lb serves (TLS terminates at the lb)
            "sitekit_tls": "off",
            "nginx_user": "root" if os.geteuid() == 0 else "",
            "nginx_server_names_hash": {"max_size": 512, "bucket_size": 64},
        }
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"),
                   ANSIBLE_NOCOLOR="1")
        run = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
             "-e", json.dumps(overrides)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

        server = _UnixServer(str(root / "run" / "harbor" / "gunicorn.sock"), _Echo)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        conf, log = root / "etc" / "nginx" / "nginx.conf", root / "log" / "nginx" / "error.log"
        proc = subprocess.run([NGINX, "-c", str(conf), "-e", str(log)],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        started.append((server, conf, log))
        return port

    yield start
    for server, conf, log in started:
        subprocess.run([NGINX, "-c", str(conf), "-e", str(log), "-s", "stop"],
                       capture_output=True, check=False)
        server.shutdown()
        server.server_close()


def received(port: int, source: str, headers: dict[str, str], host: str = "harbor.test"):
    """The headers the site's socket received for a GET from *source*."""
    conn = _From(source, port)
    try:
        conn.request("GET", "/", headers={"Host": host, **headers})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        return json.loads(resp.read())
    finally:
        conn.close()


def test_a_clients_forwarded_headers_are_replaced_by_nginxs(nginx_with):
    port = nginx_with([])
    for source in (CLIENT, LB):  # without an lb group, no address is trusted
        seen = received(port, source, SPOOFED, host="WWW.Harbor.Test.")
        assert seen["host"] == "www.harbor.test"
        assert seen["x-forwarded-for"] == source
        assert seen["x-forwarded-proto"] == "http"
        assert "x-forwarded-host" not in seen


def test_only_a_trusted_lb_says_which_scheme_and_client(nginx_with):
    port = nginx_with([LB])
    # from the lb: its client's address and the scheme the lb received the request with
    seen = received(port, LB, {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"})
    assert (seen["x-forwarded-for"], seen["x-forwarded-proto"]) == ("198.51.100.7", "https")
    seen = received(port, LB, {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "http"})
    assert seen["x-forwarded-proto"] == "http"
    assert "x-forwarded-host" not in received(port, LB, SPOOFED)
    # from anyone else reaching a web host directly: nginx's own values
    seen = received(port, CLIENT, SPOOFED)
    assert (seen["x-forwarded-for"], seen["x-forwarded-proto"]) == (CLIENT, "http")
    assert "x-forwarded-host" not in seen
