"""``sitekit logs``: one site's nginx access log (or its errors), whichever log layout nginx uses.

nginx logs a site's requests in the site's own file (``<site>.access.log``) or, with the shared
layout, in one ``access.log`` whose lines start with the site's name (``sitekit_nginx_logs``,
resolved by :meth:`sitekit.model.Layout.nginx_log_layout` for the catalogue, as the deploy
resolves it). The lines are read on every web host of the environment: here when the host is
this machine (``ansible_connection: local``), else over ssh with the inventory's connection
variables, as ``sitekit manage`` reaches them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitekit import inventory, manage, model
from sitekit.echo import clean

EXIT_USAGE = 2


class LogsError(Exception):
    """A usage error of `sitekit logs`: one line, exit status 2."""


@dataclass(frozen=True)
class Source:
    """Where one host keeps a site's lines, and the shell command printing them."""

    host: str
    local: bool
    layout: str  # per-site | shared
    path: str
    command: str
    hostvars: dict[str, Any]
    follow: bool = False


def log_dir(hostvars: dict[str, Any], root: str | None = None) -> str:
    """nginx's log directory on a host, as the nginx role's default (``nginx_log_dir``) has it."""

    def var(key: str, default: Any = None) -> Any:
        return manage._render(hostvars.get(key, default), hostvars, key)

    if "nginx_log_dir" in hostvars and not root:
        return str(var("nginx_log_dir"))
    if var("sitekit_mode") != "local":
        return "/var/log/nginx"
    top = root or var("sitekit_root")
    logs = var("sitekit_log_dir") if "sitekit_log_dir" in hostvars and not root else f"{top}/log"
    return f"{logs}/nginx"


def ere(text: str) -> str:
    """``text`` as a POSIX extended regular expression matching it literally."""
    return re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", text)


#: Before following a log: a log that cannot be read ends the command as it does without
#: following (head's message, exit status 1) rather than being waited for.
_READABLE = "head -c 0 -- {0} || exit 1; "

#: A remote reader that follows: run in a session of its own, and stopped with all its
#: processes when the connection ends (sshd closes the command's input; without a terminal it
#: sends no signal; the reader, if it has not made its session yet, alone). Its exit status is
#: the reader's.
_REMOTE_FOLLOW = ("exec 3<&0; setsid sh -c {0} </dev/null & p=$!; "
                  "{{ cat <&3; kill -TERM -$p || kill -TERM $p; }} >/dev/null 2>&1 & w=$!; "
                  "exec 3<&-; wait $p; s=$?; kill $w 2>/dev/null; exit $s")


def command(site: dict[str, Any], layout: str, directory: str, lines: int, follow: bool,
            errors: bool) -> tuple[str, str]:
    """``(path, shell command)`` printing the last ``lines`` lines of ``site``'s requests (or,
    with ``errors``, its errors), then (``follow``) those written afterwards."""
    if layout == "per-site":
        path = f"{directory}/{site['name']}.{'error' if errors else 'access'}.log"
        shell = shlex.join(["tail", "-n", str(lines), *(["-F"] if follow else []), path])
        return path, f"{_READABLE.format(shlex.quote(path))}{shell}" if follow else shell
    if errors:  # nginx's main error log: the site's lines name its server block's first name
        path = f"{directory}/error.log"
        pattern = f", server: {ere(site['domains'][0])}(,|$)"
    else:  # the shared access log: the site's name first
        path = f"{directory}/access.log"
        pattern = f"^{site['name']} "
    quoted, grep = shlex.quote(path), f"grep -E -- {shlex.quote(pattern)}"
    if not follow:
        return path, f"{grep} {quoted} | tail -n {lines}; test -r {quoted}"
    # the lines up to the log's size now, then from there on: none is missed or shown twice
    # (nginx writes each line with one write)
    return path, (f"{_READABLE.format(quoted)}size=$(wc -c < {quoted}) && "
                  f"{{ head -c \"$size\" {quoted} | {grep} | tail -n {lines}; "
                  f"tail -c +$((size + 1)) -F {quoted} | grep --line-buffered "
                  f"-E -- {shlex.quote(pattern)}; }}")


