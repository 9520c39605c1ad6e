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

import contextlib
import http.client
import os
import re
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/playbook.py
from bench import scale_catalogue
from bench.common import (
    REPO,
    BenchError,
    add_run_arguments,
    at_least_one,
    first_line,
    load_line,
    log,
    machine,
    main,
    parser,
    versions_line,
    workdir,
)
from tests import harness
from tests.harness import BIN, SITES_YML, Run, copy_checkout, local_catalogue, sitekit

KINDS = {"noop_one": "no-op, {base} site(s)",
         "noop_many": "no-op, {sites} sites",
         "fast_one": "fast path (+1 domain, --tags sites), {base} site(s)",
         "fast_many": "fast path (+1 domain, --tags sites), {sites} sites",
         "floor": "a one-task play with fact gathering, same host"}
SAMPLE = 40  # sites whose serving is checked after the first deploy (all of them when fewer)
# The floor of a run: one task on the same host, with fact gathering (site.yml's plays gather
# none now; the floor stays what the deploy-time targets were set against).
FLOOR_PLAY = """\
- name: The floor of a run
  hosts: web
  gather_facts: true
  gather_subset: ["!all"]
  tasks:
    - name: One task
      ansible.builtin.ping:
"""
RUN_TIMEOUT = 1800  # seconds one ansible-playbook run may take
INVENTORY_TLS = "the local inventory's (self-signed, a certificate per site)"


@dataclass
class Stack(harness.Stack):
    """A scratch copy (its checkout) and the throwaway stack deployed from it."""

    label: str = ""
    sites: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    tls: str = ""  # the environment's sitekit_tls for every run (empty: the inventory's)

    def vars(self) -> list[str]:
        return [*super().vars(), *(["-e", f"sitekit_tls={self.tls}"] if self.tls else [])]


def summary(run: Run) -> dict:
    return {"kind": run.kind, "seconds": round(run.seconds, 3), "returncode": run.returncode,
            "recap": run.recap, "tasks": run.tasks, "changed_tasks": run.changed_tasks,
            "load_1min": round(run.load, 2)}


class Runner:
    """Runs a scratch copy's playbook on its stack, each output in its own log."""

    def __init__(self, logs: Path, run_timeout: float = RUN_TIMEOUT):
        logs.mkdir()
        self.logs, self.run_timeout, self.count = logs, run_timeout, 0

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
                f"recap {run.recap or 'missing'}; log: {log_path}):\n" + run.output[-4000:])
        return run


def stop(stack: Stack) -> None:
    """Stop the stack (if it was deployed) as ``make down`` does, and whatever still runs."""
    if stack.root.exists():
        log(f"stopping the {stack.label} stack")
        leftovers = stack.stop()
        if leftovers:
            log(f"{stack.label}: still running after make down, stopped: {', '.join(leftovers)}")


def served_by(stack: Stack, host: str, site: str, path: str = "/") -> bool:
    """Whether *host* reaches *site* through the stack's nginx over https (SNI *host*, the
    certificate verified with the stack's CA), or over http with --tls off."""
    with contextlib.suppress(OSError, http.client.HTTPException):
        status, headers, _ = stack.request(host, path,
                                           scheme="http" if stack.tls == "off" else "https")
        return status == 200 and headers.get("X-Sitekit-Site") == site
    return False


def wait_served(stack: Stack, host: str, site: str, timeout: float) -> float | None:
    """Seconds until *host* reaches *site* (0 when it does at once), None if it never does."""
    started = time.monotonic()
    while not served_by(stack, host, site):
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.2)
    return time.monotonic() - started


