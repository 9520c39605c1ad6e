"""What the end-to-end and scale tests and the benchmarks share to run sitekit for real.

- free loopback ports;
- processes: figures from ``/proc`` (state, children, process groups, PSS, CPU time), processes
  started in their own session and stopped with their whole process group;
- ``ansible-playbook`` runs and what their output says (the PLAY RECAP, the task banners);
- the throwaway stack: deployed by the real playbook (``ansible/site.yml``) with the local
  inventory into a temporary root on free ports, stopped as ``make down`` stops it;
- parts of the real playbook on throwaway roots: ``ansible/site.yml``'s preflight and the plays
  of some of its roles, imported as site.yml imports them (the nginx role's configuration for a
  catalogue of any size, the masters' gunicorn configuration), on one or several local hosts;
- the Django release a benchmark's own masters serve: its environment and a sqlite database
  prepared as the release role prepares the shared one (migrate, sync the sites, seed);
- HTTP to a unix socket or a loopback port, over TLS verified with a stack's CA.

Nothing here knows what the roles do: whatever they render is read back from the files they
wrote and from variables Ansible resolved.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import socketserver
import ssl
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = (REPO / ".venv" / "bin") if (REPO / ".venv" / "bin" / "ansible-playbook").exists() \
    else Path(sys.executable).parent
ANSIBLE_CFG = REPO / "ansible" / "ansible.cfg"
SITE_YML = REPO / "ansible" / "site.yml"
LOCAL_INVENTORY = REPO / "inventories" / "local"
SITES_YML = Path("inventories", "local", "group_vars", "all", "sites.yml")  # in a checkout

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class HarnessError(Exception):
    """Something the harness runs failed: no valid test or measurement can follow."""


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to anything but 0/false/empty, as CI services set
    it and .ci/run does)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> None:
    """A prerequisite of a test is missing: skipped with the reason on a developer's machine; a
    failure in CI, whose machine has everything (a skip there is a broken prerequisite)."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: this machine must run it, so it fails, not skips)",
                    pytrace=False)
    pytest.skip(reason)


