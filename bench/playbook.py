#!/usr/bin/env python3
"""Playbook time with many sites: a no-op re-run with 50 sites against 1, and the fast path.

Two figures, measured side by side in one run on the local inventory:

1. A no-op re-run of the whole playbook (``ansible-playbook -i inventories/local
   ansible/site.yml``) on a stack serving 50 sites against the same re-run on a stack serving
   1 site (target: at most 3 times as long; per-site work must not dominate).
2. The fast path after adding one domain (``sitekit domain add local harbor DOMAIN``, then
   ``ansible-playbook -i inventories/local ansible/site.yml --tags sites``) against a no-op
   re-run of the 1-site stack (target: at most 1.5 times as long).

Two scratch copies of this checkout's tracked files are made in a temporary directory: one
whose local catalogue has 1 present site (harbor), one with 50, the other 49 added with
``sitekit site add`` (so each has its own settings module and branded sub-application). Every
site gets ``--workers`` (1) gunicorn worker, so 50 masters fit on a small machine. Each copy is
deployed as its own throwaway stack (its own sitekit root and free port, as the end-to-end
tests deploy theirs) by the real playbook, run from the copy with this checkout's
``.venv/bin/ansible-playbook``, once to converge (not timed), then once more to check that a
re-run changes nothing.

Then ``--rounds`` (5) rounds, each: a no-op run on the 1-site stack, a no-op run on the
50-site stack, and the fast path on the 1-site stack (a new domain added first, not timed;
after the run, an HTTP request with that Host must reach harbor through nginx). Medians,
min/max, the ratios of the medians and the median of the ratios of each round are printed;
the targets are judged on the latter, which cancels most of what else runs on the machine.
Finally, one more run of each kind with Ansible's ``profile_tasks`` callback (not timed with
the others) gives the number of tasks and the slowest ones, to show which tasks grow with the
number of sites.

Only exit codes, the PLAY RECAP, the task banners and the profile_tasks summary of
``ansible-playbook`` are read, and HTTP: no task name or count is assumed.

Every stack is stopped (as ``make down`` does) on exit, also on errors, Ctrl-C, SIGTERM or
``--timeout``; the temporary directory is removed unless ``--keep``.

    .venv/bin/python bench/playbook.py                    # 50 sites against 1, 5 rounds
    .venv/bin/python bench/playbook.py --rounds 3 --json
    .venv/bin/python bench/playbook.py --sites 20 --no-profile
    .venv/bin/python bench/playbook.py --source ../other-checkout   # its roles, this .venv
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CATALOGUE = Path("inventories") / "local" / "group_vars" / "all" / "sites.yml"
PLAYBOOK = ["-i", "inventories/local", "ansible/site.yml"]


# bench/common.py's helpers: errors, logging, processes
sys.path.insert(0, str(REPO))
from bench import common  # noqa: E402

BenchError = common.BenchError
Interrupted = common.Interrupted
log = common.log

KINDS = {
    "noop_one": "no-op, 1 site",
    "noop_many": "no-op, {sites} sites",
    "fast_one": "fast path (+1 domain, --tags sites), 1 site",
}


# --- scratch copies ---------------------------------------------------------------------------


def copy_checkout(source: Path, dest: Path) -> int:
    """The tracked files of *source* (as they are in its working tree) copied to *dest*."""
    proc = subprocess.run(
        ["git", "-C", str(source), "ls-files", "-z"],
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise BenchError(f"{source} is not a git checkout: {proc.stderr.decode().strip()}")
    count = 0
    for name in proc.stdout.decode().split("\0"):
        if not name:
            continue
        src = source / name
        if not src.exists() and not src.is_symlink():
            continue  # deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
        count += 1
    return count


def base_site(source: Path) -> dict:
    """The first present site of *source*'s local catalogue (harbor)."""
    data = yaml.safe_load((source / CATALOGUE).read_text(encoding="utf-8"))
    for site in data.get("sitekit_sites") or []:
        if site.get("state", "present") == "present":
            return site
    raise BenchError(f"no present site in {source / CATALOGUE}")