def profile_summary(run: Run) -> dict:
    """The run's profile from profile_tasks' summary (in the order the tasks ran: the callback
    runs with PROFILE_TASKS_SORT_ORDER=none): every task with its occurrence (a task that runs
    twice, as a role that is also another role's dependency, is told apart by the order)."""
    _, sep, recap = run.output.rpartition("TASKS RECAP")
    if not sep:
        raise BenchError("no profile_tasks summary (TASKS RECAP) in the playbook's output")
    seen: dict[str, int] = {}
    tasks = []
    for line in recap.splitlines():
        match = re.match(r"^(?P<name>.*?)[ -]*\s(?P<seconds>\d+\.\d+)s$", line)
        if match and not line.startswith("="):
            name = match["name"].rstrip(" -")
            seen[name] = seen.get(name, 0) + 1
            tasks.append({"task": name, "occurrence": seen[name],
                          "seconds": float(match["seconds"])})
    return {**summary(run), "profiled_tasks": len(tasks),
            "profiled_seconds": round(sum(t["seconds"] for t in tasks), 2),
            "tasks_in_order": tasks,
            "slowest": sorted(tasks, key=lambda t: t["seconds"], reverse=True)}


def ratio(rounds: list[dict], a: str, b: str, target: float) -> dict:
    per_round = [r[a]["seconds"] / r[b]["seconds"] for r in rounds]
    judged = statistics.median(per_round)
    return {"of": a, "to": b, "median_of_round_ratios": judged,
            "round_ratios": [round(x, 3) for x in per_round],
            "ratio_of_medians": statistics.median(r[a]["seconds"] for r in rounds)
            / statistics.median(r[b]["seconds"] for r in rounds),
            "target": target, "met": judged <= target}


# --- the run ----------------------------------------------------------------------------------


def generate(args, work: Path) -> tuple[Stack, Stack, dict[str, str]]:
    """The two scratch copies with generated catalogues (bench/scale_catalogue.py): --base-sites
    and --sites sites, the first the local catalogue's first site, the others pooled in
    --pools pools but for --dedicated of them."""
    site = local_catalogue(args.source, present=True)[0]
    first = {"name": site["name"], "domains": site["domains"], "workers": args.workers}
    stacks, canonical = [], {}
    for label, count in (("one", args.base_sites), ("many", args.sites)):
        checkout = work / label / "project"
        copied = copy_checkout(args.source, checkout)
        started = time.monotonic()
        catalogue = scale_catalogue.write(
            checkout, count, pools=args.pools, dedicated=args.dedicated, per_site=args.domains,
            workers=args.workers, pool_workers=args.pool_workers, first=first)
        log(f"{label}: copied {copied} files; generated {count} sites in "
            f"{time.monotonic() - started:.1f}s: " + sitekit(checkout, "check", "local").strip()
            [:300])
        canonical.update({e["name"]: e["domains"][0] for e in catalogue})
        stacks.append(Stack(work / label / "stack", checkout=checkout, label=label,
                            sites=[e["name"] for e in catalogue], tls=args.tls))
    return stacks[0], stacks[1], canonical


def prepare(args, work: Path) -> tuple[Stack, Stack, dict[str, str]]:
    """The two scratch copies: 1 site, and --sites sites (the others added by sitekit); their
    stacks, and the canonical domain of every site."""
    if args.generate:
        return generate(args, work)
    site = local_catalogue(args.source, present=True)[0]
    one_dir, many_dir = work / "one" / "project", work / "many" / "project"
    count = copy_checkout(args.source, one_dir)
    (one_dir / SITES_YML).write_text("---\n" + yaml.safe_dump({"sitekit_sites": [
        {"name": site["name"], "domains": site["domains"], "workers": args.workers}]},
        sort_keys=False), encoding="utf-8")
    sitekit(one_dir, "check", "local")
    log(f"copied {count} tracked files of {args.source}; 1-site catalogue: {site['name']}")
    shutil.copytree(one_dir, many_dir, symlinks=True)
    canonical = {site["name"]: site["domains"][0]}
    log(f"adding {args.sites - 1} sites to the second copy with sitekit site add")
    for name in (f"site{i:03d}" for i in range(2, args.sites + 1)):
        canonical[name] = f"{name}.localhost"
        sitekit(many_dir, "site", "add", "local", name, canonical[name],
                f"www.{canonical[name]}", "--workers", str(args.workers))
    log("  " + sitekit(many_dir, "check", "local").strip())
    return (Stack(work / "one" / "stack", checkout=one_dir, label="one", sites=[site["name"]]),
            Stack(work / "many" / "stack", checkout=many_dir, label="many", sites=[*canonical]),
            canonical)