def sources(inv: inventory.Inventory, name: str, *, host: str | None = None,
            root: str | None = None, lines: int = 10, follow: bool = False,
            errors: bool = False, extra: list[Path] | tuple[Path, ...] = ()) -> list[Source]:
    """Where each web host of ``inv`` (or ``host`` alone) keeps site ``name``'s lines."""
    try:
        hosts = manage.web_hosts(inv, extra=extra)
    except manage.ManageError as exc:
        raise LogsError(str(exc)) from None
    if host is not None:
        if host not in hosts:
            raise LogsError(f"{inv.name}: no web host {clean(host)!r} (web hosts: "
                            f"{', '.join(hosts)})")
        hosts = {host: hosts[host]}
    result = inventory.check(inv)
    if not result.ok:
        raise LogsError(f"{inv.name}: the catalogue has problems (see `sitekit check "
                        f"{inv.name}`): {result.problems[0]}")
    site = next((s for s in result.sites if s.name == name), None)
    if site is None:
        known = ", ".join(s.name for s in result.sites if s.present) or "none"
        raise LogsError(f"{inv.name}: no site {clean(name)!r} in the catalogue (present sites: "
                        f"{known})")
    if not site.present:
        raise LogsError(f"{inv.name}: site {name!r} is absent: nginx serves it nowhere, and a "
                        "deploy removed its logs")
    present = sum(1 for s in result.sites if s.present)
    found = []
    for host_name, hostvars in hosts.items():
        choice = manage._render(hostvars.get("sitekit_nginx_logs", "auto"), hostvars,
                                "sitekit_nginx_logs")
        if choice not in model.NGINX_LOG_LAYOUTS:
            raise LogsError(f"{inv.name}: sitekit_nginx_logs must be one of "
                            f"{', '.join(model.NGINX_LOG_LAYOUTS)}, got {clean(str(choice))!r}")
        layout = model.Layout(nginx_logs=choice).nginx_log_layout(present)
        path, shell = command(site.as_dict(), layout, log_dir(hostvars, root), lines, follow,
                              errors)
        found.append(Source(host_name, hostvars.get("ansible_connection") == "local", layout,
                            path, shell, hostvars, follow))
    return found


def argv_of(source: Source) -> list[str]:
    """The command line printing the lines: ``sh -c`` here, or over ssh (as root with sudo -n
    in system mode: /var/log/nginx is not the SSH user's to read)."""
    if source.local:
        return ["sh", "-c", source.command]
    argv, address = manage.ssh_command(source.hostvars, source.host)
    system = manage._render(source.hostvars.get("sitekit_mode"), source.hostvars,
                            "sitekit_mode") != "local"
    shell = (_REMOTE_FOLLOW.format(shlex.quote(source.command)) if source.follow
             else source.command)
    remote = shlex.join(["sudo", "-n", "sh", "-c", shell] if system else ["sh", "-c", shell])
    return [*argv, "--", address, remote]


