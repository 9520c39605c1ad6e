#!/usr/bin/env python3
"""Requests during a full deploy: sent, failed, and p99 latency during the deploy vs before it.

A scratch copy of the checkout is deployed as a throwaway local stack by the real playbook; a
second copy makes a new release (a new migration, a new domain, a changed project file) deployed
under a bounded load (bench/load.py) over https; the windows before, during and after are
compared, and the new release, the masters' pids and the new domain checked. With
``--move SITE``, the stack starts with SITE in a pool, and after the new release SITE moves out
of the pool onto its own master and back, a deploy each, under the same load. bench/README.md
describes the method and the figures.

    .venv/bin/python bench/deploy_load.py
    .venv/bin/python bench/deploy_load.py --clients 16 --before 20 --json
    .venv/bin/python bench/deploy_load.py --move ember
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    REPO,
    BenchError,
    add_run_arguments,
    at_least_one,
    log,
    main,
    parser,
    workdir,
)
from bench.load import answered_by, describe, gaps, summary
from bench.playbook import Runner, Stack, served_by, stop
from tests.harness import BIN, SITES_YML, copy_checkout, free_port, local_catalogue, sitekit

NEW_MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("core", "{latest}")]
    operations = [
        migrations.CreateModel(
            name="DeployLoadMark", fields=[("id", models.AutoField(primary_key=True))]
        ),
    ]
"""
POOL = "shared"


def healthz(stack: Stack, host: str) -> tuple[dict, dict]:
    """What /healthz says for *host* through the stack's nginx, and the response's headers."""
    status, headers, body = stack.request(host, "/healthz")
    if status != 200:
        raise BenchError(f"{host}/healthz did not answer 200: {status}")
    return json.loads(body), headers


@contextlib.contextmanager
def scratch_stacks(args, report: dict, *labels: str):
    """A copy of the checkout per label, each deploying the same throwaway stack (one root, one
    pair of ports): a deploy from another copy is a new release of that stack. The stacks, the
    playbook runner, and a function that records the load's requests over a window (--before,
    the deploys, --after): the load runs over https on every domain, warmed up for 2 s."""
    with workdir("sitekit-deploy-load-", args.keep) as (work, cleanup):
        root, port = work / "stack", free_port()
        tls_port = free_port(port)
        stacks = {}
        for label in labels:
            copy_checkout(REPO, work / label)
            stacks[label] = Stack(root, port, tls_port, checkout=work / label, label=label)
        cleanup.callback(stop, stacks[labels[0]])
        sites = local_catalogue(work / labels[0], present=True)
        for stack in stacks.values():
            stack.sites = [site["name"] for site in sites]
        report["stack"] = {"root": str(root), "port": port, "tls_port": tls_port,
                           "sites": len(sites), "domains": sum(len(s["domains"]) for s in sites),
                           "clients": args.clients}
        windows: dict[str, list] = {}

        @contextlib.contextmanager
        def under_load():
            with stacks[labels[0]].load(sites, clients=args.clients) as load:
                time.sleep(2)  # warm up, not measured

                def window(name: str, action=lambda: None, seconds: float = 0.0):
                    started = time.monotonic()
                    result = action()
                    time.sleep(seconds)
                    windows[name] = load.between(started, time.monotonic())
                    return result

                window("before", seconds=args.before)
                yield window
                window("after", seconds=args.after)
            report["windows"] = {k: summary(v) for k, v in windows.items()}
            report["failed"] = sum(w["failed"] for w in report["windows"].values())

        yield stacks, Runner(work / "logs", run_timeout=900), sites, under_load, windows


