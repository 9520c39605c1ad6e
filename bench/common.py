"""What the benchmarks add to the harness (tests/harness.py, whose names they import from here):
logging, the interpreter and versions they run, and the guard rails of a run (signals and an
overall timeout turned into a clean stop, clean-up that Ctrl-C cannot cut short, the temporary
directory kept or removed, the command-line options every benchmark has).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as bench/<name>.py
    sys.path.insert(0, str(REPO))

from tests.harness import (  # noqa: E402
    PAGE_SIZE,
    SITES,
    HarnessError,
    Service,
    base_environment,
    children,
    cpu_seconds,
    free_port,
    http_get,
    http_request,
    log_tail,
    prepare_database,
    smaps_rollup,
    spawn,
    stat_fields,
    stop_all,
)

__all__ = ["PAGE_SIZE", "SITES", "Service", "base_environment", "children", "cpu_seconds",
           "free_port", "http_get", "http_request", "log_tail", "prepare_database",
           "smaps_rollup", "spawn", "stat_fields", "stop_all"]

MB = 1024 * 1024

# What a benchmark raises when it cannot produce a valid measurement: the harness's error.
BenchError = HarnessError


class Interrupted(BaseException):
    """SIGTERM, SIGHUP or the overall timeout: stop everything and exit."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def default_python() -> str:
    venv_python = REPO / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


def first_line(cmd: list[str]) -> str:
    """The first line a command prints (a version), or "?"."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
        return (proc.stdout + proc.stderr).strip().splitlines()[0]
    return "?"


def machine(**more) -> dict:
    """The machine a benchmark ran on: CPUs, kernel, load average at the start, nginx's
    version, and *more*."""
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "load_start": [round(x, 2) for x in os.getloadavg()],
            "nginx": first_line(["/usr/sbin/nginx", "-v"]).replace("nginx version: ", ""), **more}


def versions(python: str) -> dict[str, str]:
    probe = ("import json, platform, django, gunicorn; print(json.dumps({'python': "
             "platform.python_version(), 'django': django.get_version(), "
             "'gunicorn': gunicorn.__version__}))")
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60,
                         cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        return json.loads(out.stdout)
    except ValueError:
        return {}


# --- the run ------------------------------------------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser, timeout: int, keeps: str) -> None:
    """The options every benchmark has: --python, --boot-timeout, --timeout, --json, --keep
    (*keeps*: what the temporary directory holds)."""
    parser.add_argument("--python", default=default_python(),
                        help="interpreter that runs gunicorn and manage.py "
                        "(default: the repository's .venv, else this one)")
    parser.add_argument("--boot-timeout", type=float, default=120.0, metavar="SECONDS",
                        help="time for the Django masters to answer /healthz (default: 120)")
    parser.add_argument("--timeout", type=int, default=timeout, metavar="SECONDS",
                        help=f"overall limit of the run (default: {timeout})")
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