def write_one_site_catalogue(project: Path, site: dict, workers: int) -> None:
    domains = ", ".join(json.dumps(d) for d in site["domains"])
    (project / CATALOGUE).write_text(
        "---\n"
        "# bench/playbook.py: the local catalogue of a scratch copy.\n"
        "sitekit_sites:\n"
        f"  - name: {site['name']}\n"
        f"    domains: [{domains}]\n"
        f"    workers: {workers}\n",
        encoding="utf-8",
    )


def sitekit(tools: Path, project: Path, *argv: str) -> str:
    """The sitekit command line on a scratch copy; its output, or BenchError."""
    proc = subprocess.run(
        [str(tools / "sitekit"), "--project", str(project), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=project,
    )
    if proc.returncode != 0:
        raise BenchError(
            f"sitekit {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"[
                -3000:
            ]
        )
    return proc.stdout


def extra_site_name(i: int) -> str:
    return f"site{i:03d}"


# --- stacks -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """A scratch copy and the throwaway stack deployed from it."""

    label: str
    project: Path
    root: Path
    port: int
    sites: list[str]
    deployed: bool = False
    added: list[str] = field(default_factory=list)
    tls_port: int = field(default_factory=lambda: free_port())


@dataclass
class Run:
    kind: str
    seconds: float
    returncode: int
    output: str
    load: float

    @property
    def recap(self) -> dict[str, int]:
        """The PLAY RECAP, summed over the hosts."""
        text = self.output.split("PLAY RECAP", 1)[-1] if "PLAY RECAP" in self.output else ""
        totals: dict[str, int] = {}
        for line in text.splitlines():
            if re.match(r"^\S+\s+:\s+ok=\d+", line):
                for key, value in re.findall(r"(\w+)=(\d+)", line):
                    totals[key] = totals.get(key, 0) + int(value)
        return totals

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

    def summary(self) -> dict:
        return {
            "kind": self.kind,
            "seconds": round(self.seconds, 3),
            "returncode": self.returncode,
            "recap": self.recap,
            "tasks": self.tasks,
            "changed_tasks": self.changed_tasks,
            "load_1min": round(self.load, 2),
        }


class Runner:
    """Runs ansible-playbook in a scratch copy, its own process group, its output logged."""

    def __init__(self, tools: Path, logs: Path, run_timeout: float):
        self.tools = tools
        self.logs = logs
        self.run_timeout = run_timeout
        self.count = 0

    def playbook(self, stack: Stack, kind: str, *extra: str, profile: bool = False) -> Run:
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(stack.project / "ansible" / "ansible.cfg"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_FORCE_COLOR="0",
            PYTHONUNBUFFERED="1",
        )
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        if profile:
            env.update(
                ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
                PROFILE_TASKS_TASK_OUTPUT_LIMIT="all",
                PROFILE_TASKS_SORT_ORDER="none",
            )
        cmd = [
            str(self.tools / "ansible-playbook"),
            *PLAYBOOK,
            "-e",
            f"sitekit_root={stack.root}",
            "-e",
            f"sitekit_public_port={stack.port}",
            "-e",
            f"sitekit_tls_port={stack.tls_port}",
            *extra,
        ]
        self.count += 1
        log_path = self.logs / f"{self.count:02d}-{stack.label}-{kind}.log"
        with open(log_path, "w+", encoding="utf-8") as out:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            started = time.perf_counter()
            proc = subprocess.Popen(
                cmd,
                cwd=stack.project,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                proc.wait(timeout=self.run_timeout)
            except subprocess.TimeoutExpired:
                stop_group(proc)
                raise BenchError(
                    f"{stack.label} {kind}: ansible-playbook took more than "
                    f"{self.run_timeout:.0f}s (log: {log_path})"
                ) from None
            except BaseException:
                stop_group(proc)  # Ctrl-C, SIGTERM, --timeout: the playbook stops too
                raise
            seconds = time.perf_counter() - started
            out.seek(0)
            output = out.read()
        run = Run(kind, seconds, proc.returncode, output, os.getloadavg()[0])
        recap = run.recap
        if run.returncode != 0 or not recap or recap.get("failed") or recap.get("unreachable"):
            raise BenchError(
                f"{stack.label} {kind}: ansible-playbook failed (exit {run.returncode}, "
                f"recap {recap or 'missing'}; log: {log_path}):\n" + output[-4000:]
            )
        return run


def stop_group(proc: subprocess.Popen) -> None:
    """SIGINT (Ansible stops between tasks), then SIGTERM, then SIGKILL to the group."""
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
    for pid in common.group_pids(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pid_from(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            data = f.read()
        return data[data.rindex(")") + 2 :].split()[0] not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


def _kill_tree(pid: int, first: int, wait: float) -> None:
    if not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, first)
    deadline = time.monotonic() + wait
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    for child in [*common.child_pids(pid), pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def stop_stack(stack: Stack, venv: Path) -> None:
    """What `make down` does for the stack's root; then whatever is still running is killed
    (supervisord, the masters from their pid files, nginx)."""
    if not stack.root.exists():
        return
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            ["make", "-s", "-C", str(REPO), "down", f"STACK={stack.root}", f"VENV={venv}"],
            capture_output=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    run = stack.root / "run"
    leftovers = []
    supervisord = _pid_from(run / "supervisord.pid")
    if _alive(supervisord):
        leftovers.append(f"supervisord {supervisord}")
        _kill_tree(supervisord, signal.SIGTERM, 30.0)
    for pidfile in sorted(run.glob("*/gunicorn.pid")):
        pid = _pid_from(pidfile)
        if _alive(pid):
            leftovers.append(f"gunicorn {pid} ({pidfile.parent.name})")
            _kill_tree(pid, signal.SIGTERM, 10.0)
    nginx = _pid_from(run / "nginx.pid")
    if _alive(nginx):
        leftovers.append(f"nginx {nginx}")
        _kill_tree(nginx, signal.SIGQUIT, 10.0)
    if leftovers:
        log(f"{stack.label}: still running after make down, stopped: {', '.join(leftovers)}")


# --- HTTP -------------------------------------------------------------------------------------


def request(stack: Stack, host: str, path: str = "/", timeout: float = 15.0):
    """(status, headers, body) of a GET through the stack's nginx over https (SNI *host*, its
    certificate verified with the stack's CA), or None when nginx closed the connection without
    an answer."""
    conn = common.https_connection(stack.tls_port, host, common.stack_ca(stack.root), timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "User-Agent": "sitekit-bench"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    finally:
        conn.close()


def served_by(stack: Stack, host: str, site: str) -> bool:
    with contextlib.suppress(OSError, http.client.HTTPException):
        answer = request(stack, host)
        return bool(answer and answer[0] == 200 and answer[1].get("x-sitekit-site") == site)
    return False


def check_sites(stack: Stack, domains: dict[str, str]) -> None:
    """Every site answers /healthz for its canonical domain, through nginx."""
    wrong = []
    for name, domain in domains.items():
        answer = None
        with contextlib.suppress(OSError, http.client.HTTPException):
            answer = request(stack, domain, "/healthz")
        site = None
        if answer and answer[0] == 200:
            with contextlib.suppress(ValueError, AttributeError):
                site = json.loads(answer[2]).get("site")
        if site != name:
            wrong.append(f"{name} ({domain}): {answer[0] if answer else 'no answer'}")
    if wrong:
        raise BenchError(f"{stack.label}: sites not served after the deploy: {', '.join(wrong)}")


def wait_served(stack: Stack, host: str, site: str, timeout: float) -> float | None:
    """Seconds until *host* reaches *site* (0 when it does at once), None if it never does."""
    started = time.monotonic()
    while True:
        if served_by(stack, host, site):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.2)


# --- profile_tasks ----------------------------------------------------------------------------


def profile(output: str) -> list[tuple[str, float]]:
    """(task, seconds) from profile_tasks' summary, in the order the tasks ran (the callback
    runs with PROFILE_TASKS_SORT_ORDER=none)."""
    _, sep, recap = output.rpartition("TASKS RECAP")
    if not sep:
        raise BenchError("no profile_tasks summary (TASKS RECAP) in the playbook's output")
    tasks = []
    for line in recap.splitlines():
        match = re.match(r"^(?P<name>.*?)[ -]*\s(?P<seconds>\d+\.\d+)s$", line)
        if match and not line.startswith("="):
            tasks.append((match["name"].rstrip(" -"), float(match["seconds"])))
    return tasks


def profile_summary(run: Run) -> dict:
    """The run's profile: every task with its occurrence (a task that runs twice, as a role
    that is also another role's dependency, is told apart by the order it ran in)."""
    seen: dict[str, int] = {}
    tasks = []
    for name, seconds in profile(run.output):
        seen[name] = seen.get(name, 0) + 1
        tasks.append({"task": name, "occurrence": seen[name], "seconds": seconds})
    return {
        **run.summary(),
        "profiled_tasks": len(tasks),
        "profiled_seconds": round(sum(t["seconds"] for t in tasks), 2),
        "tasks_in_order": tasks,
        "slowest": sorted(tasks, key=lambda t: t["seconds"], reverse=True),
    }


# --- figures ----------------------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": [round(v, 3) for v in values],
    }


def ratio(rounds: list[dict], a: str, b: str, target: float) -> dict:
    per_round = [r[a]["seconds"] / r[b]["seconds"] for r in rounds]
    median_a = statistics.median(r[a]["seconds"] for r in rounds)
    median_b = statistics.median(r[b]["seconds"] for r in rounds)
    judged = statistics.median(per_round)
    return {
        "of": a,
        "to": b,
        "median_of_round_ratios": judged,
        "round_ratios": [round(x, 3) for x in per_round],
        "ratio_of_medians": median_a / median_b,
        "target": target,
        "met": judged <= target,
    }


def first_line(cmd: list[str]) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
        )
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        if lines:
            return lines[0]
    return "?"


def machine(tools: Path) -> dict:
    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible": first_line([str(tools / "ansible-playbook"), "--version"]),
        "nginx": first_line(["/usr/sbin/nginx", "-v"]).replace("nginx version: ", ""),
        "load_start": [round(x, 2) for x in os.getloadavg()],
    }


# --- the run ----------------------------------------------------------------------------------


def prepare(args, workdir: Path, tools: Path) -> tuple[Stack, Stack, dict[str, str]]:
    """The two scratch copies: 1 site, and --sites sites (the others added by sitekit)."""
    site = base_site(args.source)
    one_dir = workdir / "one" / "project"
    count = copy_checkout(args.source, one_dir)
    write_one_site_catalogue(one_dir, site, args.workers)
    sitekit(tools, one_dir, "check", "local")
    log(f"copied {count} tracked files of {args.source}; 1-site catalogue: {site['name']}")
    many_dir = workdir / "many" / "project"
    shutil.copytree(one_dir, many_dir, symlinks=True)
    names = [site["name"]]
    canonical = {site["name"]: site["domains"][0]}
    log(f"adding {args.sites - 1} sites to the second copy with sitekit site add")
    for i in range(2, args.sites + 1):
        name = extra_site_name(i)
        domain = f"{name}.localhost"
        sitekit(
            tools,
            many_dir,
            "site",
            "add",
            "local",
            name,
            domain,
            f"www.{domain}",
            "--workers",
            str(args.workers),
        )
        names.append(name)
        canonical[name] = domain
    checked = sitekit(tools, many_dir, "check", "local").strip()
    log(f"  {checked}")
    one = Stack("one", one_dir, workdir / "one" / "stack", free_port(), [site["name"]])
    many = Stack("many", many_dir, workdir / "many" / "stack", free_port(), names)
    return one, many, canonical


def converge(runner: Runner, stack: Stack, canonical: dict[str, str]) -> dict:
    log(
        f"{stack.label}: deploying {len(stack.sites)} site(s) to {stack.root} on port "
        f"{stack.port} (first run, not timed with the others)"
    )
    stack.deployed = True
    first = runner.playbook(stack, "deploy")
    log(f"  {first.seconds:.1f}s, {first.tasks} tasks, {first.recap}")
    check_sites(stack, {n: canonical[n] for n in stack.sites})
    second = runner.playbook(stack, "rerun")
    changed = second.recap.get("changed", 0)
    log(
        f"  second run {second.seconds:.1f}s: changed={changed}"
        + ("" if not changed else "  NOT A NO-OP: " + "; ".join(second.changed_tasks))
    )
    return {"deploy": first.summary(), "rerun": second.summary(), "converged": changed == 0}


class FastPath:
    """Adds a new domain to the 1-site copy's site, then runs the fast path and checks it."""

    def __init__(self, args, runner: Runner, tools: Path, stack: Stack, site: str):
        self.args, self.runner, self.tools, self.stack, self.site = args, runner, tools, stack, site

    def __call__(self, kind: str, profile: bool = False) -> tuple[Run, dict]:
        stack = self.stack
        domain = f"bench{len(stack.added) + 1:02d}-{os.getpid()}.{self.site}.localhost"
        sitekit(self.tools, stack.project, "domain", "add", "local", self.site, domain)
        stack.added.append(domain)
        before = served_by(stack, domain, self.site)
        run = self.runner.playbook(stack, kind, "--tags", "sites", profile=profile)
        after = wait_served(stack, domain, self.site, self.args.serve_timeout)
        if after is None:
            raise BenchError(
                f"after the fast path, Host {domain} does not reach "
                f"{self.site} within {self.args.serve_timeout:.0f}s"
            )
        return run, {"domain": domain, "served_before": before, "served_after_s": round(after, 2)}


def run(args: argparse.Namespace, report: dict) -> None:
    tools = args.tools
    workdir = Path(tempfile.mkdtemp(prefix="sitekit-bench-playbook-"))
    logs = workdir / "logs"
    logs.mkdir()
    stacks: list[Stack] = []
    report["run"] = {
        "sites": args.sites,
        "workers": args.workers,
        "rounds": args.rounds,
        "source": str(args.source),
        "workdir": str(workdir) if args.keep else None,
    }
    report["machine"] = machine(tools)
    log(f"working directory {workdir}")
    try:
        one, many, canonical = prepare(args, workdir, tools)
        stacks += [one, many]
        runner = Runner(tools, logs, args.run_timeout)
        report["converge"] = {s.label: converge(runner, s, canonical) for s in (one, many)}
        fast = FastPath(args, runner, tools, one, one.sites[0])

        rounds: list[dict] = []
        report["rounds"] = rounds
        for r in range(1, args.rounds + 1):
            entry: dict = {}
            entry["noop_one"] = runner.playbook(one, "noop").summary()
            entry["noop_many"] = runner.playbook(many, "noop").summary()
            fast_run, served = fast("fast")
            entry["fast_one"] = {**fast_run.summary(), **served}
            rounds.append(entry)
            log(
                f"round {r}/{args.rounds}: no-op 1 site {entry['noop_one']['seconds']:.1f}s, "
                f"no-op {args.sites} sites {entry['noop_many']['seconds']:.1f}s, fast path "
                f"{entry['fast_one']['seconds']:.1f}s (load {os.getloadavg()[0]:.2f})"
            )
            for kind in ("noop_one", "noop_many"):
                if entry[kind]["recap"].get("changed"):
                    log(
                        f"  {KINDS[kind].format(sites=args.sites)} changed something: "
                        + "; ".join(entry[kind]["changed_tasks"])
                    )

        report["figures"] = {kind: stats([r[kind]["seconds"] for r in rounds]) for kind in KINDS}
        medians = {kind: f["median"] for kind, f in report["figures"].items()}
        report["figures"]["seconds_per_extra_site"] = (
            medians["noop_many"] - medians["noop_one"]
        ) / (args.sites - 1)
        report["ratios"] = {
            "sites": ratio(rounds, "noop_many", "noop_one", args.target_sites),
            "fast_path": ratio(rounds, "fast_one", "noop_one", args.target_fast),
        }

        if args.profile:
            log("one more run of each kind with the profile_tasks callback")
            profiled = {
                "noop_one": profile_summary(runner.playbook(one, "profile-noop", profile=True)),
                "noop_many": profile_summary(runner.playbook(many, "profile-noop", profile=True)),
            }
            fast_run, served = fast("profile-fast", profile=True)
            profiled["fast_one"] = {**profile_summary(fast_run), **served}
            report["profile"] = profiled
        report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        # Neither Ctrl-C nor the timeout may interrupt the clean-up.
        signal.alarm(0)
        previous = {
            s: signal.signal(s, signal.SIG_IGN)
            for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        }
        try:
            for stack in stacks:
                if stack.deployed:
                    log(f"stopping the {stack.label} stack")
                    stop_stack(stack, tools.parent)
            if args.keep:
                log(f"kept {workdir} (playbook logs in {logs})")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


# --- the report -------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def print_report(report: dict, top: int = 15) -> None:
    m, run_info = report["machine"], report["run"]
    sites = run_info["sites"]
    print(
        f"sitekit playbook time: a no-op re-run with {sites} sites against 1, and the fast "
        "path for one added domain (local inventory)"
    )
    print(
        f"  {m['cpus']} CPUs, kernel {m['kernel']}, Python {m['python']}, {m['ansible']}, "
        f"nginx {m['nginx']}"
    )
    load_end = m.get("load_end")
    print(
        f"  load average (1/5/15 min) {' '.join(f'{x:.2f}' for x in m['load_start'])} at start"
        + (f", {' '.join(f'{x:.2f}' for x in load_end)} at end" if load_end else "")
    )
    print(
        f"  {run_info['workers']} gunicorn worker per site; {run_info['rounds']} rounds, each "
        "a no-op run on each stack, then the fast path on the 1-site stack"
    )
    print()
    for label, c in report["converge"].items():
        n = 1 if label == "one" else sites
        rerun = c["rerun"]
        state = "converged" if c["converged"] else "NOT A NO-OP"
        print(
            f"  {n:>3} site{'s' if n > 1 else ' '}: first deploy {c['deploy']['seconds']:.1f} s;"
            f" re-run changed={rerun['recap'].get('changed', 0)} ({state})"
        )
        for task in rerun["changed_tasks"]:
            print(f"        changed: {task}")
    print()
    header = f"  {'':<46}{'median':>8}{'min':>8}{'max':>8}{'tasks':>7}  recap (last round)"
    print(header)
    rounds = report["rounds"]
    for kind, label in KINDS.items():
        f = report["figures"][kind]
        last = rounds[-1][kind]
        recap = " ".join(f"{k}={last['recap'].get(k, 0)}" for k in ("ok", "changed", "skipped"))
        print(
            f"  {label.format(sites=sites):<46}{f['median']:>7.1f}s{f['min']:>7.1f}s"
            f"{f['max']:>7.1f}s{last['tasks']:>7}  {recap}"
        )
    unclean = [
        (i, kind)
        for i, r in enumerate(rounds, 1)
        for kind in ("noop_one", "noop_many")
        if r[kind]["recap"].get("changed")
    ]
    for i, kind in unclean:
        print(
            f"  round {i}, {KINDS[kind].format(sites=sites)}: changed="
            f"{rounds[i - 1][kind]['recap']['changed']}: "
            + "; ".join(rounds[i - 1][kind]["changed_tasks"])
        )
    served = [r["fast_one"]["served_after_s"] for r in rounds]
    print(
        f"  each added domain reached the site through nginx once the fast path returned "
        f"(after {max(served):.1f} s at most)"
    )
    early = [r["fast_one"]["domain"] for r in rounds if r["fast_one"]["served_before"]]
    if early:
        print(f"  WARNING: already served before the fast path ran: {', '.join(early)}")
    per_site = report["figures"]["seconds_per_extra_site"]
    print(
        f"  each site beyond the first adds {per_site:.2f} s to a no-op run (difference of the "
        f"medians / {sites - 1})"
    )
    print()
    for key, label in (
        ("sites", f"no-op {sites} sites / 1 site"),
        ("fast_path", "fast path / no-op 1 site"),
    ):
        r = report["ratios"][key]
        print(
            f"  {label:<30} {r['median_of_round_ratios']:.2f} (median of "
            f"{len(r['round_ratios'])} rounds, {min(r['round_ratios']):.2f}-"
            f"{max(r['round_ratios']):.2f}; ratio of the medians {r['ratio_of_medians']:.2f})"
            f"   target <= {r['target']:g}: {verdict(r['met'])}"
        )
    if "profile" in report:
        print_profile(report["profile"], sites, top)


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def print_profile(profiled: dict, sites: int, top: int) -> None:
    print()
    print("  profile_tasks, one more run of each: tasks started, their time added up, wall time")
    for kind, label in KINDS.items():
        p = profiled[kind]
        print(
            f"    {label.format(sites=sites):<46}{p['tasks']:>4} tasks "
            f"{p['profiled_seconds']:>7.1f} s in tasks {p['seconds']:>7.1f} s"
        )
    one = {(t["task"], t["occurrence"]): t["seconds"] for t in profiled["noop_one"]["slowest"]}
    slowest = profiled["noop_many"]["slowest"][:top]
    width = min(72, max(len(t["task"]) for t in slowest))
    print()
    print(f"  slowest tasks of the no-op run with {sites} sites, and the same task with 1 site:")
    print(f"    {'':<{width}} {sites:>5} sites  1 site")
    for t in slowest:
        alone = one.get((t["task"], t["occurrence"]))
        again = (
            " (2nd run)"
            if t["occurrence"] == 2
            else (f" ({t['occurrence']}th run)" if t["occurrence"] > 2 else "")
        )
        name = _short(t["task"], width - len(again)) + again
        print(
            f"    {name:<{width}} {t['seconds']:>9.2f} s"
            + (f" {alone:>6.2f} s" if alone is not None else "        -")
        )
    fast = profiled["fast_one"]["slowest"][: max(5, top // 2)]
    width = min(72, max(len(t["task"]) for t in fast))
    print()
    print("  slowest tasks of the fast path (1 site):")
    for t in fast:
        print(f"    {_short(t['task'], width):<{width}} {t['seconds']:>9.2f} s")


# --- command line -----------------------------------------------------------------------------


def default_tools() -> Path:
    venv = REPO / ".venv" / "bin"
    return venv if (venv / "ansible-playbook").exists() else Path(sys.executable).parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/playbook.py",
        description=(
            "Time a no-op re-run of the playbook on a local stack with many sites (default 50) "
            "against one with 1 site, and the fast path for one added domain (sitekit domain "
            "add, then --tags sites) against the 1-site no-op run, in interleaved rounds. "
            "Both stacks are deployed from scratch copies of the checkout by the real playbook. "
            "Prints medians, min/max, ratios with met / NOT MET against the targets, and the "
            "slowest tasks (profile_tasks)."
        ),
        epilog=(
            "Exit status: 0 when the run completed (whether or not the targets were met), 2 "
            "when it failed, 130 when it was interrupted or timed out. Every stack started is "
            "stopped in all cases."
        ),
    )
    parser.add_argument(
        "--sites",
        type=int,
        default=50,
        metavar="N",
        help="present sites of the larger stack (default: 50)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, metavar="N", help="measured rounds (default: 5)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="gunicorn workers of every site (default: 1)",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the extra runs with the profile_tasks callback",
    )
    parser.add_argument(
        "--target-sites",
        type=float,
        default=3.0,
        metavar="RATIO",
        help="no-op run, many sites / 1 site (default: <= 3)",
    )
    parser.add_argument(
        "--target-fast",
        type=float,
        default=1.5,
        metavar="RATIO",
        help="fast path / no-op run, 1 site (default: <= 1.5)",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=REPO,
        metavar="DIR",
        help="the checkout whose tracked files are copied (default: this one); "
        "ansible-playbook and sitekit stay this checkout's .venv",
    )
    parser.add_argument(
        "--tools",
        type=Path,
        default=default_tools(),
        metavar="DIR",
        help="directory of ansible-playbook, sitekit and supervisorctl "
        "(default: this checkout's .venv/bin)",
    )
    parser.add_argument(
        "--serve-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time for an added domain to be served after the fast path (default: 10)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="limit of one ansible-playbook run (default: 1800)",
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=10800,
        metavar="SECONDS",
        help="overall limit of the run (default: 10800)",
    )
    parser.add_argument(
        "--top",
        type=int,
        default=15,
        metavar="N",
        help="slowest tasks shown from the profile (default: 15)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the results as JSON instead of a report"
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary directory (copies, stack roots, playbook logs)",
    )
    args = parser.parse_args(argv)
    if args.sites < 2:
        parser.error("--sites must be at least 2")
    if args.sites > 999:
        parser.error("--sites must be at most 999")
    if args.rounds < 1 or args.top < 1:
        parser.error("--rounds and --top must be at least 1")
    if not 1 <= args.workers <= 64:
        parser.error("--workers must be between 1 and 64")
    args.source = args.source.resolve()
    args.tools = args.tools.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("ansible-playbook", "sitekit", "supervisorctl"):
        if not os.access(args.tools / tool, os.X_OK):
            log(f"error: {args.tools / tool} not found (run make venv)")
            return 2
    if not os.access("/usr/sbin/nginx", os.X_OK):
        log("error: /usr/sbin/nginx is not executable (apt-get install nginx-light)")
        return 2

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
        run(args, report)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    except Interrupted as exc:
        log(f"stopped: {exc}")
        return 130
    except KeyboardInterrupt:
        log("stopped: interrupted")
        return 130
    finally:
        signal.alarm(0)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
