#!/usr/bin/env python3
"""Requests during a full deploy: sent, failed, and p99 latency during the deploy vs before it.

A scratch copy of the checkout is deployed as a throwaway local stack by the real playbook; a
second copy makes a new release (a new migration, a new domain, a changed project file) deployed
under a bounded load (bench/load.py) over https; the windows before, during and after are
compared, and the new release, the masters' pids and the new domain checked. ``--move SITE``
moves a site out of a pool and back instead. bench/README.md describes the method and the
figures. Exit status: 0 when no request failed and the checks passed, 1 when a request failed or
a check did not hold, 2 on an error, 130 when interrupted; the stack is stopped in all cases.

    .venv/bin/python bench/deploy_load.py
    .venv/bin/python bench/deploy_load.py --clients 16 --before 20 --json
    .venv/bin/python bench/deploy_load.py --move ember
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench import common  # noqa: E402
from bench.load import Load, describe, summary  # noqa: E402
from bench.playbook import (  # noqa: E402
    CATALOGUE,
    Runner,
    Stack,
    copy_checkout,
    request,
    served_by,
    sitekit,
)
from tests.harness import free_port  # noqa: E402

BenchError = common.BenchError
log = common.log

NEW_MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="DeployLoadMark", fields=[("id", models.AutoField(primary_key=True))]
        ),
    ]
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent clients, one request in flight each (default: 8)")
    parser.add_argument("--before", type=float, default=15.0, metavar="SECONDS",
                        help="load measured before the deploy starts (default: 15)")
    parser.add_argument("--after", type=float, default=3.0, metavar="SECONDS",
                        help="load measured after the deploy ends (default: 3)")
    parser.add_argument("--tools", type=Path, default=REPO / ".venv" / "bin",
                        help="directory of ansible-playbook and sitekit (default: .venv/bin)")
    parser.add_argument("--timeout", type=int, default=1800, metavar="SECONDS",
                        help="overall limit of the run (default: 1800)")
    parser.add_argument("--move", metavar="SITE",
                        help="deploy moves of SITE out of a pool and back instead of a new release")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (copies, stack, playbook logs)")
    return parser.parse_args(argv)


def release_id(tools: Path, project: Path) -> str:
    return sitekit(tools, project, "release", "id").strip()


def present_domains(project: Path) -> dict[str, list[str]]:
    import yaml

    data = yaml.safe_load((project / CATALOGUE).read_text(encoding="utf-8"))
    return {s["name"]: list(s["domains"])
            for s in data["sitekit_sites"]
            if s.get("state", "present") == "present"}


def health(stack: Stack, host: str) -> dict:
    answer = request(stack, host, "/healthz")
    if not answer or answer[0] != 200:
        raise BenchError(f"{host}/healthz did not answer 200: {answer and answer[0]}")
    return json.loads(answer[2])


def masters(root: Path) -> dict[str, int]:
    return {p.parent.name: int(p.read_text().split()[0])
            for p in sorted((root / "run").glob("*/gunicorn.pid"))}


def stack_report(root: Path, port: int, tls_port: int, sites: dict[str, list[str]]) -> dict:
    return {"root": str(root),
            "port": port,
            "tls_port": tls_port,
            "sites": len(sites),
            "domains": sum(len(d) for d in sites.values())}


@contextlib.contextmanager
def stack_load(root: Path, tls_port: int, hosts: list[str], clients: int):
    """The bounded load over https on *hosts* of the stack at *root*, warmed up for 2 s."""
    stack = Stack(root, tls_port=tls_port)
    with Load(tls_port, hosts, clients=clients,
              connect=lambda host: stack.connection(host, timeout=15)) as load:
        time.sleep(2)  # warm up, not measured
        yield load


def run(args: argparse.Namespace, report: dict, workdir: Path) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    runner = Runner(logs, run_timeout=900)
    old, new = workdir / "old", workdir / "new"
    copy_checkout(REPO, old)
    copy_checkout(REPO, new)
    (new / "project" / "core" / "migrations" / "0900_deploy_load_mark.py").write_text(
        NEW_MIGRATION, encoding="utf-8"
    )
    with open(new / "project" / "__init__.py", "a", encoding="utf-8") as f:
        f.write("\n# a new release (bench/deploy_load.py)\n")
    sites = present_domains(old)
    first = next(iter(sites))
    added = f"deploy-load.{sites[first][0]}"
    sitekit(args.tools, new, "domain", "add", "local", first, added)

    root, port = workdir / "stack", free_port()
    tls_port = free_port(port)
    stacks = [Stack(root, port, tls_port, checkout=copy, label=label, sites=list(sites))
              for label, copy in (("old", old), ("new", new))]
    report["stack"] = stack_report(root, port, tls_port, sites)
    try:
        log(f"deploying the current release ({len(sites)} sites) on port {port}")
        runner.playbook(stacks[0], "converge")
        old_id, new_id = release_id(args.tools, old), release_id(args.tools, new)
        pids = masters(root)
        hosts = [d for domains in sites.values() for d in domains]
        log(f"load: {args.clients} clients over {len(hosts)} domains; "
            f"{args.before:.0f} s before the deploy")
        with stack_load(root, tls_port, hosts, args.clients) as load:
            t0 = time.monotonic()
            time.sleep(args.before)
            t1 = time.monotonic()
            log(f"deploying release {new_id} (was {old_id}) under load")
            deploy = runner.playbook(stacks[1], "deploy")
            t2 = time.monotonic()
            time.sleep(args.after)
            t3 = time.monotonic()
        windows = {"before": load.between(t0, t1),
                   "during": load.between(t1, t2),
                   "after": load.between(t2, t3)}
        report["deploy_seconds"] = round(deploy.seconds, 1)
        report["deploy_recap"] = deploy.recap
        report["windows"] = {k: summary(v) for k, v in windows.items()}
        before, during = report["windows"]["before"], report["windows"]["during"]
        report["p99_ratio_during_before"] = (
            round(during["p99_ms"] / before["p99_ms"], 2) if before["p99_ms"] else None
        )
        report["failed"] = sum(w["failed"] for w in report["windows"].values())

        checks = {}
        live = {h: health(stacks[1], h)["release"] for h in hosts}
        checks["every domain answers from the new release"] = all(
            r == new_id for r in live.values()
        )
        checks["masters reloaded in place (same pids)"] = masters(root) == pids
        answer = request(stacks[1], added)
        checks[f"the new domain {added} is served"] = bool(answer and answer[0] == 200)
        report["checks"] = checks
        report["releases"] = {"before": old_id, "after": new_id}
    finally:
        with common.shielded():
            stacks[0].stop()


POOL = "shared"


def pool_header(stack: Stack, host: str) -> str | None:
    """The pool named by the response for *host* (X-Sitekit-Pool), None for a dedicated master."""
    answer = request(stack, host, "/healthz")
    if not answer or answer[0] != 200:
        raise BenchError(f"{host}/healthz did not answer 200: {answer and answer[0]}")
    return answer[1].get("x-sitekit-pool")


def run_move(args: argparse.Namespace, report: dict, workdir: Path) -> None:
    logs = workdir / "logs"
    logs.mkdir()
    runner = Runner(logs, run_timeout=900)
    pooled, dedicated = workdir / "pooled", workdir / "dedicated"
    for copy in (pooled, dedicated):
        copy_checkout(REPO, copy)
    sites = present_domains(pooled)
    site = args.move
    if site not in sites:
        raise BenchError(f"--move {site}: not a present site of the local catalogue")
    partner = next(name for name in sites if name != site)
    for copy in (pooled, dedicated):
        with open(copy / CATALOGUE, "a", encoding="utf-8") as f:
            f.write(f"\nsitekit_pools:\n  {POOL}: {{}}\n")
        for name in (partner, site):
            sitekit(args.tools, copy, "site", "move", "local", name, "--pool", POOL)
    sitekit(args.tools, dedicated, "site", "move", "local", site, "--dedicated")

    root, port = workdir / "stack", free_port()
    tls_port = free_port(port)
    stacks = {label: Stack(root, port, tls_port, checkout=copy, label=label, sites=list(sites))
              for label, copy in (("pooled", pooled), ("dedicated", dedicated))}
    report["stack"] = stack_report(root, port, tls_port, sites)
    report["move"] = {"site": site, "pool": POOL, "pool_sites": [partner, site]}
    checks: dict[str, bool] = {}
    report["checks"] = checks
    try:
        log(f"deploying {len(sites)} sites, {partner} and {site} in pool {POOL}, on port {port}")
        runner.playbook(stacks["pooled"], "converge")
        hosts = [d for domains in sites.values() for d in domains]
        start = pool_header(stacks["pooled"], sites[site][0])
        checks[f"{site} starts in pool {POOL}"] = start == POOL
        windows: dict[str, list] = {}
        seconds: dict[str, float] = {}
        with stack_load(root, tls_port, hosts, args.clients) as load:
            t0 = time.monotonic()
            time.sleep(args.before)
            windows["before"] = load.between(t0, time.monotonic())
            for label, target in (("out of the pool", "dedicated"), ("back", "pooled")):
                before = masters(root)
                log(f"moving {site} {label} under load")
                t1 = time.monotonic()
                deploy = runner.playbook(stacks[target], "deploy")
                windows[f"move {label}"] = load.between(t1, time.monotonic())
                seconds[f"move {label}"] = round(deploy.seconds, 1)
                after = masters(root)
                host = sites[site][0]
                if target == "dedicated":
                    checks[f"{site} served by its own master"] = (
                        pool_header(stacks[target], host) is None and site in after
                    )
                else:
                    checks[f"{site} served by pool {POOL} again"] = (
                        pool_header(stacks[target], host) == POOL
                    )
                    checks[f"{site}'s own master stopped"] = site not in after
                checks[f"pool master reloaded in place ({label})"] = (
                    before.get(POOL) is not None and after.get(POOL) == before.get(POOL)
                )
            t2 = time.monotonic()
            time.sleep(args.after)
            windows["after"] = load.between(t2, time.monotonic())
        report["deploy_seconds"] = seconds
        report["windows"] = {k: summary(v) for k, v in windows.items()}
        report["failed"] = sum(w["failed"] for w in report["windows"].values())
        checks["every domain answers 200 from its site at the end"] = all(
            served_by(stacks["pooled"], host, name)
            for name, domains in sites.items()
            for host in domains
        )
    finally:
        with common.shielded():
            stacks["pooled"].stop()


def print_move_report(report: dict, args: argparse.Namespace) -> None:
    stack, move = report["stack"], report["move"]
    print(f"moving a site under load: {move['site']} between pool {move['pool']} (with "
          f"{move['pool_sites'][0]}) and its own master; {stack['sites']} sites, "
          f"{stack['domains']} domains, {args.clients} clients, machine load "
          f"{os.getloadavg()[0]:.1f}")
    for name, value in report["deploy_seconds"].items():
        print(f"  {name}: one catalogue line, one deploy: {value} s")
    for name, figures in report["windows"].items():
        print("  " + describe(f"{name:>20}", figures))
    print(f"  failed requests in all: {report['failed']} (target: 0)")
    for check, ok in report["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}")


def print_report(report: dict, args: argparse.Namespace) -> None:
    stack = report["stack"]
    print(f"deploy under load: {stack['sites']} sites, {stack['domains']} domains, "
          f"{args.clients} clients, machine load {os.getloadavg()[0]:.1f}")
    print(f"  full deploy of a new release (migration, Sites sync, every master re-exec'd, "
          f"nginx reload): {report['deploy_seconds']} s")
    for name, figures in report["windows"].items():
        print("  " + describe(f"{name:>6}", figures))
    print(f"  p99 during / before: {report['p99_ratio_during_before']}")
    print(f"  failed requests in all: {report['failed']} (target: 0)")
    for check, ok in report["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("ansible-playbook", "sitekit"):
        if not os.access(args.tools / tool, os.X_OK):
            log(f"error: {args.tools / tool} not found (run make venv)")
            return 2
    workdir = common.make_workdir("sitekit-deploy-load-")
    report: dict = {}
    try:
        work = run_move if args.move else run
        status, _ = common.run_guarded(args.timeout, lambda: work(args, report, workdir))
    finally:
        common.remove_workdir(workdir, args.keep)
    if status:
        return status
    if args.json:
        print(json.dumps(report, indent=2))
    elif args.move:
        print_move_report(report, args)
    else:
        print_report(report, args)
    return 0 if report["failed"] == 0 and all(report["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