def converge(runner: Runner, stack: Stack, canonical: dict[str, str]) -> dict:
    log(f"{stack.label}: deploying {len(stack.sites)} site(s) to {stack.root} on port "
        f"{stack.port} (first run, not timed with the others)")
    first = runner.playbook(stack, "deploy")
    log(f"  {first.seconds:.1f}s, {first.tasks} tasks, {first.recap}")
    sample = stack.sites if len(stack.sites) <= SAMPLE else [
        stack.sites[i * (len(stack.sites) - 1) // (SAMPLE - 1)] for i in range(SAMPLE)]
    wrong = [n for n in sample if not served_by(stack, canonical[n], n, "/healthz")]
    if wrong:
        raise BenchError(f"{stack.label}: sites not served after the deploy: {', '.join(wrong)}")
    second = runner.playbook(stack, "rerun")
    changed = second.recap.get("changed", 0)
    log(f"  second run {second.seconds:.1f}s: changed={changed}"
        + ("" if not changed else "  NOT A NO-OP: " + "; ".join(second.changed_tasks)))
    return {"deploy": summary(first), "rerun": summary(second), "converged": changed == 0}


def run(args, report: dict) -> None:
    with workdir("sitekit-bench-playbook-", args.keep) as (work, cleanup):
        report["run"] = {"sites": args.sites, "base_sites": args.base_sites,
                         "generate": args.generate, "pools": args.pools, "tls": args.tls,
                         "dedicated": args.dedicated, "domains": args.domains,
                         "workers": args.workers, "rounds": args.rounds,
                         "source": str(args.source), "workdir": str(work) if args.keep else None}
        ansible = first_line([str(BIN / "ansible-playbook"), "--version"])
        report["machine"] = machine(str(BIN / "python"), ansible=ansible)
        one, many, canonical = prepare(args, work)
        for stack in (one, many):
            cleanup.callback(stop, stack)
        runner = Runner(work / "logs")
        report["converge"] = {s.label: converge(runner, s, canonical) for s in (one, many)}
        (work / "floor.yml").write_text(FLOOR_PLAY)

        def floor() -> Run:
            found = harness.playbook(work / "floor.yml", one.checkout / "inventories" / "local",
                                     cwd=one.checkout, config=one.checkout / "ansible/ansible.cfg",
                                     log_path=work / "logs" / "floor.log", timeout=RUN_TIMEOUT)
            found.kind, found.load = "floor", os.getloadavg()[0]
            if not found.ok:
                raise BenchError(f"the one-task play failed:\n{found.output[-2000:]}")
            return found

        def fast(kind: str, profile: bool = False, stack: Stack = one) -> dict:
            """A new domain added to a site of a copy (the middle one), the fast path run, and
            checked."""
            site = stack.sites[len(stack.sites) // 2]
            domain = f"bench{len(stack.added) + 1:02d}-{os.getpid()}.{site}.localhost"
            started = time.monotonic()
            sitekit(stack.checkout, "domain", "add", "local", site, domain)
            edit = time.monotonic() - started
            stack.added.append(domain)
            before = served_by(stack, domain, site)
            found = runner.playbook(stack, kind, "--tags", "sites", profile=profile)
            after = wait_served(stack, domain, site, args.serve_timeout)
            if after is None:
                raise BenchError(f"after the fast path, Host {domain} does not reach {site} "
                                 f"within {args.serve_timeout:.0f}s")
            figures = profile_summary(found) if profile else summary(found)
            return {**figures, "domain": domain, "served_before": before,
                    "served_after_s": round(after, 2), "domain_add_s": round(edit, 2)}

        rounds: list[dict] = []
        report["rounds"] = rounds
        for r in range(1, args.rounds + 1):
            rounds.append({"floor": summary(floor()),
                           "noop_one": summary(runner.playbook(one, "noop")),
                           "noop_many": summary(runner.playbook(many, "noop")),
                           "fast_one": fast("fast"),
                           "fast_many": fast("fast", stack=many)})
            log(f"round {r}/{args.rounds}: no-op {args.base_sites} site(s) "
                f"{rounds[-1]['noop_one']['seconds']:.1f}s, no-op {args.sites} sites "
                f"{rounds[-1]['noop_many']['seconds']:.1f}s, fast path "
                f"{rounds[-1]['fast_one']['seconds']:.1f}s / "
                f"{rounds[-1]['fast_many']['seconds']:.1f}s (load {os.getloadavg()[0]:.2f})")

        seconds = {kind: [r[kind]["seconds"] for r in rounds] for kind in KINDS}
        report["figures"] = {kind: {"median": statistics.median(v), "min": min(v), "max": max(v),
                                    "values": [round(x, 3) for x in v]}
                             for kind, v in seconds.items()}
        medians = {kind: f["median"] for kind, f in report["figures"].items()}
        report["figures"]["seconds_per_extra_site"] = (
            medians["noop_many"] - medians["noop_one"]) / (args.sites - args.base_sites)
        report["ratios"] = {"sites": ratio(rounds, "noop_many", "noop_one", args.target_sites),
                            "fast_sites": ratio(rounds, "fast_many", "fast_one",
                                                args.target_sites),
                            "fast_path": ratio(rounds, "fast_one", "noop_one", args.target_fast),
                            "noop_floor": ratio(rounds, "noop_one", "floor", args.target_floor),
                            "fast_floor": ratio(rounds, "fast_one", "floor",
                                                args.target_fast_floor)}
        if args.profile:
            log("one more run of each kind with the profile_tasks callback")
            report["profile"] = {kind: profile_summary(runner.playbook(
                stack, "profile-noop", profile=True)) for kind, stack in (
                ("noop_one", one), ("noop_many", many))}
            report["profile"]["fast_one"] = fast("profile-fast", profile=True)
            report["profile"]["fast_many"] = fast("profile-fast", profile=True, stack=many)
        report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]


# --- the report -------------------------------------------------------------------------------


def print_report(report: dict, top: int) -> None:
    m, run_info = report["machine"], report["run"]
    sites, rounds = run_info["sites"], report["rounds"]
    base = run_info.get("base_sites", 1)
    print(f"sitekit playbook time: a no-op re-run with {sites} sites against {base}, and the "
          f"fast path for one added domain (local inventory)\n  {versions_line(m)}, "
          f"{m['ansible']}, "
          f"nginx {m['nginx']}\n  {load_line(m)}")
    if run_info.get("generate"):
        print(f"  generated catalogues: {run_info['dedicated']} dedicated sites, the others in "
              f"{run_info['pools']} pools; {run_info['domains']} domains per site; TLS: "
              f"{run_info.get('tls') or INVENTORY_TLS}")
    print(f"  {run_info['workers']} gunicorn worker per dedicated site; {run_info['rounds']} "
          "rounds, each a no-op run on each stack, then the fast path on each\n")
    for label, c in report["converge"].items():
        n = base if label == "one" else sites
        changed = c["rerun"]["recap"].get("changed", 0)
        print(f"  {n:>3} site{'s' if n > 1 else ' '}: first deploy {c['deploy']['seconds']:.1f} s;"
              f" re-run changed={changed} ({'converged' if c['converged'] else 'NOT A NO-OP'})")
        for task in c["rerun"]["changed_tasks"]:
            print(f"        changed: {task}")
    print(f"\n  {'':<46}{'median':>8}{'min':>8}{'max':>8}{'tasks':>7}  recap (last round)")
    for kind, label in KINDS.items():
        f, last = report["figures"][kind], rounds[-1][kind]
        recap = " ".join(f"{k}={last['recap'].get(k, 0)}" for k in ("ok", "changed", "skipped"))
        print(f"  {label.format(sites=sites, base=base):<46}{f['median']:>7.1f}s{f['min']:>7.1f}s"
              f"{f['max']:>7.1f}s{last['tasks']:>7}  {recap}")
    for i, r in enumerate(rounds, 1):
        for kind in ("noop_one", "noop_many"):
            if r[kind]["recap"].get("changed"):
                print(f"  round {i}, {KINDS[kind].format(sites=sites, base=base)}: changed="
                      f"{r[kind]['recap']['changed']}: " + "; ".join(r[kind]["changed_tasks"]))
    fasts = [r[k] for r in rounds for k in ("fast_one", "fast_many")]
    print("  each added domain reached the site through nginx once the fast path returned "
          f"(after {max(f['served_after_s'] for f in fasts):.1f} s at most); `sitekit domain "
          f"add` took {max(r['fast_one']['domain_add_s'] for r in rounds):.2f} s at most with "
          f"{base} site(s), {max(r['fast_many']['domain_add_s'] for r in rounds):.2f} s with "
          f"{sites}")
    early = [f["domain"] for f in fasts if f["served_before"]]
    if early:
        print(f"  WARNING: already served before the fast path ran: {', '.join(early)}")
    print(f"  each site beyond {base} adds {report['figures']['seconds_per_extra_site']:.4f} s "
          f"to a no-op run (difference of the medians / {sites - base})\n")
    for key, label in (("sites", f"no-op {sites} sites / {base}"),
                       ("fast_sites", f"fast path {sites} sites / {base}"),
                       ("fast_path", f"fast path / no-op, {base} site(s)"),
                       ("noop_floor", f"no-op {base} site(s) / one-task play"),
                       ("fast_floor", f"fast path {base} site(s) / one-task play")):
        r = report["ratios"][key]
        print(f"  {label:<30} {r['median_of_round_ratios']:.2f} (median of "
              f"{len(r['round_ratios'])} rounds, {min(r['round_ratios']):.2f}-"
              f"{max(r['round_ratios']):.2f}; ratio of the medians {r['ratio_of_medians']:.2f})"
              f"   target <= {r['target']:g}: {'met' if r['met'] else 'NOT MET'}")
    if "profile" in report:
        print_profile(report["profile"], sites, top, base)


def print_profile(profiled: dict, sites: int, top: int, base: int = 1) -> None:
    print("\n  profile_tasks, one more run of each: tasks started, their time added up, wall time")
    for kind, p in profiled.items():
        print(f"    {KINDS[kind].format(sites=sites, base=base):<46}{p['tasks']:>4} tasks "
              f"{p['profiled_seconds']:>7.1f} s in tasks {p['seconds']:>7.1f} s")

    def short(name: str, width: int) -> str:
        return name if len(name) <= width else name[: width - 1] + "…"

    one = {(t["task"], t["occurrence"]): t["seconds"] for t in profiled["noop_one"]["slowest"]}
    slowest = profiled["noop_many"]["slowest"][:top]
    width = min(72, max(len(t["task"]) for t in slowest))
    print(f"\n  slowest tasks of the no-op run with {sites} sites, and the same task with "
          f"{base}:")
    print(f"    {'':<{width}} {sites:>5} sites {base:>3} site(s)")
    for t in slowest:
        n, alone = t["occurrence"], one.get((t["task"], t["occurrence"]))
        again = {1: "", 2: " (2nd run)"}.get(n, f" ({n}th run)")
        print(f"    {short(t['task'], width - len(again)) + again:<{width}} {t['seconds']:>9.2f} s"
              + (f" {alone:>6.2f} s" if alone is not None else "        -"))
    for kind, n in (("fast_one", base), ("fast_many", sites)):
        if kind not in profiled:
            continue
        fast = profiled[kind]["slowest"][: max(5, top // 2)]
        width = min(72, max(len(t["task"]) for t in fast))
        print(f"\n  slowest tasks of the fast path ({n} site(s)):")
        for t in fast:
            print(f"    {short(t['task'], width):<{width}} {t['seconds']:>9.2f} s")


if __name__ == "__main__":
    p = parser("playbook.py", __doc__, "Exit status: 0 when the run completed (whether or not "
               "the targets were met), 2 when it failed, 130 when it was interrupted or timed "
               "out. Every stack started is stopped in all cases.")
    p.add_argument("--sites", type=at_least_one, default=50, metavar="N",
                   help="present sites of the larger stack (default: 50; 2 to 999, to 20000 "
                   "with --generate)")
    p.add_argument("--generate", action="store_true",
                   help="write both catalogues, their settings modules and pools directly "
                   "(bench/scale_catalogue.py) instead of adding sites with sitekit site add")
    p.add_argument("--base-sites", type=at_least_one, default=1, metavar="N",
                   help="sites of the smaller stack (default: 1; more only with --generate)")
    p.add_argument("--pools", type=int, default=10, metavar="N",
                   help="with --generate: pools the sites are spread over (default: 10)")
    p.add_argument("--dedicated", type=at_least_one, default=3, metavar="N",
                   help="with --generate: sites with a master of their own (default: 3)")
    p.add_argument("--domains", type=at_least_one, default=2, metavar="N",
                   help="with --generate: domains per generated site (default: 2)")
    p.add_argument("--tls", choices=["off", "self-signed"], default="",
                   help="with --generate: the environment's sitekit_tls on both stacks (default: "
                        "the local inventory's, self-signed: a certificate per site)")
    p.add_argument("--pool-workers", type=at_least_one, default=1, metavar="N",
                   help="with --generate: gunicorn workers of each pool (default: 1)")
    p.add_argument("--rounds", type=at_least_one, default=5, metavar="N",
                   help="measured rounds (default: 5)")
    p.add_argument("--workers", type=at_least_one, default=1, metavar="N",
                   help="gunicorn workers of every site (default: 1, at most 64)")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="skip the extra runs with the profile_tasks callback")
    p.add_argument("--target-sites", type=float, default=3.0, metavar="RATIO",
                   help="no-op run, many sites / 1 site (default: <= 3)")
    p.add_argument("--target-fast", type=float, default=1.5, metavar="RATIO",
                   help="fast path / no-op run, 1 site (default: <= 1.5)")
    p.add_argument("--target-floor", type=float, default=4.0, metavar="RATIO",
                   help="no-op (1 site) / one-task play (default: <= 4)")
    p.add_argument("--target-fast-floor", type=float, default=3.0, metavar="RATIO",
                   help="fast path / one-task play (default: <= 3)")
    p.add_argument("--source", type=Path, default=REPO, metavar="DIR",
                   help="the checkout whose tracked files are copied (default: this one); "
                   "ansible-playbook and sitekit stay this checkout's .venv")
    p.add_argument("--serve-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="time for an added domain to be served after the fast path (default: 10)")
    p.add_argument("--top", type=at_least_one, default=15, metavar="N",
                   help="slowest tasks shown from the profile (default: 15)")
    add_run_arguments(p, timeout=10800, keeps="copies, stack roots, playbook logs", django=False)
    args = p.parse_args()
    if not 2 <= args.sites <= (20000 if args.generate else 999) or args.workers > 64:
        p.error("--sites must be from 2 to 999 (20000 with --generate), --workers at most 64")
    if args.base_sites >= args.sites or (args.base_sites > 1 and not args.generate):
        p.error("--base-sites must be fewer than --sites, and more than 1 only with --generate")
    if args.tls and not args.generate:
        p.error("--tls only with --generate")
    args.source = args.source.resolve()
    for tool in (BIN / "ansible-playbook", BIN / "sitekit", BIN / "supervisorctl",
                 Path("/usr/sbin/nginx")):
        if not os.access(tool, os.X_OK):
            p.error(f"{tool} not found (run make venv, make system-deps)")
    sys.exit(main(args, lambda report: run(args, report),
                  lambda report: print_report(report, args.top)))