class Stopped(Exception):
    """``sitekit logs`` got SIGINT, SIGTERM or SIGHUP: its readers are stopped, and it exits."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: The signals that end ``sitekit logs`` (each stops the readers first), and how long the
#: readers have to end on SIGTERM before they are killed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_SECONDS = 5.0


def run(found: list[Source]) -> int:
    """Print each source's lines (prefixed with its host when there are several); the worst
    exit status.

    Whatever ends this command (the readers' end, Ctrl-C, SIGTERM or SIGHUP, an error; not
    SIGKILL) stops the readers left, with SIGTERM, then SIGKILL after :data:`STOP_SECONDS`: a
    ``tail -F`` does not outlive ``sitekit logs --follow``. A reader here runs in a session of
    its own, whose processes are stopped together; a remote host's is ``ssh`` alone (kept in
    this terminal's session, where it can ask for a passphrase), whose end closes the
    connection, which stops the remote reader (_REMOTE_FOLLOW)."""
    single = len(found) == 1
    lock = threading.Lock()
    procs: list[tuple[Source, subprocess.Popen]] = []
    threads: list[threading.Thread] = []
    # a signal that comes while a reader starts is acted on once it has started (that reader
    # would be missed otherwise); one ignored, as SIGHUP under nohup, stays ignored
    state: dict[str, Any] = {"starting": True, "pending": None}

    def stopped(signum: int, _frame: Any) -> None:
        if state["starting"]:
            state["pending"] = state["pending"] or signum
            return
        raise Stopped(signum)

    previous = {signum: signal.signal(signum, stopped) for signum in STOP_SIGNALS
                if signal.getsignal(signum) is not signal.SIG_IGN}

    def relay(source: Source, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                sys.stdout.write(f"{source.host}: {line.decode('utf-8', 'replace')}")
                sys.stdout.flush()

    try:
        sys.stdout.flush()
        for source in found:
            # a remote follower's input stays open until it is stopped (see _REMOTE_FOLLOW)
            remote_follow = source.follow and not source.local
            procs.append((source, subprocess.Popen(
                argv_of(source), stdout=None if single else subprocess.PIPE,
                stdin=subprocess.PIPE if remote_follow else subprocess.DEVNULL,
                start_new_session=source.local)))
        state["starting"] = False
        if state["pending"]:
            raise Stopped(state["pending"])
        if not single:
            threads = [threading.Thread(target=relay, args=pair, daemon=True) for pair in procs]
            for thread in threads:
                thread.start()
        # a reader ended by a signal: 128 + its number, as a shell reports it
        codes = [code if code >= 0 else 128 - code for code in (p.wait() for _, p in procs)]
        for thread in threads:
            thread.join()
        return max(codes)
    finally:
        # a further signal (a closed terminal may send SIGHUP twice) cannot cut this short
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        _stop(procs)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop(procs: list[tuple[Source, subprocess.Popen]]) -> None:
    """SIGTERM to what is left of each reader (a local one's process group), SIGKILL to what
    is left after :data:`STOP_SECONDS`."""

    def send(signum: int, everything: bool) -> None:
        for source, proc in procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if source.local and (everything or proc.returncode is None):
                    # the group outlives its leader while a member runs (tail after sh)
                    os.killpg(proc.pid, signum)
                elif proc.returncode is None:
                    proc.send_signal(signum)

    send(signal.SIGTERM, everything=False)
    for _, proc in procs:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    deadline = time.monotonic() + STOP_SECONDS
    for _, proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    if any(proc.returncode is None for _, proc in procs):
        send(signal.SIGKILL, everything=True)
        for _, proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)


def cmd_logs(args: argparse.Namespace) -> int:
    try:
        root = inventory.project_root(Path(args.project) if args.project else None)
        try:
            inv = inventory.find(args.env, root)
        except inventory.InventoryError as exc:
            raise LogsError(str(exc)) from None
        extra = [manage.extra_source(given) for given in args.inventories or []]
        found = sources(inv, args.site, host=args.host, root=args.root, lines=args.lines,
                        follow=args.follow, errors=args.errors, extra=extra)
    except (LogsError, manage.ManageError, inventory.InventoryError) as exc:
        print(f"sitekit logs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(found)
    except KeyboardInterrupt:  # Ctrl-C before the readers started
        return 130
    except Stopped as exc:  # Ctrl-C (130), SIGTERM (143), SIGHUP (129)
        return 128 + exc.signum


DESCRIPTION = (
    "Print SITE's nginx access-log lines (with --errors, its nginx error lines): the last "
    "--lines of them on each web host of ENV, prefixed with the host's name when there are "
    "several. Whichever layout nginx logs in (sitekit_nginx_logs, resolved as the deploy "
    f"resolves it: per-site up to {model.PER_SITE_LOGS_MAX} present sites for auto): with "
    "per-site logs, the site's "
    "own <site>.access.log (<site>.error.log); with the shared layout, the lines of access.log "
    "that start with the site's name (error.log's lines naming the site's first domain as their "
    "server). When a web host is this machine (ansible_connection: local, as in `local`) the "
    "files are read here, in nginx's log directory (nginx_log_dir: <sitekit_root>/log/nginx "
    "in local mode, /var/log/nginx in system mode); otherwise over ssh with the inventory's "
    "connection variables, as `sitekit manage` reaches a host, reading /var/log/nginx as root "
    "(sudo -n: the SSH user needs sudo without a password prompt, as the deploy's become does)."
)
EPILOG = """\
examples:
  sitekit logs local harbor                  the last 10 requests harbor answered
  sitekit logs production harbor -n 100 -f   the last 100, then every new one (Ctrl-C ends)
  sitekit logs production harbor --errors --host web1.prod.example.com

exit status: 0 when the lines were printed; 2 on a usage error (unknown environment, site or
host); otherwise that of the command reading them (for example 1 when a log does not exist:
the site has had no request since it was deployed or its log was rotated)."""


def add_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                command_: Any, env_help: str) -> None:
    """Register `sitekit logs` (``command_``: the CLI's helper that adds one)."""
    parser = command_(sub, "logs", cmd_logs, [common],
                      help="print a site's nginx access-log lines from its web hosts",
                      description=textwrap.fill(DESCRIPTION, 79), epilog=EPILOG,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("env", metavar="ENV", help=env_help)
    parser.add_argument("site", metavar="SITE", help="the site's name, as in the catalogue")
    parser.add_argument("-n", "--lines", type=_lines, default=10, metavar="N",
                        help="the last N lines of each host (default: 10)")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="then print the lines written afterwards, until interrupted")
    parser.add_argument("--errors", action="store_true",
                        help="the site's nginx error lines instead of its requests")
    parser.add_argument("--host", metavar="HOST",
                        help="only this web host (default: every web host of the inventory)")
    parser.add_argument("-i", "--inventory", dest="inventories", action="append",
                        metavar="FILE",
                        help="a further inventory file (YAML) whose variables join the "
                        "environment's, as for `sitekit manage` (repeatable)")
    parser.add_argument("--root", metavar="DIR",
                        help="the environment's sitekit_root when it was deployed elsewhere "
                        "than its inventory says (make up STACK=DIR)")


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of lines: {text!r}") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"lines are between 0 and 1000000, got {value}")
    return value
