"""What the benchmarks add to the harness (tests/harness.py, which they import directly):
logging, the machine and versions they run on, the Django masters they start from the
configuration the role rendered, and the guard rails of a run (signals and an overall timeout
turned into a clean stop, clean-up that Ctrl-C cannot cut short, the temporary directory kept
or removed, the command-line options every benchmark has, the report or JSON printed).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as bench/<name>.py
    sys.path.insert(0, str(REPO))

from tests.harness import HarnessError, Service, http_get  # noqa: E402

MB = 1024 * 1024

# What a benchmark raises when it cannot produce a valid measurement: the harness's error.
BenchError = HarnessError


class Interrupted(BaseException):
    """SIGTERM, SIGHUP or the overall timeout: stop everything and exit."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def first_line(cmd: list[str]) -> str:
    """The first line a command prints (a version), or "?"."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, IndexError):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                              stdin=subprocess.DEVNULL)
        return (proc.stdout + proc.stderr).strip().splitlines()[0]
    return "?"


def machine(python: str | None = None, nginx: str = "/usr/sbin/nginx", **more) -> dict:
    """The machine a benchmark ran on: CPUs, kernel, load average at the start, nginx's
    version, with *python* the versions of Python, Django and gunicorn it runs, and *more*."""
    found = {"cpus": os.cpu_count(), "kernel": platform.release(),
             "load_start": [round(x, 2) for x in os.getloadavg()],
             "nginx": first_line([nginx, "-v"]).replace("nginx version: ", "")}
    if python:
        probe = ("import json, platform, django, gunicorn; print(json.dumps({'python': "
                 "platform.python_version(), 'django': django.get_version(), "
                 "'gunicorn': gunicorn.__version__}))")
        with contextlib.suppress(ValueError):
            found["versions"] = json.loads(first_line([python, "-c", probe]))
    return {**found, **more}


def load_line(m: dict) -> str:
    """The load average at the start of the run and, once it is over, at its end."""
    end = m.get("load_end")
    return (f"load average (1/5/15 min) {' '.join(f'{x:.2f}' for x in m['load_start'])} at start"
            + (f", {' '.join(f'{x:.2f}' for x in end)} at end" if end else ""))


def versions_line(m: dict) -> str:
    v = m.get("versions", {})
    return (f"Python {v.get('python', '?')}, Django {v.get('django', '?')}, gunicorn "
            f"{v.get('gunicorn', '?')}; {m['cpus']} CPUs, kernel {m['kernel']}")


# --- Django masters -----------------------------------------------------------------------


def start_gunicorn(name: str, conf_text: str, workdir: Path, python: str, env: dict[str, str],
                   cwd: Path = REPO) -> Service:
    """A gunicorn master *name* with the configuration *conf_text* (the gunicorn_site role's,
    changed; its process named sitekit-bench-<name>) and the environment *env*."""
    conf = workdir / f"{name}.conf.py"
    conf.write_text(f'{conf_text}\nproc_name = "sitekit-bench-{name}"\n', encoding="utf-8")
    service = Service(name, [python, "-m", "gunicorn", "-c", str(conf)], workdir / f"{name}.log",
                      env=env, cwd=cwd)
    service.start()
    return service


def serves(sock: Path, host: str, site: str) -> bool:
    """Whether the master on *sock* answers /healthz for *host* as *site* (BenchError when it
    answers as another site)."""
    status, body = http_get(sock, "/healthz", host, timeout=5)
    served = json.loads(body).get("site") if status == 200 else None
    if served not in (None, site):
        raise BenchError(f"{sock}: /healthz for {host} says it serves {served!r}, not {site!r}")
    return served == site


def wait_until(check: Callable[[], bool], service: Service, timeout: float,
               what: str = "") -> float:
    """Seconds until *check* holds (connection errors count as not yet), BenchError when
    *service* exits first or *timeout* passes."""
    started = time.monotonic()
    while True:
        if not service.alive():
            raise BenchError(f"{service.name} exited ({service.proc.returncode}) at start:\n"
                             f"{service.log_tail()}")
        with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
            if check():
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what or service.name} not ready within {timeout:.0f}s:\n"
                             f"{service.log_tail()}")
        time.sleep(0.1)


# --- the run ------------------------------------------------------------------------------


def at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def parser(prog: str, doc: str, epilog: str) -> argparse.ArgumentParser:
    """The command line of bench/<prog>, described by the second paragraph of its *doc*."""
    return argparse.ArgumentParser(prog=f"bench/{prog}", description=doc.split("\n\n")[1],
                                   epilog=epilog)


def add_run_arguments(parser: argparse.ArgumentParser, timeout: int, keeps: str,
                      django: bool = True) -> None:
    """The options every benchmark has: --timeout, --json, --keep (*keeps*: what the temporary
    directory holds); with *django* also --python and --boot-timeout."""
    if django:
        venv_python = REPO / ".venv" / "bin" / "python"
        parser.add_argument("--python", default=str(venv_python) if venv_python.exists()
                            else sys.executable, help="interpreter that runs gunicorn and "
                            "manage.py (default: the repository's .venv, else this one)")
        parser.add_argument("--boot-timeout", type=float, default=120.0, metavar="SECONDS",
                            help="time for the Django masters to answer /healthz (default: 120)")
    parser.add_argument("--timeout", type=int, default=timeout, metavar="SECONDS",
                        help=f"overall limit of the run (default: {timeout})")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON instead of a report")
    parser.add_argument("--keep", action="store_true",
                        help=f"keep the temporary directory ({keeps})")


def main(args: argparse.Namespace, run: Callable[[dict], None],
         print_report: Callable[[dict], None], passed: Callable[[dict], bool] = bool) -> int:
    """Run *run* (which fills the report) with SIGTERM, SIGHUP and --timeout raising
    Interrupted; print the report (or JSON). The exit status: 0 when *passed* holds for the
    report, 1 when not, 2 when the run raised BenchError, 130 when it was interrupted (a
    signal, Ctrl-C or the timeout); the reason is logged."""

    def interrupt(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    def expire(_signum, _frame):
        raise Interrupted(f"overall timeout of {args.timeout}s")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(args.timeout)
    report: dict = {}
    try:
        run(report)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        log(f"stopped: {exc or 'interrupted'}")
        return 130
    finally:
        signal.alarm(0)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0 if passed(report) else 1


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """For clean-up: neither the overall timeout nor Ctrl-C, SIGTERM or SIGHUP interrupts it."""
    signal.alarm(0)
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def workdir(prefix: str, keep: bool) -> Iterator[tuple[Path, contextlib.ExitStack]]:
    """A temporary directory, and the clean-up of the run: what is pushed on it runs last in,
    first out, shielded from Ctrl-C, signals and the timeout, then the directory is removed
    (unless *keep*)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    log(f"working directory {path}")
    cleanup = contextlib.ExitStack()
    try:
        yield path, cleanup
    finally:
        with shielded():
            try:
                cleanup.close()
            finally:
                if keep:
                    log(f"kept {path}")
                else:
                    shutil.rmtree(path, ignore_errors=True)
