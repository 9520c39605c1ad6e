#!/usr/bin/env python3
"""`sitekit check` and `sitekit domain add` on a catalogue of 10 sites and one of 10,000.

Two scratch copies of the checkout get generated catalogues (bench/scale_catalogue.py: most
sites in 10 pools, a few dedicated, 5 domains per site, each with its settings module). In
interleaved rounds, each command runs as a user runs it (the ``sitekit`` of this checkout's
.venv, a process per command) on both copies: `check ENV` with nothing remembered (a cache
directory of its own: the first run after a change of every file), `check ENV` again (what it
remembered from the first: the catalogue's data, the SITE_IDs of unchanged settings modules),
and `domain add ENV SITE DOMAIN` (a new domain for a site in the middle of the catalogue,
written). Wall-clock times, the median of the rounds; bench/README.md has the figures.

    .venv/bin/python bench/cli_scale.py                  # 10 against 10,000 sites, 5 rounds
    .venv/bin/python bench/cli_scale.py --sites 20000 --rounds 3 --json
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as bench/cli_scale.py
from bench import scale_catalogue
from bench.common import (
    REPO,
    BenchError,
    add_run_arguments,
    at_least_one,
    load_line,
    log,
    machine,
    main,
    parser,
    workdir,
)
from tests.harness import BIN, copy_checkout

KINDS = {"check_cold": "sitekit check (nothing remembered)",
         "check": "sitekit check (again)",
         "domain_add": "sitekit domain add (written)"}


def timed(argv: list[str], cwd: Path, cache: Path) -> float:
    env = {**os.environ, "SITEKIT_CACHE_DIR": str(cache)}
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({proc.returncode}):\n"
                         + (proc.stdout + proc.stderr)[-2000:])
    return seconds


def run(args, report: dict) -> None:
    with workdir("sitekit-bench-cli-", args.keep) as (work, _cleanup):
        report["machine"] = machine()
        report["run"] = {"sizes": [args.base_sites, args.sites], "rounds": args.rounds,
                         "pools": args.pools, "domains": args.domains}
        copies = {}
        for count in (args.base_sites, args.sites):
            checkout = work / f"sites-{count}"
            copy_checkout(REPO, checkout)
            catalogue = scale_catalogue.write(checkout, count, pools=args.pools,
                                              per_site=args.domains)
            lines = (checkout / "inventories/local/group_vars/all/sites.yml").read_text()
            log(f"{count} sites: {len(catalogue)} entries, "
                f"{sum(len(e['domains']) for e in catalogue)} domains, "
                f"{lines.count(chr(10))} lines in the catalogue")
            copies[count] = (checkout, catalogue[len(catalogue) // 2]["name"])
        sitekit = str(BIN / "sitekit")
        times: dict[int, dict[str, list[float]]] = {n: {k: [] for k in KINDS} for n in copies}
        for r in range(1, args.rounds + 1):
            for count, (checkout, site) in copies.items():
                cache = work / f"cache-{count}-{r}"
                check = [sitekit, "--project", str(checkout), "check", "local"]
                times[count]["check_cold"].append(timed(check, work, cache))
                times[count]["check"].append(timed(check, work, cache))
                domain = f"bench{r}.{site}.localhost"
                times[count]["domain_add"].append(timed(
                    [sitekit, "--project", str(checkout), "domain", "add", "local", site, domain],
                    work, cache))
            log(f"round {r}/{args.rounds}: " + "; ".join(
                f"{n} sites: " + ", ".join(f"{times[n][k][-1]:.2f}s" for k in KINDS)
                for n in copies) + f" (load {os.getloadavg()[0]:.2f})")
        report["figures"] = {
            str(n): {k: {"median": statistics.median(v), "min": min(v), "max": max(v),
                         "values": [round(x, 3) for x in v]} for k, v in kinds.items()}
            for n, kinds in times.items()}
        report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]


def print_report(report: dict, _top: int = 0) -> None:
    m, info = report["machine"], report["run"]
    small, large = (str(n) for n in info["sizes"])
    print(f"sitekit check and domain add: {small} sites against {large} ({info['pools']} pools, "
          f"{info['domains']} domains per site)\n  {m['cpus']} CPUs, kernel {m['kernel']}; "
          f"{load_line(m)}\n  median of {info['rounds']} rounds (min-max), wall clock of the "
          "command, Python start included\n")
    print(f"  {'':<38}{small + ' sites':>18}{large + ' sites':>20}{'ratio':>8}")
    for kind, label in KINDS.items():
        a, b = report["figures"][small][kind], report["figures"][large][kind]
        print(f"  {label:<38}{a['median']:>7.2f}s ({a['min']:.2f}-{a['max']:.2f})"
              f"{b['median']:>8.2f}s ({b['min']:.2f}-{b['max']:.2f})"
              f"{b['median'] / a['median']:>7.1f}")


if __name__ == "__main__":
    p = parser("cli_scale.py", __doc__, "Exit status: 0 when the run completed, 2 when it "
               "failed, 130 when it was interrupted or timed out.")
    p.add_argument("--sites", type=at_least_one, default=10000, metavar="N",
                   help="sites of the large catalogue (default: 10000)")
    p.add_argument("--base-sites", type=at_least_one, default=10, metavar="N",
                   help="sites of the small catalogue (default: 10)")
    p.add_argument("--pools", type=int, default=10, metavar="N",
                   help="pools the sites are spread over (default: 10)")
    p.add_argument("--domains", type=at_least_one, default=5, metavar="N",
                   help="domains per site (default: 5)")
    p.add_argument("--rounds", type=at_least_one, default=5, metavar="N",
                   help="measured rounds (default: 5)")
    add_run_arguments(p, timeout=3600, keeps="the copies and their caches", django=False)
    args = p.parse_args()
    sys.exit(main(args, lambda report: run(args, report), print_report))
