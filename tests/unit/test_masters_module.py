"""The sitekit.deploy.masters module, run by ansible-playbook against a real supervisord whose
programs are real processes: small HTTP servers on unix sockets that answer /healthz with the
release they read (again on HUP, as a gunicorn master reloads). The module applies program files
as `supervisorctl update` does, starts what is stopped, reloads what it is told to, waits until
those masters serve, and in check mode changes nothing."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import xmlrpc.client
from pathlib import Path

import pytest
import yaml
from supervisor.xmlrpc import SupervisorTransport

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "ansible/collections/ansible_collections/sitekit/deploy/plugins/modules/masters.py"
BIN = Path(sys.executable).parent
USER, PASSWORD = "deployer", "s3cret"

# A master, shaped as a gunicorn master: a forked worker serves GET /healthz on a unix socket with
# the release its file holds; on HUP (unless --deaf) the master replaces that worker with a new
# one that reads the file again (with --slow, 1.5 s after the signal, its old worker answering
# meanwhile, as a gunicorn master's do until its re-exec); with --mute it never listens. Answers
# 400 to another Host and 301 without X-Forwarded-Proto https, as a Django site behind nginx does.
SERVER = r'''
import json, os, signal, socketserver, sys, time
from http.server import BaseHTTPRequestHandler

path, release_file, host, *flags = sys.argv[1:]
master = os.getpid()
if "--mute" in flags:
    signal.signal(signal.SIGHUP, lambda *a: None)
    while True:
        signal.pause()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Host") != host:
            status, body = 400, {}
        elif self.headers.get("X-Forwarded-Proto") != "https":
            status, body = 301, {}
        else:
            status, body = 200, {"release": release, "pid": master, "worker": os.getpid()}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

if os.path.exists(path):
    os.unlink(path)
server = socketserver.UnixStreamServer(path, Handler)

def spawn():
    global release
    release = open(release_file).read().strip()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        server.serve_forever()
        os._exit(0)
    return pid

worker, hupped = spawn(), False

def hup(signum, frame):
    global hupped
    hupped = True

def term(signum, frame):
    os.kill(worker, signal.SIGKILL)
    sys.exit(0)

signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, term)
while True:
    signal.pause()
    if hupped and "--deaf" not in flags:
        hupped = False
        if "--slow" in flags:
            time.sleep(1.5)
        os.kill(worker, signal.SIGKILL)
        os.waitpid(worker, 0)
        worker = spawn()
'''

# Laid out as Debian's packaged supervisord.conf is, inline comments included; the socket is
# found through %(here)s, and it asks for credentials (the module finds them here too).
CONF = """\
; supervisor config file

[unix_http_server]
file=%(here)s/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; sockef file mode (default 0700)
username={user}              ; (default is no username (open server))
password={password}          ; (default is no password (open server))

[supervisord]
logfile=%(here)s/supervisord.log ; (main log file;default $CWD/supervisord.log)
pidfile=%(here)s/supervisord.pid ; (supervisord pidfile;default supervisord.pid)
childlogdir=%(here)s            ; ('AUTO' child log dir, default $TEMP)
nodaemon=true

; the below section must remain in the config file for RPC
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock ; use a unix:// URL  for a unix socket