def new_release(checkout: Path, site: dict) -> str:
    """Make *checkout* build a new release that exercises every step of a deploy (a migration,
    a changed project file) and give *site* a new domain; the domain."""
    migrations = checkout / "project" / "core" / "migrations"
    latest = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
    (migrations / "9999_deploy_load_mark.py").write_text(
        NEW_MIGRATION.replace("{latest}", latest), encoding="utf-8")
    with open(checkout / "project" / "__init__.py", "a", encoding="utf-8") as f:
        f.write("\n# a new release (bench/deploy_load.py)\n")
    added = f"deploy-load.{site['domains'][0]}"
    sitekit(checkout, "domain", "add", "local", site["name"], added)
    return added


def run(args, report: dict) -> None:
    """The new release under load, then (``--move``) the site's moves, on one stack."""
    labels = ("old", "new", "dedicated") if args.move else ("old", "new")
    with scratch_stacks(args, report, *labels) as (stacks, runner, sites, under_load, windows):
        if args.move:
            partner = pool_the_site(args.move, stacks, sites, report)
        first = sites[0]
        added = ""
        for label in labels[1:]:  # the same new release, with or without SITE in the pool
            added = new_release(stacks[label].checkout, first)
        log(f"deploying the current release ({len(sites)} sites) on port {stacks['old'].port}"
            + (f", {partner} and {args.move} in pool {POOL}" if args.move else ""))
        runner.playbook(stacks["old"], "converge")
        old_id, new_id = (sitekit(stacks[label].checkout, "release", "id").strip()
                          for label in ("old", "new"))
        pids = stacks["old"].masters()
        checks = report["checks"] = {}
        if args.move:
            host = next(s["domains"][0] for s in sites if s["name"] == args.move)
            checks[f"{args.move} starts in pool {POOL}"] = healthz(stacks["old"], host)[1].get(
                "X-Sitekit-Pool") == POOL
        log(f"load: {args.clients} clients; {args.before:.0f} s before the deploy")
        with under_load() as window:
            log(f"deploying release {new_id} (was {old_id}) under load")
            deploy = window("during", lambda: runner.playbook(stacks["new"], "deploy"))
            hosts = [d for site in sites for d in site["domains"]]
            releases = answered_by(windows["during"])
            checks.update({
                "every 2 s of the deploy had answered requests": not gaps(
                    windows["during"], min(s.start for s in windows["during"]),
                    max(s.start for s in windows["during"]), 2.0),
                "every domain answered from the old release and the new one during the deploy":
                    all({old_id, new_id} <= releases.get(h, set()) for h in hosts),
                "every domain answers from the new release": all(
                    healthz(stacks["new"], h)[0]["release"] == new_id for h in hosts),
                "masters reloaded in place (same pids)": stacks["new"].masters() == pids,
                f"the new domain {added} is served": served_by(stacks["new"], added,
                                                               first["name"])})
            if args.move:
                move_under_load(args.move, host, stacks, runner, window, windows, checks,
                                report)
        before, during = report["windows"]["before"], report["windows"]["during"]
        report.update(deploy_seconds=round(deploy.seconds, 1), deploy_recap=deploy.recap,
                      releases={"before": old_id, "after": new_id},
                      p99_ratio_during_before=round(during["p99_ms"] / before["p99_ms"], 2)
                      if before["p99_ms"] else None)
        if args.move:
            checks["every domain answers 200 from its site at the end"] = all(
                served_by(stacks["new"], d, s["name"]) for s in sites for d in s["domains"])


def pool_the_site(site: str, stacks: dict, sites: list[dict], report: dict) -> str:
    """Put *site* and the next present site in pool POOL in every copy, and give *site* its own
    master in the copy ``dedicated``; that next site."""
    names = [s["name"] for s in sites]
    if site not in names:
        raise BenchError(f"--move {site}: not a present site of the local catalogue")
    partner = next(name for name in names if name != site)
    for stack in stacks.values():
        with open(stack.checkout / SITES_YML, "a", encoding="utf-8") as f:
            f.write(f"\nsitekit_pools:\n  {POOL}: {{}}\n")
        for name in (partner, site):
            sitekit(stack.checkout, "site", "move", "local", name, "--pool", POOL)
    sitekit(stacks["dedicated"].checkout, "site", "move", "local", site, "--dedicated")
    report["move"] = {"site": site, "pool": POOL, "pool_sites": [partner, site],
                      "deploy_seconds": {}}
    return partner


