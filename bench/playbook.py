#!/usr/bin/env python3
"""Playbook time with many sites: a no-op re-run with 50 sites against 1, and the fast path.

Two scratch copies of the checkout (1 site; 50, the others added with ``sitekit site add``) are
deployed as throwaway local stacks by the real playbook and converged; then, in interleaved
rounds, a no-op run on each and the fast path (``sitekit domain add``, ``--tags sites``) on the
1-site stack, whose ratios are judged (no-op 50/1 <= 3, fast path / no-op <= 1.5), and against
the floor, a one-task play with fact gathering on the same host (no-op <= 4x, fast path <= 3x);
a last run of each with ``profile_tasks`` lists the slowest tasks. Only exit codes, the PLAY
RECAP, the task banners, profile_tasks' summary and HTTP are read. bench/README.md has the
figures.

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
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
CATALOGUE = Path("inventories") / "local" / "group_vars" / "all" / "sites.yml"
PLAYBOOK = ["-i", "inventories/local", "ansible/site.yml"]


sys.path.insert(0, str(REPO))  # run as bench/playbook.py
from bench import common  # noqa: E402
from tests import harness  # noqa: E402
from tests.harness import Run, copy_checkout  # noqa: E402

BenchError = common.BenchError
log = common.log

KINDS = {"noop_one": "no-op, 1 site",
         "noop_many": "no-op, {sites} sites",
         "fast_one": "fast path (+1 domain, --tags sites), 1 site",
         "floor": "a one-task play with fact gathering, same host"}
# The floor a run cannot go below: one task on the same host, facts gathered as site.yml does.
FLOOR_PLAY = """\
- name: The floor of a run
  hosts: web
  gather_facts: true
  gather_subset: ["!all"]
  tasks:
    - name: One task
      ansible.builtin.ping:
"""


# --- scratch copies ---------------------------------------------------------------------------


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
    return harness.sitekit(project, *argv, bin_dir=tools)


def extra_site_name(i: int) -> str:
    return f"site{i:03d}"


# --- stacks -----------------------------------------------------------------------------------


@dataclass
class Stack(harness.Stack):
    """A scratch copy (its checkout) and the throwaway stack deployed from it."""

    label: str = ""
    sites: list[str] = field(default_factory=list)
    deployed: bool = False
    added: list[str] = field(default_factory=list)


def summary(run: Run) -> dict:
    return {"kind": run.kind,
            "seconds": round(run.seconds, 3),
            "returncode": run.returncode,
            "recap": run.recap,
            "tasks": run.tasks,
            "changed_tasks": run.changed_tasks,
            "load_1min": round(run.load, 2)}


class Runner:
    """Runs the scratch copy's playbook on its stack, its output logged."""

    def __init__(self, logs: Path, run_timeout: float):
        self.logs = logs
        self.run_timeout = run_timeout
        self.count = 0

    def playbook(self, stack: Stack, kind: str, *extra: str, profile: bool = False) -> Run:
        self.count += 1
        log_path = self.logs / f"{self.count:02d}-{stack.label}-{kind}.log"
        try:
            run = stack.playbook(*extra, log_path=log_path, profile=profile,
                                 timeout=self.run_timeout)
        except harness.HarnessError as exc:
            raise BenchError(f"{stack.label} {kind}: {exc} (log: {log_path})") from None
        run.kind, run.load = kind, os.getloadavg()[0]
        if not run.ok:
            raise BenchError(
                f"{stack.label} {kind}: ansible-playbook failed (exit {run.returncode}, "
                f"recap {run.recap or 'missing'}; log: {log_path}):\n" + run.output[-4000:]
            )
        return run


# --- HTTP -------------------------------------------------------------------------------------


def request(stack: Stack, host: str, path: str = "/", timeout: float = 15.0):
    """(status, headers, body) of a GET through the stack's nginx over https (SNI *host*, its
    certificate verified with the stack's CA), or None when nginx closed the connection without
    an answer."""
    conn = stack.connection(host, timeout=timeout)
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
    return {**summary(run),
            "profiled_tasks": len(tasks),
            "profiled_seconds": round(sum(t["seconds"] for t in tasks), 2),
            "tasks_in_order": tasks,
            "slowest": sorted(tasks, key=lambda t: t["seconds"], reverse=True)}


# --- figures ----------------------------------------------------------------------------------