def free_port(*taken: int) -> int:
    """A free TCP port on 127.0.0.1, none of *taken*."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            return port


# --- /proc ------------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, is [0])."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        data = f.read()
    # The command name is parenthesised and may contain anything: split after it.
    return data[data.rindex(")") + 2 :].split()


def alive(pid: int | None) -> bool:
    """Whether *pid* exists and is neither a zombie nor dead."""
    if not pid:
        return False
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError, ValueError):
        return False


def children(pid: int) -> list[int]:
    """Live children of *pid* (its workers, for a gunicorn or nginx master)."""
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                found.update(int(c) for c in f.read().split())
        return sorted(found)
    except FileNotFoundError:
        pass  # gone, or a kernel without CONFIG_PROC_CHILDREN: scan /proc for the parent pid
    return _pids_where(1, pid)


def group_pids(pgid: int) -> list[int]:
    """Processes whose process group is *pgid* (a process started in its own session)."""
    return _pids_where(2, pgid)


def _pids_where(index: int, value: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat_fields(int(entry))[index]) == value:
                    pids.append(int(entry))
    return sorted(pids)


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def pid_from(path: Path) -> int | None:
    """The pid a pid file holds, or None."""
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def smaps_rollup(pid: int) -> dict[str, int]:
    """The kB figures of /proc/<pid>/smaps_rollup."""
    figures = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                figures[key] = int(parts[0])
    return figures


def cpu_seconds(pid: int | None, reaped_children: bool = False) -> float:
    """User + system CPU time of *pid* (0 without one), with *reaped_children* also that of
    the children it has waited for (cutime, cstime)."""
    if pid is None:
        return 0.0
    f = stat_fields(pid)
    ticks = int(f[11]) + int(f[12])
    if reaped_children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLOCK_TICKS


def limit_open_files(soft: int):
    """For preexec_fn: a soft limit of *soft* open files (at most the hard one)."""

    def apply() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))

    return apply


def nofile_limits(pid: int) -> tuple[int, int]:
    """The soft and hard limits of open files of process *pid*, from ``/proc``."""
    line = next(ln for ln in Path(f"/proc/{pid}/limits").read_text().splitlines()
                if ln.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return int(soft), int(hard)


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``<the server's label> <the Host it was sent>``."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        body = f"{self.server.label} {self.headers['Host']}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def echo_backend(path: Path, label: str) -> socketserver.ThreadingUnixStreamServer:
    """An HTTP backend on the unix socket *path* (its directory made), serving in a thread,
    that answers with *label* and the request's Host: ``shutdown()`` and ``server_close()``
    stop it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(path), _EchoHandler)
    server.label, server.daemon_threads = label, True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- processes --------------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a started process, before exec: SIGTERM it if its parent dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(argv: list[str], log_path: Path, env: dict | None = None,
          cwd: Path | None = None) -> subprocess.Popen:
    """Start *argv* in its own session (Ctrl-C reaches only the caller), output appended to
    *log_path*, terminated if the caller dies."""
    with open(log_path, "ab") as logfile:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=logfile, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=die_with_parent)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def stop_all(processes: list[tuple[str, subprocess.Popen]], sig: int = signal.SIGTERM,
             grace: float = 20.0, say=None) -> None:
    """Stop processes started by spawn(): *sig* to every one still running and up to *grace*
    seconds for all of them to exit; then SIGTERM and 5 s more (when *sig* was another signal);
    then SIGKILL to whatever is left of each one's process group (its workers included)."""
    steps = [(sig, grace)] + ([(signal.SIGTERM, 5.0)] if sig != signal.SIGTERM else [])
    for step_signal, wait in steps:
        running = [proc for _, proc in processes if proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, step_signal)
        deadline = time.monotonic() + wait
        for proc in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    for name, proc in processes:
        leftovers = group_pids(proc.pid)
        if proc.poll() is None and say:
            say(f"{name} did not stop: killing its processes")
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def kill_tree(pid: int | None, first: int, wait: float) -> bool:
    """*first* to *pid*, up to *wait* seconds for it to exit, then SIGKILL to it and its
    children. Whether it was running."""
    if not alive(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    deadline = time.monotonic() + wait
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in [*children(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
    return True


@dataclass
class Service:
    """A long-running process started in its own session and process group."""

    name: str
    argv: list[str]
    log_path: Path
    stop_signal: int = signal.SIGTERM
    env: dict | None = None
    cwd: Path | None = None
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = spawn(self.argv, self.log_path, env=self.env, cwd=self.cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        return children(self.pid)

    def cpu_seconds(self) -> float:
        """CPU time of the process and its children, live (their own counters) or reaped
        (the parent's cutime/cstime)."""
        total = 0.0
        for pid, reaped in ((self.pid, True), *((c, False) for c in self.children())):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += cpu_seconds(pid, reaped_children=reaped)
        return total

    def pss_mb(self) -> float:
        total = 0
        for pid in [self.pid, *self.children()]:
            with contextlib.suppress(OSError):
                total += smaps_rollup(pid).get("Pss", 0)
        return total / 1024

    def open_files(self) -> dict[str, int]:
        counts = {}
        for role, pids in (("master", [self.pid]), ("worker", self.children()[:1])):
            for pid in pids:
                with contextlib.suppress(OSError):
                    counts[role] = len(os.listdir(f"/proc/{pid}/fd"))
        return counts

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def stop(self, grace: float = 15.0) -> None:
        """The stop signal (nginx: SIGQUIT, graceful), then SIGTERM, then SIGKILL to the
        whole process group."""
        if self.proc is not None:
            stop_all([(self.name, self.proc)], self.stop_signal, grace)


# --- ansible-playbook -------------------------------------------------------------------------


@dataclass
class Run:
    """One ansible-playbook run: its exit code, output and wall time."""

    returncode: int
    output: str
    seconds: float = 0.0

    @property
    def recap(self) -> dict[str, int]:
        """The PLAY RECAP, summed over the hosts (empty when there is none)."""
        text = self.output.split("PLAY RECAP", 1)[1] if "PLAY RECAP" in self.output else ""
        totals: dict[str, int] = {}
        for line in text.splitlines():
            if re.match(r"^\S+\s+:\s+ok=\d+", line):
                for key, value in re.findall(r"(\w+)=(\d+)", line):
                    totals[key] = totals.get(key, 0) + int(value)
        return totals

    @property
    def ok(self) -> bool:
        recap = self.recap
        return (self.returncode == 0 and bool(recap) and not recap.get("failed")
                and not recap.get("unreachable"))

    @property
    def tasks(self) -> int:
        """Tasks and handlers started (their banners)."""
        return len(re.findall(r"^(?:TASK|RUNNING HANDLER) \[", self.output, re.M))

    @property
    def changed_tasks(self) -> list[str]:
        """Banners of the tasks that reported a change."""
        found, current = [], None
        for line in self.output.splitlines():
            banner = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \*+", line)
            if banner:
                current = banner.group(1)
            elif line.startswith("changed: [") and current and current not in found:
                found.append(current)
        return found


def stop_group(proc: subprocess.Popen) -> None:
    """SIGINT (Ansible stops between tasks), then SIGTERM, then SIGKILL to the group."""
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    for pid in group_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def playbook(playbook: Path, inventory: Path, *extra: str, cwd: Path = REPO,
             config: Path = ANSIBLE_CFG, timeout: float = 900, log_path: Path | None = None,
             profile: bool = False, nofile: tuple[int, int] | None = None) -> Run:
    """``ansible-playbook -i inventory playbook *extra`` (this checkout's .venv), in its own
    process group, stopped with it on a timeout or an interrupt; with *profile* the
    profile_tasks callback, with *nofile* the (soft, hard) open-files limits."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(config), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    if profile:
        env.update(ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                   PROFILE_TASKS_TASK_OUTPUT_LIMIT="all", PROFILE_TASKS_SORT_ORDER="none")
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook), *extra]
    if nofile:
        cmd = ["prlimit", f"--nofile={nofile[0]}:{nofile[1]}", "--", *cmd]
    with (open(log_path, "w+", encoding="utf-8") if log_path
          else _temporary_log()) as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            raise HarnessError(f"ansible-playbook took more than {timeout:.0f}s") from None
        except BaseException:
            stop_group(proc)  # Ctrl-C, SIGTERM, a timeout: the playbook stops too
            raise
        seconds = time.perf_counter() - started
        out.seek(0)
        output = out.read().split("\n", 1)[1]
    return Run(proc.returncode, output, seconds)


def _temporary_log():
    import tempfile

    return tempfile.TemporaryFile("w+", encoding="utf-8")


# --- copies of the checkout and the sitekit command line -------------------------------------


def copy_checkout(source: Path, dest: Path) -> int:
    """The tracked files of *source* (as they are in its working tree) copied to *dest*."""
    proc = subprocess.run(["git", "-C", str(source), "ls-files", "-z"], capture_output=True,
                          timeout=60, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise HarnessError(f"{source} is not a git checkout: {proc.stderr.decode().strip()}")
    count = 0
    for name in filter(None, proc.stdout.decode().split("\0")):
        src = source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        count += 1
    return count


def sitekit(project: Path, *argv: str, bin_dir: Path = BIN) -> str:
    """``sitekit --project project *argv``: its output, or HarnessError."""
    proc = subprocess.run([str(bin_dir / "sitekit"), "--project", str(project), *argv],
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL, cwd=project)
    if proc.returncode != 0:
        raise HarnessError(f"sitekit {' '.join(argv)} failed ({proc.returncode}):\n"
                           + (proc.stdout + proc.stderr)[-3000:])
    return proc.stdout


# --- the throwaway stack ----------------------------------------------------------------------


@dataclass
class Stack:
    """A stack deployed by the real playbook of *checkout* (this one, or a scratch copy) with its
    local inventory into *root*: http on ``port`` (redirects, ACME challenges), https on
    ``tls_port``."""

    root: Path
    port: int = field(default_factory=free_port)
    tls_port: int = 0
    checkout: Path = REPO

    def __post_init__(self):
        self.tls_port = self.tls_port or free_port(self.port)

    @property
    def ca(self) -> Path:
        """The environment's CA certificate, which issued every self-signed site's."""
        return self.root / "etc" / "tls-ca" / "ca.pem"

    def vars(self) -> list[str]:
        return ["-e", f"sitekit_root={self.root}", "-e", f"sitekit_public_port={self.port}",
                "-e", f"sitekit_tls_port={self.tls_port}"]

    def playbook(self, *extra: str, project: Path | None = None, **options) -> Run:
        """The checkout's ansible/site.yml with its local inventory, deploying *project* (the
        checkout unless given); *options* as for playbook()."""
        project = project or self.checkout
        return playbook(self.checkout / "ansible" / "site.yml",
                        self.checkout / "inventories" / "local", *self.vars(),
                        "-e", f"sitekit_project_dir={project}", *extra, cwd=self.checkout,
                        config=self.checkout / "ansible" / "ansible.cfg", **options)

    def plan(self, *extra: str, project: Path | None = None) -> subprocess.CompletedProcess:
        """``sitekit plan local`` of this stack (its root, port and project)."""
        project = project or self.checkout
        cmd = [str(BIN / "sitekit"), "--project", str(project), "plan", "local", *self.vars(),
               "-e", f"sitekit_project_dir={project}", *extra]
        return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900,
                              check=False)

    def stop(self) -> list[str]:
        """What ``make down`` does for this root; then whatever still runs is killed
        (supervisord, the masters from their pid files, nginx). What had to be killed."""
        if not self.root.exists():
            return []
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run(["make", "-s", "-C", str(REPO), "down", f"STACK={self.root}",
                            f"VENV={BIN.parent}"], capture_output=True, timeout=120,
                           check=False, stdin=subprocess.DEVNULL)
        run = self.root / "run"
        leftovers = []
        pid = pid_from(run / "supervisord.pid")
        if kill_tree(pid, signal.SIGTERM, 30.0):
            leftovers.append(f"supervisord {pid}")
        for pidfile in sorted(run.glob("*/gunicorn.pid")):
            pid = pid_from(pidfile)
            if kill_tree(pid, signal.SIGTERM, 10.0):
                leftovers.append(f"gunicorn {pid} ({pidfile.parent.name})")
        pid = pid_from(run / "nginx.pid")
        if kill_tree(pid, signal.SIGQUIT, 10.0):
            leftovers.append(f"nginx {pid}")
        return leftovers

    def masters(self) -> dict[str, int]:
        """Site (or pool) name -> pid of each gunicorn master this stack's supervisord runs."""
        found = {}
        for pid in children(pid_from(self.root / "run" / "supervisord.pid")):
            title = cmdline(pid)
            assert title.startswith("gunicorn: master [sitekit-"), title
            name = title.split("[sitekit-", 1)[1].rstrip("] ")
            assert name not in found, f"two masters for {name}"
            found[name] = pid
        return found

    def pid(self, name: str) -> int:
        return pid_from(self.root / "run" / name / "gunicorn.pid")

    # HTTP

    def tls_context(self, minimum: ssl.TLSVersion | None = None,
                    maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
        """A client context that verifies the server's certificate with the stack's CA."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if minimum:
            context.minimum_version = minimum
        if maximum:
            context.maximum_version = maximum
        return context

    def tls_socket(self, server_name: str, context: ssl.SSLContext | None = None):
        """A TLS connection to the https port, verified for *server_name* (sent as SNI)."""
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=30)
        try:
            return (context or self.tls_context()).wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise

    def connection(self, host: str, server_name: str | None = None,
                   timeout: float = 30) -> http.client.HTTPConnection:
        """An https connection to this stack for *host*, connected and verified (SNI = the
        host's name, unless *server_name*)."""
        conn = http.client.HTTPSConnection("127.0.0.1", self.tls_port, timeout=timeout,
                                           context=self.tls_context())
        conn.sock = self.tls_socket(server_name or sni(host))
        conn.sock.settimeout(timeout)
        return conn

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
        conn = UnixHTTPConnection(self.root / "run" / site / "gunicorn.sock", 30)
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

    def load(self, sites: list[dict], clients: int = 4):
        """A bounded load (bench/load.py) over https on every domain of *sites*."""
        from bench.load import Load

        return Load(self.tls_port, [d for site in sites for d in site["domains"]],
                    clients=clients, connect=self.connection)


def sni(host: str) -> str:
    """The server name a client sends for a Host header: lower-case, no port, no trailing dot."""
    name = host.lower()
    if name.startswith("["):
        return name
    return name.rsplit(":", 1)[0].rstrip(".") if ":" in name else name.rstrip(".")


@contextlib.contextmanager
def deployed_stack(root: Path, *extra: str, checkout: Path = REPO):
    """A stack deployed into *root* on free ports (extra ``ansible-playbook`` arguments given),
    stopped as ``make down`` stops it afterwards."""
    stack = Stack(root, checkout=checkout)
    try:
        stack.first_run = stack.playbook(*extra)
        assert stack.first_run.returncode == 0, stack.first_run.output[-6000:]
        yield stack
    finally:
        stack.stop()


# --- parts of the real playbook ---------------------------------------------------------------


def site_plays(roles: set[str], *, skip_roles: bool = False,
               post_tasks: list[dict] = ()) -> list[dict]:
    """``ansible/site.yml`` cut down to its preflight and the plays that import any of *roles*,
    each importing only those (as site.yml does: same play, same role entry, its other roles
    and tasks left out). With *skip_roles* their tasks are tagged ``never`` (skipped: only
    their variables are loaded, for *post_tasks* to use), *post_tasks* added to each play."""
    plays = []
    for play in yaml.safe_load(SITE_YML.read_text(encoding="utf-8")):
        if "always" in play.get("tags", []):
            plays.append(play)
            continue
        entries = [r for r in play.get("roles", []) if r.get("role") in roles]
        if not entries:
            continue
        if skip_roles:
            entries = [{**r, "tags": [*r.get("tags", []), "never"]} for r in entries]
        play = {k: v for k, v in play.items() if k not in ("tasks", "roles")}
        plays.append({**play, "roles": entries, "post_tasks": list(post_tasks)})
    return plays


def local_catalogue(checkout: Path = REPO, present: bool = False) -> list[dict]:
    """The sites of *checkout*'s local catalogue as written (with *present*, the present ones)."""
    sites = yaml.safe_load((checkout / SITES_YML).read_text(encoding="utf-8"))["sitekit_sites"]
    return [s for s in sites if not present or s.get("state", "present") == "present"]


def local_host(**hostvars) -> dict:
    """An inventory host on this machine, as the local inventory's."""
    return {"ansible_connection": "local",
            "ansible_python_interpreter": "{{ ansible_playbook_python }}", **hostvars}


def scratch_project(dest: Path, settings: Path | None = None) -> Path:
    """A project at *dest* that is this checkout (linked) but for its ``settings`` (*settings*,
    e.g. one module per generated site) and its ``ansible`` directory, which holds the playbooks
    written there (``playbook_dir | dirname`` is this project), with the collection and the
    callback and vars plugins a deploy loads next to its playbook."""
    dest.mkdir(parents=True)
    for entry in REPO.iterdir():
        if entry.name not in ("ansible", "settings", ".git", ".venv", ".stack", "build"):
            (dest / entry.name).symlink_to(entry)
    (dest / "settings").symlink_to(settings or REPO / "settings")
    (dest / "ansible").mkdir()
    for name in ("collections", "callback_plugins", "vars_plugins"):
        (dest / "ansible" / name).symlink_to(REPO / "ansible" / name)
    return dest


def run_plays(workdir: Path, name: str, plays: list[dict], groups: dict[str, dict[str, dict]],
              sites: list[dict] | None, project: Path, **options) -> Run:
    """*plays* as ``<project>/ansible/<name>.yml`` on an inventory of *groups* (group -> host ->
    host variables) with the local environment's variables and the catalogue *sites* (the local
    one unless given)."""
    (project / "ansible" / f"{name}.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    inventory = workdir / f"{name}-inventory"
    (inventory / "group_vars" / "all").mkdir(parents=True)
    local_vars = LOCAL_INVENTORY / "group_vars" / "all"
    (inventory / "group_vars" / "all" / "main.yml").symlink_to(local_vars / "main.yml")
    if sites is None:
        (inventory / "group_vars" / "all" / "sites.yml").symlink_to(local_vars / "sites.yml")
    else:
        (inventory / "group_vars" / "all" / "sites.yml").write_text(
            json.dumps({"sitekit_sites": sites}))
    (inventory / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {g: {"hosts": hosts} for g, hosts in groups.items()}}}))
    return playbook(project / "ansible" / f"{name}.yml", inventory, cwd=project,
                    log_path=workdir / f"{name}.log", **options)


def dump_vars(path: str, names: tuple[str, ...]) -> dict:
    """A task writing the variables *names* as Ansible resolved them, as JSON to *path*."""
    content = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    return {"name": "Write the resolved variables for the harness",
            "ansible.builtin.copy": {"dest": path, "content": content, "mode": "0644"}}


# --- nginx as the role writes it --------------------------------------------------------------

NGINX_VARS = ("sitekit_root", "nginx_cmd", "nginx_conf", "nginx_pidfile", "nginx_log_dir",
              "nginx_sites_dir", "nginx_open_files", "nginx_rlimit_nofile",
              "nginx_worker_connections", "sitekit_layout")


@dataclass
class NginxConfig:
    """The nginx configuration the nginx role wrote into one host's root, and the nginx it
    started there."""

    name: str
    port: int
    variables: dict
    sites: list[dict]

    @property
    def root(self) -> Path:
        return Path(self.variables["sitekit_root"])

    @property
    def cmd(self) -> list[str]:
        """nginx_cmd: nginx run by prlimit with the role's open-files limit."""
        return [str(x) for x in self.variables["nginx_cmd"]]

    @property
    def plain_cmd(self) -> list[str]:
        """The same command without prlimit: nginx with the caller's open-files limit."""
        cmd = self.cmd
        return cmd[cmd.index("--") + 1:] if "--" in cmd else cmd

    @property
    def conf(self) -> Path:
        return Path(self.variables["nginx_conf"])

    @property
    def pidfile(self) -> Path:
        return Path(self.variables["nginx_pidfile"])

    @property
    def log_dir(self) -> Path:
        return Path(self.variables["nginx_log_dir"])

    @property
    def blocks(self) -> list[Path]:
        """The sites' server blocks (not the default server's)."""
        return sorted(p for p in Path(self.variables["nginx_sites_dir"]).glob("*.conf")
                      if p.name != "00-default.conf")

    @property
    def files(self) -> dict[Path, str]:
        """The main configuration, the default server and every server block, as written."""
        paths = [self.conf, *sorted(Path(self.variables["nginx_sites_dir"]).glob("*.conf"))]
        return {p: p.read_text(encoding="utf-8") for p in paths}

    @property
    def domains(self) -> list[str]:
        return [d for s in self.sites for d in s["domains"]]

    def upstream(self, name: str) -> Path:
        """The unix socket the server block the role wrote for site *name* proxies to (its
        master's upstream, in the main configuration)."""
        block = (Path(self.variables["nginx_sites_dir"]) / f"{name}.conf").read_text()
        upstream = re.search(r"proxy_pass http://(\w+);", block).group(1)
        found = re.search(rf"upstream {upstream} {{\s*server unix:(\S+) ", self.conf.read_text())
        return Path(found.group(1))


def render_nginx(workdir: Path, hosts: dict[str, dict], *, lb: bool = False,
                 sites: list[dict] | None = None, settings: Path | None = None,
                 nofile: tuple[int, int] | None = None) -> tuple[dict[str, NginxConfig], Run]:
    """Run site.yml's preflight and nginx role (``lb``: as its load-balancer play runs it) on
    local *hosts* (name -> host variables over the local environment's: each its own
    ``sitekit_root``; free ports unless given), for the catalogue *sites* (the local one unless
    given, or a host's ``sitekit_sites``; *settings*: the directory of their settings modules).
    The configuration of each host the role got through, and the Run. The role starts each
    host's nginx: stop_nginx(hosts) stops them."""
    project = scratch_project(workdir / "project", settings)
    for variables in hosts.values():
        # what an lb host has (site.yml lays out web hosts only: local mode has no lb)
        (Path(variables["sitekit_root"]) / "run").mkdir(parents=True, exist_ok=True)
        variables.setdefault("sitekit_public_port", free_port())
        variables.setdefault("sitekit_tls_port", free_port(variables["sitekit_public_port"]))
    plays = site_plays({"nginx"}, post_tasks=[
        dump_vars("{{ sitekit_root }}/nginx-vars.json", NGINX_VARS)])
    # inventory names that are neither a group's nor odd
    inventory = {f"host-{re.sub(r'[^a-z0-9]+', '-', name.lower())}": local_host(**variables)
                 for name, variables in hosts.items()}
    run = run_plays(workdir, "nginx", plays, {"lb" if lb else "web": inventory}, sites,
                    project, nofile=nofile, timeout=1800)
    configs = {}
    for name, variables in hosts.items():
        dumped = Path(variables["sitekit_root"]) / "nginx-vars.json"
        if dumped.exists():
            configs[name] = NginxConfig(name, variables["sitekit_public_port"],
                                        json.loads(dumped.read_text()),
                                        variables.get("sitekit_sites", sites or []))
    return configs, run


def lay_out(workdir: Path, hosts: dict[str, dict]) -> Run:
    """Run site.yml's preflight and sitekit role on local *hosts* with the local catalogue:
    their roots laid out, a later render_nginx can skip the layout (``sitekit_laid_out``),
    whose per-site loops, though skipped in local mode, take minutes for 1,000 sites."""
    inventory = {f"host-{re.sub(r'[^a-z0-9]+', '-', name.lower())}": local_host(
        **{k: v for k, v in variables.items() if k not in ("sitekit_sites", "sitekit_pools")})
        for name, variables in hosts.items()}
    return run_plays(workdir, "layout", site_plays({"sitekit"}), {"web": inventory}, None,
                     scratch_project(workdir / "project"))


def stop_nginx(hosts: dict[str, dict]) -> None:
    """Stop the nginx of every host render_nginx ran the role on, as ``make down`` does."""
    for variables in hosts.values():
        kill_tree(pid_from(Path(variables["sitekit_root"]) / "run" / "nginx.pid"),
                  signal.SIGQUIT, 15.0)


def nginx_test(config: NginxConfig, runs: int = 1, nofile: int | None = None,
               plain: bool = False) -> dict:
    """Time `nginx -t` as the role's handler runs it (nginx_cmd; with *plain*, nginx alone)
    *runs* times, with a soft limit of *nofile* open files if given; its messages."""
    times, cpu, output, ok = [], [], "", True
    for _ in range(runs):
        started = time.perf_counter()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([*(config.plain_cmd if plain else config.cmd), "-t"],
                              capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL,
                              preexec_fn=limit_open_files(nofile) if nofile else None)
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        output, ok = proc.stderr, proc.returncode == 0
    messages = [re.sub(r"^nginx: ", "", line) for line in output.splitlines()
                if "[warn]" in line or "[emerg]" in line or "[alert]" in line]
    return {"ok": ok, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "cpu_s": statistics.median(cpu), "runs": runs,
            "messages": messages, "stderr": output}


# --- gunicorn as the gunicorn_site role writes it --------------------------------------------


GUNICORN_FILES = ("run_dir", "log_dir", "gunicorn")


def render_gunicorn(workdir: Path, hosts: dict[str, dict], sites: list[dict] | None = None,
                    files: tuple[str, ...] = GUNICORN_FILES,
                    settings: Path | None = None) -> dict[str, dict[str, dict]]:
    """Every master's gunicorn configuration and its run and log directories (or the role's
    *files*: e.g. its ``env`` file and a pool's ``pool_sites`` too), written by the
    gunicorn_site role's own ``site_files`` specs and templates (the role imported as site.yml
    imports it, its tasks skipped: nothing is started) on local *hosts* (name -> host
    variables, each its own ``sitekit_root``), for the catalogue *sites* (the local one unless
    given; *settings*: the directory of their settings modules). Host name -> master name ->
    the master as the model resolved it (``conf_file``, ``socket``, ``env``, ...). Each root's
    ``current`` release is this checkout, unless the root has one already."""
    names = ", ".join(repr(name) for name in files)
    specs = f"{{{{ gunicorn_site_file_specs | selectattr('name', 'in', [{names}]) | list }}}}"
    post_tasks = [
        {"name": "Create the masters' configuration directory (laid out by the sitekit role)",
         "ansible.builtin.file": {"path": "{{ item }}", "state": "directory", "mode": "0755"},
         "loop": "{{ sitekit_masters | map(attribute='conf_file') | map('dirname') | unique }}"},
        {"name": "Render every master's gunicorn configuration as the role does",
         "sitekit.deploy.site_files": {"sites": "{{ sitekit_masters }}", "files": specs}},
        dump_vars("{{ sitekit_root }}/gunicorn-vars.json", ("sitekit_masters",)),
    ]
    inventory = {}
    for name, variables in hosts.items():
        root = Path(variables["sitekit_root"])
        root.mkdir(parents=True, exist_ok=True)
        if not (root / "current").exists():
            (root / "current").symlink_to(REPO)
        inventory[f"host-{re.sub(r'[^a-z0-9]+', '-', name.lower())}"] = local_host(**variables)
    plays = site_plays({"gunicorn_site"}, skip_roles=True, post_tasks=post_tasks)
    project = scratch_project(workdir / "project", settings)
    # the role's templates, where the play's own tasks find them (next to the playbook)
    (project / "ansible" / "templates").symlink_to(REPO / "roles" / "gunicorn_site" / "templates")
    run = run_plays(workdir, "gunicorn", plays, {"web": inventory}, sites, project)
    if not run.ok:
        raise HarnessError(f"rendering the gunicorn configurations failed:\n{run.output[-4000:]}")
    found = {}
    for name, variables in hosts.items():
        dumped = Path(variables["sitekit_root"]) / "gunicorn-vars.json"
        found[name] = {m["name"]: m for m in json.loads(dumped.read_text())["sitekit_masters"]}
    return found


# --- a generated catalogue --------------------------------------------------------------------

# Building blocks of the generated domains: <stem>.<org>.<tld>, www.<stem>.<org>.<tld>,
# <stem>-<word>.<tld>, www.<stem>-<word>.<tld>, then <sub>.<stem>.<org>.<tld>.
ORGS = ("example-shop", "example-store", "example-news", "example-travel", "example-bakery",
        "example-outdoor-gear", "example-consulting", "example-foundation", "example",
        "example-co")
TLDS = ("org", "com", "net", "co.uk", "de", "com.au", "shop", "fr", "io", "nl", "org.uk")
WORDS = ("harbor", "meadow", "ember", "north", "river", "stone", "cedar", "lumen", "atlas",
         "nova", "pixel", "craft", "green", "urban", "alpine", "coast", "metro", "studio",
         "market", "press")
SUBS = ("shop", "blog", "news", "m", "store", "help", "api", "docs")


def make_catalogue(sites: int, per_site: int, seed: int) -> list[dict]:
    """*sites* sites named site0001..., *per_site* distinct domains each, deterministic."""
    rng = random.Random(seed)
    catalogue = []
    for i in range(1, sites + 1):
        stem = f"site{i:04d}"
        apex = f"{stem}.{rng.choice(ORGS)}.{rng.choice(TLDS)}"
        alias = f"{stem}-{rng.choice(WORDS)}.{rng.choice(TLDS)}"
        domains = [apex, f"www.{apex}", alias, f"www.{alias}"]
        subs = rng.sample(SUBS, len(SUBS))
        k = 0
        while len(domains) < per_site:
            sub = subs[k % len(subs)] + (str(k // len(subs)) if k >= len(subs) else "")
            domains.append(f"{sub}.{apex}")
            k += 1
        catalogue.append({"name": stem, "domains": domains[:per_site], "workers": 2})
    return catalogue


def pool_catalogue(catalogue: list[dict], pools: int, dedicated: int = 0) -> dict[str, dict]:
    """Spread the sites of *catalogue* after its first *dedicated* over *pools* pools (pool01,
    ...; in place, round robin): the pools, as ``sitekit_pools`` declares them."""
    names = [f"pool{i:02d}" for i in range(1, pools + 1)]
    for index, site in enumerate(catalogue[dedicated:] if pools else []):
        site["pool"] = names[index % pools]
        site.pop("workers", None)  # a pooled site runs with its pool's resources
    return {name: {"workers": 2} for name in names}


GENERATED_SITE_ID = 1000  # a generated site's SITE_ID: this plus its place in the catalogue


def brand_name(site: str) -> str:
    """The brand name write_settings gives a generated site."""
    return f"Brand {site}"


def write_settings(settings: Path, catalogue: list[dict]) -> Path:
    """One settings module per site in *settings*, as a site's own (``settings/harbor.py``):
    its own SITE_ID, cookie names and brand (brand_name), and the URLconf of a site without an
    app of its own (``project.core.site_urls``). The modules import ``settings.base``: the
    directory also needs the checkout's modules (``__init__.py``, ``base.py``, ``pool.py``) to
    be imported."""
    settings.mkdir(parents=True, exist_ok=True)
    for index, site in enumerate(catalogue, start=1):
        name = site["name"]
        brand = {"name": brand_name(name), "tagline": f"The generated site {name}",
                 "colors": {"primary": "#0b2545", "accent": "#c9a227", "background": "#eef3f8",
                            "surface": "#ffffff", "text": "#13315c"}}
        (settings / f"{name}.py").write_text(
            f'"""{name}: a generated site."""\n\nfrom .base import *\n\n'
            f"SITE_ID = {GENERATED_SITE_ID + index}\n"
            f'SITEKIT_SITE = "{name}"\n'
            'ROOT_URLCONF = "project.core.site_urls"\n'
            'SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"\n'
            'CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"\n'
            f"SITEKIT_BRAND = {brand!r}\n", encoding="utf-8")
    return settings


def link_settings(settings: Path, checkout: Path = REPO) -> None:
    """The checkout's own settings modules linked into *settings* (a directory of generated
    ones), so that it is a settings package."""
    for module in (checkout / "settings").glob("*.py"):
        if not (settings / module.name).exists():
            (settings / module.name).symlink_to(module)


# --- the Django release -----------------------------------------------------------------------

# (name, settings module, domain) of the sites a benchmark's own masters serve.
SITES = (
    ("harbor", "settings.harbor", "harbor.localhost"),
    ("meadow", "settings.meadow", "meadow.localhost"),
    ("ember", "settings.ember", "ember.localhost"),
)

# Environment variables that would change what a master does or which code it runs.
SCRUBBED_ENV = ("DJANGO_SETTINGS_MODULE", "GUNICORN_CMD_ARGS", "GUNICORN_FD", "GUNICORN_PID",
                "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")


def base_environment(workdir: Path) -> dict[str, str]:
    """The environment of Django masters started outside a stack: this one, less what would
    change which code runs, plus the settings of a sqlite database in *workdir*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SITEKIT_") and k not in SCRUBBED_ENV}
    env.update(
        PYTHONPATH=str(REPO),
        SITEKIT_SECRET_KEY=secrets.token_urlsafe(48),
        SITEKIT_DEBUG="0",
        SITEKIT_DB_ENGINE="sqlite",
        SITEKIT_DB_NAME=str(workdir / "db.sqlite3"),
        SITEKIT_ALLOWED_HOSTS=",".join(domain for _, _, domain in SITES),
        SITEKIT_RELEASE_ID="harness",
        SITEKIT_LOG_LEVEL="WARNING",
    )
    return env


def prepare_database(python: str, env: dict[str, str], workdir: Path,
                     sites: tuple[tuple[str, str, str], ...] = SITES, project: Path = REPO,
                     seed: bool = True) -> None:
    """Migrate, sync the Sites table and (with *seed*) seed the demonstration content of
    *sites* (name, settings module, domain: SITES unless given) with the management commands
    the release role runs, from *project* (a checkout, or a scratch project)."""
    catalogue = workdir / "catalogue.json"
    catalogue.write_text(json.dumps({"sites": [
        {"name": name, "domain": domain, "state": "present", "settings_module": module}
        for name, module, domain in sites]}), encoding="utf-8")
    env = dict(env, DJANGO_SETTINGS_MODULE=sites[0][1])
    commands = [["migrate", "--noinput"], ["sync_sites", "--catalogue", str(catalogue)]]
    if seed:
        commands.append(["seed_demo", "--catalogue", str(catalogue)])
    for command in commands:
        result = subprocess.run([python, "manage.py", *command], cwd=project, env=env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=180, check=False)
        if result.returncode != 0:
            raise HarnessError(f"manage.py {' '.join(command)} failed ({result.returncode}):\n"
                               + (result.stdout + result.stderr)[-3000:])


# --- HTTP -------------------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.unix_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def get(conn: http.client.HTTPConnection, path: str, host: str) -> tuple[int, bytes]:
    """GET *path* with *host* on *conn*, closed afterwards: the status and the body."""
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "sitekit-harness"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_get(sock_path: Path, path: str, host: str, timeout: float = 15.0) -> tuple[int, bytes]:
    """GET *path* with *host* from a unix socket (a master's)."""
    return get(UnixHTTPConnection(sock_path, timeout), path, host)


def http_request(port: int, host: str, path: str = "/", timeout: float = 10.0):
    """GET *path* with *host* from 127.0.0.1:*port*."""
    return get(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout), path, host)
