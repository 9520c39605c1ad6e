#!/usr/bin/env python3
"""Memory (PSS) an additional site costs: in a pooled master against on its own master.

Side by side, a dedicated master for each of harbor, meadow and ember and pooled masters
(``settings.pool``) of the first 1, 2 and 3 of them, all configured as the gunicorn_site role
renders them; after the same traffic per site, the marginal PSS per pooled site (the slope over
the pool's sites) and per dedicated site are printed. bench/README.md has the figures.

    python bench/pool_memory.py              # 2 sync workers per master, 200 requests per site
    python bench/pool_memory.py --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    SITES,
    add_run_arguments,
    base_environment,
    log,
    make_workdir,
    prepare_database,
    remove_workdir,
    run_guarded,
    shielded,
    versions,
)
from bench.memory import Master, local_sites, measure, send_traffic, stop_masters, wait_healthy
from sitekit.catalogue import RESOURCE_FIELDS
from tests.harness import render_gunicorn


@dataclass
class PoolMaster(Master):
    """A pooled master of the first ``len(sites)`` sites; healthy when its first site is."""

    sites: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"pool-{len(self.sites)}"

    def environment(self, base_env: dict[str, str], ksm: bool) -> dict[str, str]:
        return dict(base_env, DJANGO_SETTINGS_MODULE="settings.pool", SITEKIT_POOL="bench",
                    SITEKIT_POOL_SITES=json.dumps(
                    [{"name": name, "domains": [domain]} for name, _, domain in self.sites]
                    ), SITEKIT_WARMUP_HOST=",".join(domain for _, _, domain in self.sites))


def hosts_of(master: Master) -> list[str]:
    return [d for _, _, d in master.sites] if isinstance(master, PoolMaster) else [master.domain]


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of PSS over the number of sites."""
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def run(args: argparse.Namespace) -> dict:
    workdir = make_workdir("sitekit-bench-pool-")
    masters: list[Master] = []
    try:
        env = base_environment(workdir)
        log("migrating, syncing and seeding the sqlite database")
        prepare_database(args.python, env, workdir)
        sizes = range(1, len(SITES) + 1)
        log("rendering the masters' gunicorn configurations (ansible-playbook)")
        rendered = render_gunicorn(
            workdir / "render",
            {f"stack-{n}": {"sitekit_root": str(workdir / f"stack-{n}")} for n in (0, *sizes)},
            sites=local_sites(args.workers))
        for i, (name, module, domain) in enumerate(SITES):
            masters.append(Master("sitekit", i, name, module, domain, workdir,
                                  rendered["stack-0"][name]))
        first = SITES[0]
        for size in sizes:  # a pool's master is configured as its first site's
            masters.append(
                PoolMaster("sitekit", 100 + size, first[0], "settings.pool", first[2], workdir,
                           rendered[f"stack-{size}"][first[0]], sites=list(SITES[:size]))
            )
        log(f"starting {len(masters)} gunicorn masters")
        for m in masters:
            m.start(args.python, m.environment(env, ksm=False))
        boot = wait_healthy(masters, args.boot_timeout)
        log(f"all masters answer /healthz after {boot:.1f}s")
        log(f"sending {args.requests} requests per site to each master")
        send_traffic(masters, args.requests, args.workers, hosts_of=hosts_of)
        log(f"measuring PSS ({args.samples} samples)")
        measure(masters, args.samples, args.workers)

        dedicated = {m.site: m.median()["site_pss"] / 1024 for m in masters
                     if not isinstance(m, PoolMaster)}
        pooled = {len(m.sites): m.median()["site_pss"] / 1024 for m in masters
                  if isinstance(m, PoolMaster)}
        return {"run": {"workers": args.workers,
                "requests_per_site": args.requests,
                "samples": args.samples,
                "boot_seconds": round(boot, 1),
                "versions": versions(args.python)},
                "dedicated_pss_mb": dedicated,
                "pool_pss_mb_by_sites": pooled,
                "marginal_dedicated_mb": statistics.fmean(dedicated.values()),
                "marginal_pooled_mb": slope(sorted(pooled.items())),
                "target_pooled_mb": args.target}
    finally:
        with shielded():
            if masters:
                log("stopping every master")
                stop_masters(masters)
            remove_workdir(workdir, args.keep)


def print_report(report: dict) -> None:
    run_info = report["run"]
    print(f"{run_info['workers']} sync workers per master, {run_info['requests_per_site']} "
          f"requests per site, PSS of master + workers (median of {run_info['samples']})")
    for name, mb in report["dedicated_pss_mb"].items():
        print(f"  dedicated master of {name:<8} {mb:7.1f} MB")
    for size, mb in report["pool_pss_mb_by_sites"].items():
        print(f"  pooled master, {size} site{'s' if size != 1 else ' '}   {mb:7.1f} MB")
    print(f"marginal PSS per dedicated site: {report['marginal_dedicated_mb']:.1f} MB")
    print(f"marginal PSS per pooled site:    {report['marginal_pooled_mb']:.1f} MB "
          f"(target <= {report['target_pooled_mb']:.0f} MB)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/pool_memory.py", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--workers", type=int, default=RESOURCE_FIELDS["workers"].default,
                        help="sync workers per master")
    parser.add_argument("--requests", type=int, default=200, help="requests per site")
    parser.add_argument("--samples", type=int, default=5, help="PSS samples, 1 s apart")
    parser.add_argument("--target", type=float, default=5.0, help="MB per pooled site")
    add_run_arguments(parser, timeout=600, keeps="the temporary directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status, report = run_guarded(args.timeout, lambda: run(args))
    if report is None:
        return status
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
