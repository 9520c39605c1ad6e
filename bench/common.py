"""What the benchmarks share.

Errors and logging; HTTP to a unix socket or a loopback port; figures from ``/proc`` (process
state, children, process groups, PSS, CPU time); the processes a benchmark starts and stops (each
in its own session, stopped with its whole process group); the Django release they serve (the
environment, a migrated and seeded sqlite database, the versions); and the guard rails of a run
(signals and an overall timeout turned into a clean stop, clean-up that Ctrl-C cannot cut short,
the temporary directory kept or removed, the command-line options every benchmark has).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent

MB = 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# (name, settings module, domain) of the sites a benchmark's Django masters serve.
SITES = (
    ("harbor", "settings.harbor", "harbor.localhost"),
    ("meadow", "settings.meadow", "meadow.localhost"),
    ("ember", "settings.ember", "ember.localhost"),
)

# Environment variables that would change what a master does or which code it runs.
SCRUBBED_ENV = (
    "DJANGO_SETTINGS_MODULE",
    "GUNICORN_CMD_ARGS",
    "GUNICORN_FD",
    "GUNICORN_PID",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
)


class BenchError(Exception):
    """The benchmark cannot produce a valid measurement."""


class Interrupted(BaseException):
    """SIGTERM, SIGHUP or the overall timeout: stop everything and exit."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- HTTP ---------------------------------------------------------------------------------


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


def _get(conn: http.client.HTTPConnection, path: str, host: str) -> tuple[int, bytes]:
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "sitekit-bench"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_get(sock_path: Path, path: str, host: str, timeout: float = 15.0) -> tuple[int, bytes]:
    """GET *path* with *host* from a unix socket (a master's)."""
    return _get(UnixHTTPConnection(sock_path, timeout), path, host)


def https_connection(port: int, host: str, ca: Path, timeout: float = 15.0):
    """An https connection to 127.0.0.1:*port* for *host*: SNI *host*, its certificate verified
    with the CA file *ca* (a stack's environment CA) for that name."""
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        conn.sock = context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise
    return conn


def stack_ca(root: Path) -> Path:
    """The CA that issued a local stack's self-signed certificates."""
    return root / "etc" / "tls-ca" / "ca.pem"


def http_request(port: int, host: str, path: str = "/", timeout: float = 10.0):
    """GET *path* with *host* from 127.0.0.1:*port*."""
    return _get(http.client.HTTPConnection("127.0.0.1", port, timeout=timeout), path, host)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc --------------------------------------------------------------------------------


def stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (field 3, the state, is [0])."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
        data = f.read()
    # The command name is parenthesised and may contain anything: split after it.
    return data[data.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """Whether *pid* exists and is neither a zombie nor dead."""
    try:
        return stat_fields(pid)[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def child_pids(pid: int) -> list[int]:
    """Live children of *pid* (its workers, for a gunicorn or nginx master)."""
    children: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                children.update(int(c) for c in f.read().split())
        return sorted(children)
    except FileNotFoundError:
        pass  # kernel without CONFIG_PROC_CHILDREN: scan /proc for the parent pid
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat_fields(int(entry))[1]) == pid:
                    children.add(int(entry))
    return sorted(children)


def group_pids(pgid: int) -> list[int]:
    """Processes whose process group is *pgid* (a process started in its own session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat_fields(int(entry))[2]) == pgid:
                    pids.append(int(entry))
    return pids


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


# --- processes ----------------------------------------------------------------------------


def die_with_parent() -> None:
    """In a started process, before exec: SIGTERM it if the benchmark dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn(
    argv: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start *argv* in its own session (Ctrl-C reaches only the benchmark), output appended to
    *log_path*, terminated if the benchmark dies."""
    with open(log_path, "ab") as logfile:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "    (no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def stop_all(
    processes: list[tuple[str, subprocess.Popen]], sig: int = signal.SIGTERM, grace: float = 20.0
) -> None:
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
        if proc.poll() is None:
            log(f"{name} did not stop: killing its processes")
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


@dataclass
class Service:
    """A long-running process a benchmark starts and stops (own session and process group)."""

    name: str
    argv: list[str]
    log_path: Path
    stop_signal: int = signal.SIGTERM
    env: dict | None = None
    cwd: Path | None = None
    proc: subprocess.Popen | None = None
    extra: dict = field(default_factory=dict)

    def start(self) -> None:
        self.proc = spawn(self.argv, self.log_path, env=self.env, cwd=self.cwd)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def children(self) -> list[int]:
        return child_pids(self.pid)

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


# --- the Django release -------------------------------------------------------------------


def default_python() -> str:
    venv_python = REPO / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def base_environment(workdir: Path) -> dict[str, str]:
    """The environment of a benchmark's Django masters: this one, less what would change
    which code runs, plus the settings of a sqlite database in *workdir*."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SITEKIT_") and k not in SCRUBBED_ENV
    }
    env.update(
        PYTHONPATH=str(REPO),
        SITEKIT_SECRET_KEY=secrets.token_urlsafe(48),
        SITEKIT_DEBUG="0",
        SITEKIT_DB_ENGINE="sqlite",
        SITEKIT_DB_NAME=str(workdir / "db.sqlite3"),
        SITEKIT_ALLOWED_HOSTS=",".join(domain for _, _, domain in SITES),
        SITEKIT_RELEASE_ID="bench",
        SITEKIT_LOG_LEVEL="WARNING",
    )
    return env


