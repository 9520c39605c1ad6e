#!/usr/bin/env python3
"""Memory (PSS) an additional site costs: in a pooled master against on its own master.

Side by side, a dedicated master for each of harbor, meadow and ember and pooled masters
(``settings.pool``) of the first 1, 2 and 3 of them, all as the gunicorn_site role renders them
for the model's masters (a pool's environment included); after the same traffic per site, the
marginal PSS per pooled site (the slope over the pool's sites) and per dedicated site are
printed. bench/README.md has the figures.

    python bench/pool_memory.py              # 2 sync workers per master, 200 requests per site
    python bench/pool_memory.py --json
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import add_run_arguments, at_least_one, log, machine, main, parser, workdir
from bench.memory import (
    Master,
    local_sites,
    measure,
    render,
    send_traffic,
    start_masters,
    stop_masters,
)
from sitekit.catalogue import RESOURCE_FIELDS
from tests.harness import SITES, base_environment, prepare_database

POOL = "bench"


def pooled(sites: list[dict], size: int, workers: int) -> dict:
    """Host variables: the catalogue *sites* with the first *size* in pool POOL (their
    resources dropped: the pool's), the pool with *workers* workers."""
    return {"sitekit_pools": {POOL: {"workers": workers}},
            "sitekit_sites": [dict({k: v for k, v in s.items() if k not in RESOURCE_FIELDS},
                                   pool=POOL) if i < size else s for i, s in enumerate(sites)]}


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of PSS over the number of sites."""
    xs, ys = zip(*points, strict=True)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def run(args, report: dict) -> None:
    with workdir("sitekit-bench-pool-", args.keep) as (work, cleanup):
        env = base_environment(work)
        log("migrating, syncing and seeding the sqlite database")
        prepare_database(args.python, env, work)
        sites, sizes = local_sites(args.workers), range(1, len(SITES) + 1)
        rendered = render(work, {"stack-0": {}, **{
            f"stack-{n}": pooled(sites, n, args.workers) for n in sizes}}, sites)
        masters = [Master("sitekit", 0, rendered["stack-0"][name]) for name, _, _ in SITES]
        masters += [Master("sitekit", n, rendered[f"stack-{n}"][POOL]) for n in sizes]
        cleanup.callback(stop_masters, masters)
        boot = start_masters(masters, args, env, work)
        send_traffic(masters, args.requests, args.workers)
        measure(masters, args.samples, args.workers)
        mb = {m.model["name"] if m.model["kind"] == "site" else len(m.model["sites"]):
              m.median()["site_pss"] / 1024 for m in masters}
        dedicated = {k: v for k, v in mb.items() if isinstance(k, str)}
        pool = {k: v for k, v in mb.items() if isinstance(k, int)}
        report.update(
            run={"workers": args.workers, "requests_per_site": args.requests,
                 "samples": args.samples, "boot_seconds": round(boot, 1)},
            machine=machine(args.python), dedicated_pss_mb=dedicated, pool_pss_mb_by_sites=pool,
            marginal_dedicated_mb=statistics.fmean(dedicated.values()),
            marginal_pooled_mb=slope(sorted(pool.items())), target_pooled_mb=args.target)


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


if __name__ == "__main__":
    p = parser("pool_memory.py", __doc__, "Exit status: 0 when the run completed, 2 when it "
               "failed, 130 when it was interrupted or timed out.")
    p.add_argument("--workers", type=at_least_one, default=RESOURCE_FIELDS["workers"].default,
                   help="sync workers per master")
    p.add_argument("--requests", type=at_least_one, default=200, help="requests per site")
    p.add_argument("--samples", type=at_least_one, default=5, help="PSS samples, 1 s apart")
    p.add_argument("--target", type=float, default=5.0, help="MB per pooled site")
    add_run_arguments(p, timeout=600, keeps="configurations, logs, database")
    args = p.parse_args()
    sys.exit(main(args, lambda report: run(args, report), print_report))