[include]
files = %(here)s/conf.d/*.conf
"""


def _load_module():
    spec = importlib.util.spec_from_file_location("sitekit_masters_module", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Host:
    """The supervisord and its masters: program files, release files, sockets."""

    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "supervisord.conf"
        self.socket = root / "supervisor.sock"
        self.include = root / "conf.d"
        self.server = root / "server.py"

    @property
    def rpc(self):
        """supervisor's own client (a new connection each time)."""
        return xmlrpc.client.ServerProxy(
            "http://127.0.0.1",
            transport=SupervisorTransport(USER, PASSWORD, f"unix://{self.socket}"),
        ).supervisor

    def sock(self, program: str) -> Path:
        return self.root / f"{program}.sock"

    def release_file(self, program: str) -> Path:
        return self.root / f"{program}.release"

    def master(self, program: str) -> dict:
        name = program.split("-", 1)[1]
        return {"name": name, "program": program, "socket": str(self.sock(program)),
                "probe_host": f"{name}.example", "scheme": "https", "kind": "site"}

    def program(self, program: str, *flags: str, release: str = "r1", autostart: bool = True,
                startsecs: int = 0, command: str | None = None) -> dict:
        """Write the program file of a master (and its release file); the master's entry."""
        master = self.master(program)
        self.release_file(program).write_text(release)
        command = command or " ".join([
            sys.executable, str(self.server), master["socket"], str(self.release_file(program)),
            master["probe_host"], *flags])
        (self.include / f"{program}.conf").write_text(textwrap.dedent(f"""\
            [program:{program}]
            command={command}
            autostart={str(autostart).lower()}
            autorestart=false
            startsecs={startsecs}
            startretries=0
            stopsignal=TERM
            stopwaitsecs=5
            """))
        return master

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(BIN / "supervisorctl"), "-c", str(self.conf), "-u", USER, "-p", PASSWORD, *args],
            capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def states(self) -> dict[str, tuple[str, int]]:
        return {i["name"]: (i["statename"], i["pid"]) for i in self.rpc.getAllProcessInfo()}

    def health(self, program: str) -> tuple[int, dict]:
        master = self.master(program)
        conn = http.client.HTTPConnection("localhost", timeout=5)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.connect(master["socket"])
        conn.request("GET", "/healthz", headers={"Host": master["probe_host"],
                                                 "X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        return response.status, body

    def serves(self, program: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = self.health(program)
                if status == 200:
                    return body
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def supervisord(tmp_path_factory):
    """One supervisord for the tests of this file."""
    host = Host(tmp_path_factory.mktemp("sv"))
    host.include.mkdir()
    host.server.write_text(SERVER)
    host.conf.write_text(CONF.format(user=USER, password=PASSWORD))
    proc = subprocess.Popen([str(BIN / "supervisord"), "-c", str(host.conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            assert host.rpc.getState()["statename"] == "RUNNING"
            break
        except OSError:
            assert proc.poll() is None, "supervisord exited"
            assert time.monotonic() < deadline, "supervisord did not come up"
            time.sleep(0.05)
    yield host
    host.rpc.stopAllProcesses()  # all at once (at its end supervisord stops one after another)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def host(supervisord):
    """The shared supervisord. A test's programs (each test's own names) stay, as supervisor
    runs them: the program files it has not applied are removed after the test."""
    yield supervisord
    known = {i["group"] for i in supervisord.rpc.getAllProcessInfo()}
    for path in supervisord.include.glob("*.conf"):
        if path.stem not in known:
            path.unlink()
    assert supervisord.rpc.reloadConfig() == [[[], [], []]]


def _play(tmp: Path, *tasks: dict, check: bool = False) -> list[dict]:
    """Run each task's arguments as one sitekit.deploy.masters task of one play; their results
    (a failing task does not stop the next)."""
    play = [{"name": "masters", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": f"masters {i}", "sitekit.deploy.masters": args, "ignore_errors": True,
         "check_mode": check}
        for i, args in enumerate(tasks)
    ]}]
    playbook = tmp / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json")
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    return [task["hosts"]["localhost"] for task in json.loads(done.stdout)["plays"][0]["tasks"]]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_update_start_and_reload_then_wait_until_the_masters_serve_the_release(tmp_path, host):
    keep, change, _gone, down, hup = (
        host.program(p) for p in ("u-keep", "u-change", "u-gone", "u-down", "u-hup"))
    host.ctl("update")
    host.ctl("stop", "u-down")
    before = {p: host.serves(p)["pid"] for p in ("u-keep", "u-change", "u-gone", "u-hup")}
    assert host.states()["u-down"][0] == "STOPPED"

    # the deploy: a new master, a changed program, a program file gone, a new release for all
    new = host.program("u-new", release="r2")
    for program in ("u-keep", "u-change", "u-down", "u-hup"):
        host.release_file(program).write_text("r2")
    host.program("u-change", "--changed", release="r2")
    (host.include / "u-gone.conf").unlink()
    masters = [keep, change, down, hup, new]
    applied, again = _play(
        tmp_path,
        {"conf": str(host.conf), "masters": masters, "reload": ["hup", "change", "down"],
         "wait": {"timeout": 20, "release": "r2"}},
        {"conf": str(host.conf), "masters": masters, "wait": {"release": "r2"}},
    )

    assert applied.get("failed") is not True, applied
    assert sorted(applied["started"]) == ["change", "new"]
    assert applied["restarted"] == ["down"]
    assert applied["reloaded"] == ["hup"]
    assert sorted(applied["touched"]) == ["change", "down", "hup", "new"]
    assert applied["removed"] == ["u-gone"]
    assert applied["changed"] is True and applied["waited"] >= 0
    # the wait returned once every touched master served r2: they do now, at once
    served = {p: host.health(p)[1] for p in ("u-keep", "u-change", "u-down", "u-hup", "u-new")}
    assert {p: body["release"] for p, body in served.items()} == {
        "u-keep": "r1", "u-change": "r2", "u-down": "r2", "u-hup": "r2", "u-new": "r2"}
    assert served["u-hup"]["pid"] == before["u-hup"]  # reloaded in place
    assert served["u-keep"]["pid"] == before["u-keep"]
    assert served["u-change"]["pid"] != before["u-change"]  # restarted on its new program
    states = host.states()
    assert "u-gone" not in states and not _alive(before["u-gone"])
    assert {p: states[p][0] for p in served} == dict.fromkeys(served, "RUNNING")

    # run again: nothing to apply, start or reload, nothing waited for
    assert again.get("failed") is not True, again
    assert again["changed"] is False
    assert [again[k] for k in ("started", "restarted", "reloaded", "touched", "removed")] == [
        [], [], [], [], []]
    assert again["waited"] == 0


def test_a_reloaded_master_counts_once_it_serves_from_a_new_worker(tmp_path, host):
    """Until a reloaded master has re-executed, its old workers still answer 200 with the same
    release (a pool that only lost a site): the wait is not fooled by them."""
    slow = host.program("s-slow", "--slow")
    host.ctl("update")
    old = host.serves("s-slow")
    (reloaded,) = _play(tmp_path, {"conf": str(host.conf), "masters": [slow], "reload": ["slow"],
                                   "wait": {"timeout": 20, "release": "r1"}})
    assert reloaded.get("failed") is not True, reloaded
    assert reloaded["reloaded"] == ["slow"] and reloaded["waited"] >= 1.4
    now = host.health("s-slow")[1]
    assert now["pid"] == old["pid"] and now["worker"] != old["worker"]


def test_check_mode_reports_what_would_happen_and_changes_nothing(tmp_path, host):
    run, off, hup = (host.program(p) for p in ("c-run", "c-off", "c-hup"))
    host.ctl("update")
    host.ctl("stop", "c-off")
    pids = {p: host.serves(p)["pid"] for p in ("c-run", "c-hup")}
    new = host.program("c-new")
    host.release_file("c-hup").write_text("r2")
    masters = [run, off, hup, new]
    elsewhere = tmp_path / "elsewhere.conf"
    elsewhere.write_text(f"[unix_http_server]\nfile={tmp_path}/none.sock ; not running\n")
    refusing = socket.socket(socket.AF_UNIX)
    refusing.bind(str(tmp_path / "refusing.sock"))  # not listening: connections are refused

    planned, fresh, refused, unconfigured = _play(
        tmp_path,
        {"conf": str(host.conf), "masters": masters, "reload": ["hup", "off"],
         "wait": {"timeout": 5, "release": "r2"}},
        # a host whose supervisord does not run yet: every master would start
        {"conf": str(elsewhere), "masters": masters, "reload": ["hup"]},
        {"socket": str(tmp_path / "refusing.sock"), "masters": masters},
        # nor is configured yet (sitekit plan before the first deploy)
        {"conf": str(tmp_path / "no-such-dir" / "supervisord.conf"), "masters": masters,
         "reload": ["hup"]},
        check=True,
    )
    refusing.close()
    assert planned.get("failed") is not True, planned
    assert (planned["started"], planned["restarted"], planned["reloaded"]) == (
        ["new"], ["off"], ["hup"])
    assert planned["changed"] is True and planned["waited"] == 0
    assert fresh.get("failed") is not True, fresh
    assert fresh["started"] == ["run", "off", "hup", "new"]
    assert fresh["reloaded"] == [] and fresh["changed"] is True
    assert refused.get("failed") is not True and refused["started"] == fresh["started"]
    assert unconfigured.get("failed") is not True, unconfigured
    assert unconfigured["started"] == fresh["started"] and unconfigured["reloaded"] == []

    states = host.states()
    assert "c-new" not in states and states["c-off"][0] == "STOPPED"
    assert {p: host.health(p)[1]["pid"] for p in pids} == pids
    assert host.health("c-hup")[1]["release"] == "r1"  # not sent HUP


def test_a_master_that_does_not_serve_or_start_fails_the_task_naming_it(tmp_path, host):
    masters = [host.program("f-fine"), host.program("f-deaf", "--deaf"),
               host.program("f-mute", "--mute")]
    broken = host.program("f-broken", autostart=False, startsecs=1,
                          command=f"{sys.executable} -c 'raise SystemExit(3)'")
    host.ctl("update")
    for master in masters:
        if master["name"] != "mute":
            host.serves(master["program"])  # has read r1
        host.release_file(master["program"]).write_text("r2")
    missing = tmp_path / "none.sock"

    began = time.monotonic()
    late, unstarted, unreachable, anonymous = _play(
        tmp_path,
        {"conf": str(host.conf), "masters": masters, "reload": ["fine", "deaf", "mute"],
         "wait": {"timeout": 1, "release": "r2"}},
        {"conf": str(host.conf), "masters": [broken, host.master("f-ghost")]},
        {"socket": str(missing), "masters": masters},
        {"socket": str(host.socket), "masters": masters},
    )
    took = time.monotonic() - began

    assert late["failed"] is True and late["reloaded"] == ["fine", "deaf", "mute"]
    assert set(late["late"]) == {"deaf", "mute"}
    assert "did not serve release r2" in late["msg"]
    # its old worker still answers, r1: a master that did not reload is not taken for one
    assert ("deaf (last: status 200, release 'r1', from a worker it had before the reload)"
            in late["msg"])
    assert "mute (last: no answer (No such file or directory))" in late["msg"]
    assert 1 <= late["waited"] < 2.5 and took > 1
    assert host.health("f-fine")[1]["release"] == "r2"
    # supervisor's words for a process that exits before startsecs (at once, or later), and for
    # a master it has no program of
    assert unstarted["failed"] is True and unstarted["restarted"] == ["broken", "ghost"]
    assert re.fullmatch(r"master broken \(program f-broken\) did not start: "
                        r"(SPAWN_ERROR|ABNORMAL_TERMINATION): f-broken; "
                        r"master ghost \(program f-ghost\) did not start: BAD_NAME: f-ghost",
                        unstarted["msg"]), unstarted["msg"]
    assert unreachable["failed"] is True
    assert unreachable["msg"] == (
        f"cannot reach supervisord at unix socket {missing}: No such file or directory")
    assert anonymous["failed"] is True
    assert anonymous["msg"] == (
        f"supervisord at unix socket {host.socket} wants a username and password (conf names none)")


# Debian's /etc/supervisor/supervisord.conf (package supervisor 4.2.5-1), verbatim.
DEBIAN_CONF = """\
; supervisor config file

[unix_http_server]
file=/var/run/supervisor.sock   ; (the path to the socket file)
chmod=0700                       ; sockef file mode (default 0700)

[supervisord]
logfile=/var/log/supervisor/supervisord.log ; (main log file;default $CWD/supervisord.log)
pidfile=/var/run/supervisord.pid ; (supervisord pidfile;default supervisord.pid)
childlogdir=/var/log/supervisor            ; ('AUTO' child log dir, default $TEMP)

; the below section must remain in the config file for RPC
; (supervisorctl/web interface) to work, additional interfaces may be
; added by defining them in separate rpcinterface: sections
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///var/run/supervisor.sock ; use a unix:// URL  for a unix socket

; The [include] section can just contain the "files" setting.  This
; setting can list multiple files (separated by whitespace or
; newlines).  It can also contain wildcards.  The filenames are
; interpreted as relative to this file.  Included files *cannot*
; include files themselves.

[include]
files = /etc/supervisor/conf.d/*.conf
"""


def test_the_control_socket_and_credentials_are_read_as_supervisorctl_reads_them(
        tmp_path, monkeypatch):
    masters = _load_module()
    debian = tmp_path / "supervisord.conf"
    debian.write_text(DEBIAN_CONF)
    assert masters.control_socket(debian) == ("/var/run/supervisor.sock", None, None)
    # [supervisorctl] serverurl before [unix_http_server] file
    debian.write_text(DEBIAN_CONF.replace("serverurl=unix:///var/run/", "serverurl=unix:///run/"))
    assert masters.control_socket(debian) == ("/run/supervisor.sock", None, None)

    # [unix_http_server] when supervisorctl's serverurl is not a unix socket; %(here)s; auth
    local = tmp_path / "etc" / "supervisord.conf"
    local.parent.mkdir()
    local.write_text(textwrap.dedent("""\
        [unix_http_server]
        file = %(here)s/../run/supervisor.sock ; beside etc
        username = deployer
        password = %(ENV_SITEKIT_TEST_PASSWORD)s
        [supervisorctl]
        serverurl = http://localhost:9001
        """))
    monkeypatch.setenv("SITEKIT_TEST_PASSWORD", "s3cret")
    assert masters.control_socket(local) == (
        f"{tmp_path}/run/supervisor.sock", "deployer", "s3cret")

    hashed = tmp_path / "hashed.conf"
    hashed.write_text("[unix_http_server]\nfile=/s.sock\nusername=a\npassword={SHA}ab12\n"
                      "[supervisorctl]\nusername=b\npassword=c\n")
    assert masters.control_socket(hashed) == ("/s.sock", "b", "c")
    hashed.write_text("[unix_http_server]\nfile=/s.sock\nusername=a\npassword={SHA}ab12\n")
    assert masters.control_socket(hashed) == ("/s.sock", None, None)

    for text in ("[supervisord]\nlogfile=x\n", "[unix_http_server]\nfile=%(nowhere)s/s\n"):
        hashed.write_text(text)
        with pytest.raises(masters.SupervisorError, match=str(hashed)):
            masters.control_socket(hashed)