def stats(values: list[float]) -> dict:
    return {"median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "values": [round(v, 3) for v in values]}


def ratio(rounds: list[dict], a: str, b: str, target: float) -> dict:
    per_round = [r[a]["seconds"] / r[b]["seconds"] for r in rounds]
    median_a = statistics.median(r[a]["seconds"] for r in rounds)
    median_b = statistics.median(r[b]["seconds"] for r in rounds)
    judged = statistics.median(per_round)
    return {"of": a,
            "to": b,
            "median_of_round_ratios": judged,
            "round_ratios": [round(x, 3) for x in per_round],
            "ratio_of_medians": median_a / median_b,
            "target": target,
            "met": judged <= target}


def machine(tools: Path) -> dict:
    return common.machine(python=platform.python_version(),
                          ansible=common.first_line([str(tools / "ansible-playbook"), "--version"]))


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
        sitekit(tools, many_dir,
                "site",
                "add",
                "local", name, domain,
                f"www.{domain}",
                "--workers", str(args.workers))
        names.append(name)
        canonical[name] = domain
    checked = sitekit(tools, many_dir, "check", "local").strip()
    log(f"  {checked}")
    one = Stack(workdir / "one" / "stack", checkout=one_dir, label="one", sites=[site["name"]])
    many = Stack(workdir / "many" / "stack", checkout=many_dir, label="many", sites=names)
    return one, many, canonical


def converge(runner: Runner, stack: Stack, canonical: dict[str, str]) -> dict:
    log(f"{stack.label}: deploying {len(stack.sites)} site(s) to {stack.root} on port "
        f"{stack.port} (first run, not timed with the others)")
    stack.deployed = True
    first = runner.playbook(stack, "deploy")
    log(f"  {first.seconds:.1f}s, {first.tasks} tasks, {first.recap}")
    check_sites(stack, {n: canonical[n] for n in stack.sites})
    second = runner.playbook(stack, "rerun")
    changed = second.recap.get("changed", 0)
    log(f"  second run {second.seconds:.1f}s: changed={changed}"
        + ("" if not changed else "  NOT A NO-OP: " + "; ".join(second.changed_tasks)))
    return {"deploy": summary(first), "rerun": summary(second), "converged": changed == 0}


class FastPath:
    """Adds a new domain to the 1-site copy's site, then runs the fast path and checks it."""

    def __init__(self, args, runner: Runner, tools: Path, stack: Stack, site: str):
        self.args, self.runner, self.tools, self.stack, self.site = args, runner, tools, stack, site

    def __call__(self, kind: str, profile: bool = False) -> tuple[Run, dict]:
        stack = self.stack
        domain = f"bench{len(stack.added) + 1:02d}-{os.getpid()}.{self.site}.localhost"
        sitekit(self.tools, stack.checkout, "domain", "add", "local", self.site, domain)
        stack.added.append(domain)
        before = served_by(stack, domain, self.site)
        run = self.runner.playbook(stack, kind, "--tags", "sites", profile=profile)
        after = wait_served(stack, domain, self.site, self.args.serve_timeout)
        if after is None:
            raise BenchError(f"after the fast path, Host {domain} does not reach "
                             f"{self.site} within {self.args.serve_timeout:.0f}s")
        return run, {"domain": domain, "served_before": before, "served_after_s": round(after, 2)}


def run(args: argparse.Namespace, report: dict) -> None:
    tools = args.tools
    workdir = common.make_workdir("sitekit-bench-playbook-")
    logs = workdir / "logs"
    logs.mkdir()
    stacks: list[Stack] = []
    report["run"] = {"sites": args.sites,
                     "workers": args.workers,
                     "rounds": args.rounds,
                     "source": str(args.source),
                     "workdir": str(workdir) if args.keep else None}
    report["machine"] = machine(tools)
    try:
        one, many, canonical = prepare(args, workdir, tools)
        stacks += [one, many]
        runner = Runner(logs, args.run_timeout)
        report["converge"] = {s.label: converge(runner, s, canonical) for s in (one, many)}
        fast = FastPath(args, runner, tools, one, one.sites[0])

        floor_play = workdir / "floor.yml"
        floor_play.write_text(FLOOR_PLAY)

        def floor() -> Run:
            found = harness.playbook(floor_play, one.checkout / "inventories" / "local",
                                     cwd=one.checkout,
                                     config=one.checkout / "ansible" / "ansible.cfg",
                                     log_path=logs / "floor.log", timeout=args.run_timeout)
            found.kind, found.load = "floor", os.getloadavg()[0]
            if not found.ok:
                raise BenchError(f"the one-task play failed:\n{found.output[-2000:]}")
            return found

        rounds: list[dict] = []
        report["rounds"] = rounds
        for r in range(1, args.rounds + 1):
            entry: dict = {}
            entry["floor"] = summary(floor())
            entry["noop_one"] = summary(runner.playbook(one, "noop"))
            entry["noop_many"] = summary(runner.playbook(many, "noop"))
            fast_run, served = fast("fast")
            entry["fast_one"] = {**summary(fast_run), **served}
            rounds.append(entry)
            log(f"round {r}/{args.rounds}: no-op 1 site {entry['noop_one']['seconds']:.1f}s, "
                f"no-op {args.sites} sites {entry['noop_many']['seconds']:.1f}s, fast path "
                f"{entry['fast_one']['seconds']:.1f}s (load {os.getloadavg()[0]:.2f})")
            for kind in ("noop_one", "noop_many"):
                if entry[kind]["recap"].get("changed"):
                    log(f"  {KINDS[kind].format(sites=args.sites)} changed something: "
                        + "; ".join(entry[kind]["changed_tasks"]))

        report["figures"] = {kind: stats([r[kind]["seconds"] for r in rounds]) for kind in KINDS}
        medians = {kind: f["median"] for kind, f in report["figures"].items()}
        report["figures"]["seconds_per_extra_site"] = (
            medians["noop_many"] - medians["noop_one"]
        ) / (args.sites - 1)
        report["ratios"] = {"sites": ratio(rounds, "noop_many", "noop_one", args.target_sites),
                            "fast_path": ratio(rounds, "fast_one", "noop_one", args.target_fast),
                            "noop_floor": ratio(rounds, "noop_one", "floor", args.target_floor),
                            "fast_floor": ratio(rounds, "fast_one", "floor",
                                                args.target_fast_floor)}

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
        with common.shielded():  # neither Ctrl-C nor the timeout may interrupt the clean-up
            for stack in stacks:
                if stack.deployed:
                    log(f"stopping the {stack.label} stack")
                    leftovers = stack.stop()
                    if leftovers:
                        log(f"{stack.label}: still running after make down, stopped: "
                            + ", ".join(leftovers))
            common.remove_workdir(workdir, args.keep)


# --- the report -------------------------------------------------------------------------------


def verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


def print_report(report: dict, top: int = 15) -> None:
    m, run_info = report["machine"], report["run"]
    sites = run_info["sites"]
    print(f"sitekit playbook time: a no-op re-run with {sites} sites against 1, and the fast "
          "path for one added domain (local inventory)")
    print(f"  {m['cpus']} CPUs, kernel {m['kernel']}, Python {m['python']}, {m['ansible']}, "
          f"nginx {m['nginx']}")
    load_end = m.get("load_end")
    print(f"  load average (1/5/15 min) {' '.join(f'{x:.2f}' for x in m['load_start'])} at start"
          + (f", {' '.join(f'{x:.2f}' for x in load_end)} at end" if load_end else ""))
    print(f"  {run_info['workers']} gunicorn worker per site; {run_info['rounds']} rounds, each "
          "a no-op run on each stack, then the fast path on the 1-site stack")
    print()
    for label, c in report["converge"].items():
        n = 1 if label == "one" else sites
        rerun = c["rerun"]
        state = "converged" if c["converged"] else "NOT A NO-OP"
        print(f"  {n:>3} site{'s' if n > 1 else ' '}: first deploy {c['deploy']['seconds']:.1f} s;"
              f" re-run changed={rerun['recap'].get('changed', 0)} ({state})")
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
        print(f"  {label.format(sites=sites):<46}{f['median']:>7.1f}s{f['min']:>7.1f}s"
              f"{f['max']:>7.1f}s{last['tasks']:>7}  {recap}")
    unclean = [(i, kind)
               for i, r in enumerate(rounds, 1)
               for kind in ("noop_one", "noop_many")
               if r[kind]["recap"].get("changed")]
    for i, kind in unclean:
        print(f"  round {i}, {KINDS[kind].format(sites=sites)}: changed="
              f"{rounds[i - 1][kind]['recap']['changed']}: "
              + "; ".join(rounds[i - 1][kind]["changed_tasks"]))
    served = [r["fast_one"]["served_after_s"] for r in rounds]
    print(f"  each added domain reached the site through nginx once the fast path returned "
          f"(after {max(served):.1f} s at most)")
    early = [r["fast_one"]["domain"] for r in rounds if r["fast_one"]["served_before"]]
    if early:
        print(f"  WARNING: already served before the fast path ran: {', '.join(early)}")
    per_site = report["figures"]["seconds_per_extra_site"]
    print(f"  each site beyond the first adds {per_site:.2f} s to a no-op run (difference of the "
          f"medians / {sites - 1})")
    print()
    for key, label in (("sites", f"no-op {sites} sites / 1 site"),
                       ("fast_path", "fast path / no-op 1 site"),
                       ("noop_floor", "no-op 1 site / one-task play"),
                       ("fast_floor", "fast path / one-task play")):
        r = report["ratios"][key]
        print(f"  {label:<30} {r['median_of_round_ratios']:.2f} (median of "
              f"{len(r['round_ratios'])} rounds, {min(r['round_ratios']):.2f}-"
              f"{max(r['round_ratios']):.2f}; ratio of the medians {r['ratio_of_medians']:.2f})"
              f"   target <= {r['target']:g}: {verdict(r['met'])}")
    if "profile" in report:
        print_profile(report["profile"], sites, top)


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def print_profile(profiled: dict, sites: int, top: int) -> None:
    print()
    print("  profile_tasks, one more run of each: tasks started, their time added up, wall time")
    for kind, label in KINDS.items():
        p = profiled[kind]
        print(f"    {label.format(sites=sites):<46}{p['tasks']:>4} tasks "
              f"{p['profiled_seconds']:>7.1f} s in tasks {p['seconds']:>7.1f} s")
    one = {(t["task"], t["occurrence"]): t["seconds"] for t in profiled["noop_one"]["slowest"]}
    slowest = profiled["noop_many"]["slowest"][:top]
    width = min(72, max(len(t["task"]) for t in slowest))
    print()
    print(f"  slowest tasks of the no-op run with {sites} sites, and the same task with 1 site:")
    print(f"    {'':<{width}} {sites:>5} sites  1 site")
    for t in slowest:
        alone = one.get((t["task"], t["occurrence"]))
        again = (" (2nd run)"
                 if t["occurrence"] == 2
                 else (f" ({t['occurrence']}th run)" if t["occurrence"] > 2 else ""))
        name = _short(t["task"], width - len(again)) + again
        print(f"    {name:<{width}} {t['seconds']:>9.2f} s"
              + (f" {alone:>6.2f} s" if alone is not None else "        -"))
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
        description=__doc__.split("\n\n")[1],
        epilog=("Exit status: 0 when the run completed (whether or not the targets were met), 2 "
                "when it failed, 130 when it was interrupted or timed out. Every stack started is "
                "stopped in all cases."),
    )
    parser.add_argument("--sites", type=int, default=50, metavar="N",
                        help="present sites of the larger stack (default: 50)")
    parser.add_argument("--rounds", type=int, default=5, metavar="N",
                        help="measured rounds (default: 5)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="gunicorn workers of every site (default: 1)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the extra runs with the profile_tasks callback")
    parser.add_argument("--target-sites", type=float, default=3.0, metavar="RATIO",
                        help="no-op run, many sites / 1 site (default: <= 3)")
    parser.add_argument("--target-fast", type=float, default=1.5, metavar="RATIO",
                        help="fast path / no-op run, 1 site (default: <= 1.5)")
    parser.add_argument("--target-floor", type=float, default=4.0, metavar="RATIO",
                        help="no-op (1 site) / one-task play must be at most this (default: 4)")
    parser.add_argument("--target-fast-floor", type=float, default=3.0, metavar="RATIO",
                        help="fast path / one-task play must be at most this (default: 3)")
    parser.add_argument("--source", type=Path, default=REPO, metavar="DIR",
                        help="the checkout whose tracked files are copied (default: this one); "
                        "ansible-playbook and sitekit stay this checkout's .venv")
    parser.add_argument("--tools", type=Path, default=default_tools(), metavar="DIR",
                        help="directory of sitekit and supervisorctl (default: this checkout's "
                        ".venv/bin; ansible-playbook is always this checkout's)")
    parser.add_argument("--serve-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="time for an added domain to be served after the fast path "
                        "(default: 10)")
    parser.add_argument("--run-timeout", type=float, default=1800.0, metavar="SECONDS",
                        help="limit of one ansible-playbook run (default: 1800)")
    parser.add_argument("--timeout", type=int, default=10800, metavar="SECONDS",
                        help="overall limit of the run (default: 10800)")
    parser.add_argument("--top", type=int, default=15, metavar="N",
                        help="slowest tasks shown from the profile (default: 15)")
    parser.add_argument("--json", action="store_true",
                        help="print the results as JSON instead of a report")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (copies, stack roots, playbook logs)")
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

    report: dict = {}
    status, _ = common.run_guarded(args.timeout, lambda: run(args, report))
    if status:
        return status
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