def prepare_database(python: str, env: dict[str, str], workdir: Path) -> None:
    """Migrate, sync the Sites table and seed the demonstration content of SITES."""
    catalogue = workdir / "catalogue.json"
    catalogue.write_text(
        json.dumps(
            {
                "sites": [
                    {"name": name, "domain": domain, "state": "present", "settings_module": mod}
                    for name, mod, domain in SITES
                ]
            }
        ),
        encoding="utf-8",
    )
    env = dict(env, DJANGO_SETTINGS_MODULE=SITES[0][1])
    for command in (
        ["migrate", "--noinput"],
        ["sync_sites", "--catalogue", str(catalogue)],
        ["seed_demo", "--catalogue", str(catalogue)],
    ):
        result = subprocess.run(
            [python, "manage.py", *command],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise BenchError(
                f"manage.py {' '.join(command)} failed ({result.returncode}):\n"
                + (result.stdout + result.stderr)[-3000:]
            )


def versions(python: str) -> dict[str, str]:
    probe = (
        "import json, platform, django, gunicorn; print(json.dumps({'python': "
        "platform.python_version(), 'django': django.get_version(), "
        "'gunicorn': gunicorn.__version__}))"
    )
    out = subprocess.run(
        [python, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
    )
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {}


# --- the run ------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser, timeout: int, keeps: str) -> None:
    """The options every benchmark has: --python, --boot-timeout, --timeout, --json, --keep
    (*keeps*: what the temporary directory holds)."""
    parser.add_argument(
        "--python",
        default=default_python(),
        help="interpreter that runs gunicorn and manage.py "
        "(default: the repository's .venv, else this one)",
    )
    parser.add_argument(
        "--boot-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="time for the Django masters to answer /healthz (default: 120)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=timeout,
        metavar="SECONDS",
        help=f"overall limit of the run (default: {timeout})",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON instead of a report"
    )
    parser.add_argument(
        "--keep", action="store_true", help=f"keep the temporary directory ({keeps})"
    )


T = TypeVar("T")


def run_guarded(timeout: int, body: Callable[[], T]) -> tuple[int, T | None]:
    """Run *body* with SIGTERM, SIGHUP and an overall *timeout* (seconds) raising Interrupted.

    Returns (0, its result) when it completed, (2, None) when it raised BenchError, (130, None)
    when it was interrupted (a signal, Ctrl-C or the timeout); the reason is logged.
    """

    def interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    def expire(_signum, _frame):
        raise Interrupted(f"overall timeout of {timeout}s")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(timeout)
    try:
        return 0, body()
    except BenchError as exc:
        log(f"error: {exc}")
        return 2, None
    except Interrupted as exc:
        log(f"stopped: {exc}")
        return 130, None
    except KeyboardInterrupt:
        log("stopped: interrupted")
        return 130, None
    finally:
        signal.alarm(0)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """For clean-up: neither the overall timeout nor Ctrl-C, SIGTERM or SIGHUP interrupts it."""
    signal.alarm(0)
    previous = {
        s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def make_workdir(prefix: str) -> Path:
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"working directory {workdir}")
    return workdir


def remove_workdir(workdir: Path, keep: bool) -> None:
    if keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
