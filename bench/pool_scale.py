#!/usr/bin/env python3
"""A pooled master of 1,000 sites against one of 1 site: start-up, memory and requests/second.

Both pools are generated (each site its own settings module with its own SITE_ID and brand,
5 domains, the shared URLconf) and rendered by the gunicorn_site role (env file, sites file,
gunicorn configuration) on one database synced for every site. Side by side, alternating: the
seconds from starting each master to its first answer; the PSS of master + workers once every
site of the pool has served a request, and from it the PSS each added pooled site costs; and
requests/second through each (wrk, its Host headers spread over a sample of the pool's
domains, the pages of the sites' home). bench/README.md has the figures.

    python bench/pool_scale.py                 # 1,000 sites, 2 sync workers, 8 rounds
    python bench/pool_scale.py --sites 200 --json
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BenchError,
    add_run_arguments,
    at_least_one,
    load_line,
    log,
    machine,
    main,
    parser,
    start_gunicorn,
    versions_line,
    wait_until,
    workdir,
)
from tests.harness import (
    BIN,
    REPO,
    SCRUBBED_ENV,
    free_port,
    http_get,
    link_settings,
    make_catalogue,
    prepare_database,
    render_gunicorn,
    scratch_project,
    write_settings,
)

DOMAINS_PER_SITE = 5
SEED = 1016
FILES = ("run_dir", "log_dir", "env", "pool_sites", "gunicorn")
WRK_SCRIPT = """-- a Host of the sample in turn for each request
local hosts = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/", {Host = hosts[(i %% #hosts) + 1]})
end
"""


class Pool:
    """A pooled master as the role rendered it, started and stopped by the benchmark."""

    def __init__(self, label: str, master: dict, sites: list[dict], port: int):
        self.label, self.master, self.sites, self.port = label, master, sites, port
        self.service = None
        self.starts: list[float] = []
        self.samples: list[float] = []
        self.rates: list[float] = []
        self.cpu_ms: list[float] = []  # CPU of master + workers per request, per wrk run

    @property
    def socket(self) -> Path:
        return Path(self.master["socket"])

    def hosts(self, count: int) -> list[str]:
        """*count* domains spread over the pool's sites, each site's in turn."""
        picked = [self.sites[i * len(self.sites) // count] for i in range(count)] \
            if count < len(self.sites) else self.sites
        return [site["domains"][i % DOMAINS_PER_SITE] for i, site in enumerate(picked)]

    def start(self, args, env: dict, work: Path) -> None:
        """The role's configuration, also listening on a loopback port (for wrk); the seconds
        until the first answer are recorded."""
        text = Path(self.master["conf_file"]).read_text(encoding="utf-8")
        text += (f"\n# the pool benchmark: also on loopback, for wrk\n"
                 f'bind = ["unix:{self.socket}", "127.0.0.1:{self.port}"]\n'
                 f"errorlog = {str(work / f'{self.label}.error.log')!r}\n")
        started = time.monotonic()
        self.service = start_gunicorn(self.label, text, work, args.python,
                                      {**env, "SITEKIT_ENV_FILE": self.master["env_file"]},
                                      cwd=work)
        first = self.sites[0]["domains"][0]
        wait_until(lambda: http_get(self.socket, "/healthz", first, timeout=5)[0] == 200,
                   self.service, args.boot_timeout, f"the pool of {self.label}")
        self.starts.append(time.monotonic() - started)
        log(f"pool of {self.label}: first answer after {self.starts[-1]:.2f}s")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def sweep(self, requests: int) -> None:
        """*requests* home pages over every site of the pool (2 at a time: both workers)."""
        hosts = self.hosts(len(self.sites))
        plan = [hosts[i % len(hosts)] for i in range(requests)]
        with ThreadPoolExecutor(2) as pool:
            statuses = list(pool.map(lambda host: http_get(self.socket, "/", host)[0], plan))
        failed = [s for s in statuses if s != 200]
        if failed:
            raise BenchError(f"pool of {self.label}: {len(failed)} of {requests} requests "
                             f"failed ({failed[:5]})")

    def wrk(self, args, work: Path) -> float:
        script = work / f"{self.label}.lua"
        hosts = self.hosts(args.sample)
        script.write_text(WRK_SCRIPT % ", ".join(f'"{h}"' for h in hosts), encoding="utf-8")
        cpu = self.service.cpu_seconds()
        proc = subprocess.run(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "-s", str(script),
             f"http://127.0.0.1:{self.port}/"], capture_output=True, text=True, check=False,
            timeout=args.duration + 60, stdin=subprocess.DEVNULL)
        cpu = self.service.cpu_seconds() - cpu
        rate = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
        sent = re.search(r"(\d+) requests in", proc.stdout)
        if proc.returncode != 0 or rate is None or sent is None:
            raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
        if errors:
            raise BenchError(f"pool of {self.label}: {errors[1]} answers were not 2xx or 3xx:\n"
                             f"{proc.stdout}")
        self.rates.append(float(rate[1]))
        self.cpu_ms.append(1000 * cpu / max(1, int(sent[1])))
        return self.rates[-1]


def generated(count: int) -> list[dict]:
    sites = make_catalogue(count, DOMAINS_PER_SITE, SEED)
    for site in sites:
        site.pop("workers")
    return sites


def run(args, report: dict) -> None:
    if not shutil.which("wrk"):
        raise BenchError("wrk is not installed (apt-get install wrk)")
    with workdir("sitekit-bench-pool-scale-", args.keep) as (work, cleanup):
        report["machine"] = machine(args.python)
        sites = generated(args.sites)
        settings = write_settings(work / "settings", sites)
        link_settings(settings)
        release = scratch_project(work / "release", settings)
        (release / "venv").symlink_to(BIN.parent)
        (release / "manage.py").unlink()  # a copy: its own directory is the release
        shutil.copy(REPO / "manage.py", release / "manage.py")
        hosts, catalogues = {}, {"one": sites[:1], "many": sites}
        for label, pooled in catalogues.items():
            root = work / label
            (root / "var").mkdir(parents=True)
            (root / "current").symlink_to(release)
            hosts[label] = {"sitekit_root": str(root), "sitekit_tls": "off",
                            "sitekit_pools": {label: {"workers": args.workers}},
                            "sitekit_sites": [dict(s, pool=label) for s in pooled]}
        log(f"rendering both pools' files ({args.sites} sites; ansible-playbook)")
        rendered = render_gunicorn(work / "render", hosts, [], files=FILES, settings=settings)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SITEKIT_") and k not in SCRUBBED_ENV}
        env.update(DJANGO_SETTINGS_MODULE="settings.pool", SITEKIT_DB_NAME=str(work / "db.sqlite3"),
                   SITEKIT_LOG_LEVEL="WARNING")
        log("migrating and syncing the Sites table")
        prepare_database(args.python, {**env, "SITEKIT_ENV_FILE": rendered["many"]["many"][
                             "env_file"]}, work, seed=False, project=release,
                         sites=tuple((s["name"], f"settings.{s['name']}", s["domains"][0])
                                     for s in sites))
        pools = [Pool(label, rendered[label][label], catalogues[label], free_port())
                 for label in catalogues]
        env["SITEKIT_CURRENT"] = str(release)
        cleanup.callback(lambda: [p.stop() for p in pools])
        for round_ in range(args.rounds):
            for p in pools:  # one at a time: each starts on an otherwise idle machine
                if round_:
                    p.stop()
                p.start(args, env, work)
        log(f"{args.sites} requests over every site of each pool, then PSS")
        for p in pools:
            p.sweep(args.sites)
        time.sleep(1.0)
        for _ in range(args.samples):
            for p in pools:
                p.samples.append(p.service.pss_mb())
            time.sleep(1.0)
        log(f"wrk, {args.rounds} rounds of {args.duration}s per pool, alternating")
        for _ in range(args.rounds):
            for p in pools:
                log(f"pool of {p.label}: {p.wrk(args, work):.0f} requests/s")
        one, many = pools
        report["machine"]["load_end"] = [round(x, 2) for x in os.getloadavg()]
        pss = {p.label: statistics.median(p.samples) for p in pools}
        rates = {p.label: statistics.median(p.rates) for p in pools}
        # each round's ratio: both pools measured back to back, under the same load from
        # whatever else the machine runs
        ratios = [m / o for o, m in zip(one.rates, many.rates, strict=True)]
        cpu_ratios = [o / m for o, m in zip(one.cpu_ms, many.cpu_ms, strict=True)]
        report.update(
            run={"sites": args.sites, "domains": args.sites * DOMAINS_PER_SITE,
                 "workers": args.workers, "rounds": args.rounds, "duration": args.duration,
                 "connections": args.connections, "sample": args.sample,
                 "samples": args.samples},
            start_seconds={p.label: [round(s, 2) for s in p.starts] for p in pools},
            pss_mb=pss, rates=rates,
            all_rates={p.label: p.rates for p in pools},
            cpu_ms_per_request={p.label: statistics.median(p.cpu_ms) for p in pools},
            per_added_site_mb=(pss["many"] - pss["one"]) / (args.sites - 1),
            rate_ratio=statistics.median(ratios), rate_ratios=ratios,
            cpu_ratio=statistics.median(cpu_ratios), cpu_ratios=cpu_ratios,
            sites_file_bytes=Path(many.master["sites_file"]).stat().st_size,
            target_mb=args.target_mb, target_ratio=args.target_ratio)


def print_report(report: dict) -> None:
    run, m = report["run"], report["machine"]
    print(f"pooled master of {run['sites']} sites ({run['domains']} domains) against one of 1 "
          f"site, side by side; {run['workers']} sync workers each")
    print(f"  {versions_line(m)}; {load_line(m)}")
    print(f"  sites file of the large pool: {report['sites_file_bytes'] / 1024:.0f} KiB")
    for label, name in (("one", "1 site"), ("many", f"{run['sites']} sites")):
        starts = report["start_seconds"][label]
        print(f"  {name:>11}: start to first answer {statistics.median(starts):5.2f} s "
              f"(median of {len(starts)}: {', '.join(f'{s:.2f}' for s in starts)}), "
              f"PSS {report['pss_mb'][label]:6.1f} MB, "
              f"{report['rates'][label]:6.0f} requests/s "
              f"({', '.join(f'{r:.0f}' for r in report['all_rates'][label])}), "
              f"{report['cpu_ms_per_request'][label]:.2f} ms of CPU per request")
    print(f"  PSS per added pooled site: {report['per_added_site_mb']:.3f} MB "
          f"(target <= {report['target_mb']:.0f} MB)")
    ratios, cpu = report["rate_ratios"], report["cpu_ratios"]
    print(f"  requests/s, {run['sites']} sites / 1 site: median of round ratios "
          f"{report['rate_ratio']:.2f} ({min(ratios):.2f} to {max(ratios):.2f}; target >= "
          f"{report['target_ratio']:.2f}); wrk -t1 -c{run['connections']} -d{run['duration']}s "
          f"over {run['sample']} domains of the pool, GET /")
    print(f"  CPU per request, 1 site / {run['sites']} sites (the same ratio, steadier on a "
          f"shared machine): {report['cpu_ratio']:.2f} ({min(cpu):.2f} to {max(cpu):.2f})")


if __name__ == "__main__":
    p = parser("pool_scale.py", __doc__, "Exit status: 0 when both targets are met, 1 when "
               "not, 2 when the run failed, 130 when it was interrupted or timed out.")
    p.add_argument("--sites", type=at_least_one, default=1000, help="sites of the large pool")
    p.add_argument("--workers", type=at_least_one, default=2, help="sync workers per pool")
    p.add_argument("--rounds", type=at_least_one, default=8,
                   help="starts and wrk runs per pool, alternating (default: 8)")
    p.add_argument("--duration", type=at_least_one, default=5, help="seconds per wrk run")
    p.add_argument("--connections", type=at_least_one, default=4, help="wrk connections")
    p.add_argument("--sample", type=at_least_one, default=200,
                   help="domains wrk's Host headers cycle over (default: 200)")
    p.add_argument("--samples", type=at_least_one, default=5, help="PSS samples, 1 s apart")
    p.add_argument("--target-mb", type=float, default=5.0, help="MB per added pooled site")
    p.add_argument("--target-ratio", type=float, default=0.95, help="requests/s ratio")
    add_run_arguments(p, timeout=900, keeps="configurations, logs, database")
    args = p.parse_args()
    sys.exit(main(args, lambda report: run(args, report), print_report,
                  lambda r: r["per_added_site_mb"] <= args.target_mb
                  and r["rate_ratio"] >= args.target_ratio))