def move_under_load(site: str, host: str, stacks: dict, runner, window, windows: dict,
                    checks: dict, report: dict) -> None:
    """*site* (asked as *host*) out of the pool onto its own master, then back, a deploy each,
    under the load."""
    for label, target in (("out of the pool", "dedicated"), ("back", "new")):
        before = stacks[target].masters()
        log(f"moving {site} {label} under load")
        deploy = window(f"move {label}", lambda t=target: runner.playbook(stacks[t], "deploy"))
        report["move"]["deploy_seconds"][f"move {label}"] = round(deploy.seconds, 1)
        # the site was asked while its master changed: answered by both, none failing
        served = answered_by((s for s in windows[f"move {label}"] if s.host == host), "pool")
        checks[f"{host} answered by the pool and by its own master ({label})"] = (
            served.get(host) == {POOL, ""})
        after = stacks[target].masters()
        pool = healthz(stacks[target], host)[1].get("X-Sitekit-Pool")
        if target == "dedicated":
            checks[f"{site} served by its own master"] = pool is None and site in after
        else:
            checks[f"{site} served by pool {POOL} again"] = pool == POOL
            checks[f"{site}'s own master stopped"] = site not in after
        checks[f"pool master reloaded in place ({label})"] = (
            before.get(POOL) is not None and after.get(POOL) == before.get(POOL))


def print_report(report: dict) -> None:
    stack, move = report["stack"], report.get("move")
    print(f"deploy under load: {stack['sites']} sites, {stack['domains']} domains, "
          f"{stack['clients']} clients, machine load {os.getloadavg()[0]:.1f}")
    print(f"  full deploy of a new release (migration, Sites sync, every master re-exec'd, "
          f"nginx reload): {report['deploy_seconds']} s")
    if move:
        print(f"  then {move['site']} between pool {move['pool']} (with {move['pool_sites'][0]}) "
              "and its own master:")
        for name, value in move["deploy_seconds"].items():
            print(f"  {name}: one catalogue line, one deploy: {value} s")
    width = max(map(len, report["windows"]))
    for name, figures in report["windows"].items():
        print("  " + describe(f"{name:>{width}}", figures))
    print(f"  p99 during / before: {report['p99_ratio_during_before']}")
    print(f"  failed requests in all: {report['failed']} (target: 0)")
    for check, ok in report["checks"].items():
        print(f"  {'ok  ' if ok else 'FAIL'} {check}")


if __name__ == "__main__":
    p = parser("deploy_load.py", __doc__, "Exit status: 0 when no request failed and the checks "
               "passed, 1 when a request failed or a check did not hold, 2 on an error, 130 when "
               "interrupted; the stack is stopped in all cases.")
    p.add_argument("--clients", type=at_least_one, default=8,
                   help="concurrent clients, one request in flight each (default: 8)")
    p.add_argument("--before", type=float, default=15.0, metavar="SECONDS",
                   help="load measured before the deploy starts (default: 15)")
    p.add_argument("--after", type=float, default=3.0, metavar="SECONDS",
                   help="load measured after the deploy ends (default: 3)")
    p.add_argument("--move", metavar="SITE",
                   help="then, on the same stack and under the same load, move SITE out of a "
                   "pool onto its own master and back, a deploy each")
    add_run_arguments(p, timeout=1800, keeps="copies, stack, playbook logs", django=False)
    args = p.parse_args()
    for tool in ("ansible-playbook", "sitekit"):
        if not os.access(BIN / tool, os.X_OK):
            p.error(f"{BIN / tool} not found (run make venv)")
    sys.exit(main(args, lambda report: run(args, report),
                  print_report, lambda report: not report["failed"]
                  and all(report["checks"].values())))
