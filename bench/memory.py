#!/usr/bin/env python3
"""Memory (PSS) per dedicated site: sitekit's gunicorn masters against naive ones.

N masters configured as the gunicorn_site role renders them (``preload_app`` and the hooks of
``sitekit.runtime.gunicorn_conf``) and, side by side in the same run, N naive ones (the same
configuration without both), on one release and one sqlite database; each gets the same traffic,
then the PSS of every master and its workers is sampled and the ratio sitekit/naive printed.
``--ksm`` (root) measures again once the host's KSM has merged what it can. bench/README.md
describes the method and the figures.

    python bench/memory.py                       # 3 sites, 2 workers, 200 requests per master
    python bench/memory.py --sites 6 --json      # machine-readable results
    sudo .venv/bin/python bench/memory.py --ksm  # and again once KSM has merged what it can
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script (python bench/memory.py): the repository's packages, bench/ included.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MB,
    BenchError,
    add_run_arguments,
    at_least_one,
    log,
    machine,
    main,
    parser,
    serves,
    start_gunicorn,
    versions_line,
    wait_until,
    workdir,
)
from sitekit.catalogue import RESOURCE_FIELDS
from tests.harness import (
    GUNICORN_FILES,
    PAGE_SIZE,
    SITES,
    Service,
    base_environment,
    children,
    cpu_seconds,
    http_get,
    local_catalogue,
    prepare_database,
    render_gunicorn,
    smaps_rollup,
    stop_all,
)

TRAFFIC = (("/", 200), ("/healthz", 200), ("/sitekit-bench-missing-page", 404))
DOMAIN = {name: domain for name, _, domain in SITES}  # the host each site gets its traffic on

CONFIGURATIONS = {"sitekit": "preload_app + sitekit.runtime.gunicorn_conf hooks (as deployed)",
                  "preload": "preload_app only, no sitekit hooks",
                  "naive": "no preload_app, no sitekit hooks"}
# /proc/<pid>/smaps_rollup figures kept of a site (master + workers), its master and a worker
FIGURES = ("Pss", "Pss_Anon", "Pss_File", "Uss", "Rss")

KSM_DIR = Path("/sys/kernel/mm/ksm")
KSM_TUNABLES = ("pages_to_scan", "sleep_millisecs", "run")  # written back in this order
KSM_COUNTERS = ("full_scans", "pages_shared", "pages_sharing", "pages_unshared",
                "pages_volatile", "pages_scanned", "general_profit")
KSM_SLEEP_MILLISECS = 20  # the kernel's default
PR_GET_MEMORY_MERGE = 68


# --- masters ------------------------------------------------------------------------------


@dataclass
class Master:
    """A master of one configuration, started from what the role rendered for a master of the
    model (a dedicated site, or a pool)."""

    config: str
    index: int
    model: dict  # the master as the model resolved it: conf_file, socket, sites, env, ...
    service: Service | None = None
    samples: list[dict] = field(default_factory=list)
    requests_per_worker: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.config}-{self.index}-{self.model['name']}"

    @property
    def hosts(self) -> list[str]:
        """A host of each site the master serves."""
        return [DOMAIN[site] for site in self.model["sites"]]

    @property
    def socket(self) -> Path:
        return Path(self.model["socket"])

    @property
    def pid(self) -> int:
        return self.service.pid

    def start(self, python: str, env: dict[str, str], workdir: Path, ksm: bool) -> None:
        """The configuration the role rendered; "preload" without the sitekit hooks, "naive"
        without them and without preload_app. The benchmark only names the process, logs each
        request's worker pid and sends the error log to its own log."""
        text = Path(self.model["conf_file"]).read_text(encoding="utf-8")
        if self.config != "sitekit":
            text, hooks = re.subn(r"^from sitekit\.runtime\.gunicorn_conf import .*$",
                                  "# no sitekit hooks", text, flags=re.M)
            if hooks != 1:
                raise BenchError(f"{self.model['conf_file']} no longer imports the sitekit hooks")
        if self.config == "naive":
            text = re.sub(r"^preload_app = .*$", "preload_app = False", text, flags=re.M)
        text += (f"\n# the memory benchmark: {self.name} ({CONFIGURATIONS[self.config]})\n"
                 f"accesslog = {str(workdir / f'{self.name}.access.log')!r}\n"
                 'access_log_format = "%(p)s %(s)s %(U)s"\nerrorlog = "-"')
        env = {**env, **self.model["env"], **({"SITEKIT_KSM": "1"} if ksm else {})}
        self.service = start_gunicorn(self.name, text, workdir, python, env)

    def sample(self, workers: int) -> dict | None:
        """One measurement of the master and its workers (kB), or None if it has not exactly
        *workers* workers at this moment (one is being replaced)."""
        pids = children(self.pid)
        if len(pids) != workers:
            return None
        try:
            rollups = [smaps_rollup(pid) for pid in (self.pid, *pids)]
        except FileNotFoundError:
            return None
        figures = {}
        for r in rollups:
            r["Uss"] = r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)
        for key in FIGURES:
            figures[f"site_{key.lower()}"] = sum(r.get(key, 0) for r in rollups)
            figures[f"master_{key.lower()}"] = rollups[0].get(key, 0)
            figures[f"worker_{key.lower()}"] = sum(r.get(key, 0) for r in rollups[1:]) / workers
        return figures

    def median(self) -> dict[str, float]:
        return {key: statistics.median(s[key] for s in self.samples) for key in self.samples[0]}

    def count_requests(self, workdir: Path) -> None:
        """Requests per worker pid, from the access log."""
        with contextlib.suppress(OSError):
            lines = (workdir / f"{self.name}.access.log").read_text(encoding="utf-8").splitlines()
            self.requests_per_worker = dict(Counter(ln.split()[0].strip("<>") for ln in lines
                                                    if ln.strip()))

    def ksm_figures(self) -> dict[str, int]:
        """KSM figures of the master and its workers, from their ksm_stat: pages mapped to a
        merged page, and the kernel memory KSM spends on them (an rmap item per page scanned),
        which no process's PSS includes."""
        merging = overhead = 0
        for pid in [self.pid, *children(self.pid)]:
            with contextlib.suppress(OSError, KeyError, ValueError):
                stat = ksm_stat(pid)
                pages = int(stat["ksm_merging_pages"]) + int(stat.get("ksm_zero_pages", 0))
                merging += int(stat["ksm_merging_pages"])
                # ksm_process_profit = merged pages - the rmap items' memory
                overhead += pages * PAGE_SIZE - int(stat["ksm_process_profit"])
        return {"merging_pages": merging, "overhead_bytes": overhead}


def start_masters(masters: list[Master], args, env: dict[str, str], workdir: Path) -> float:
    """Start every master; the seconds until all of them answer /healthz."""
    log(f"starting {len(masters)} gunicorn masters")
    for m in masters:
        m.start(args.python, env, workdir, getattr(args, "ksm", False) and m.config == "sitekit")
    started = time.monotonic()
    for m in masters:
        wait_until(lambda m=m: serves(m.socket, m.hosts[0], m.model["sites"][0]), m.service,
                   args.boot_timeout - (time.monotonic() - started), f"{m.name}'s /healthz")
    boot = time.monotonic() - started
    log(f"all masters answer /healthz after {boot:.1f}s")
    return boot


def stop_masters(masters: list[Master]) -> None:
    """SIGTERM every master (it stops its workers), wait, then SIGKILL whatever is left of
    its process group."""
    stop_all([(m.name, m.service.proc) for m in masters if m.service], grace=20.0)


def send_traffic(masters: list[Master], requests: int, workers: int) -> None:
    """*requests* requests per master and host over TRAFFIC, configurations interleaved, in
    bursts of *workers* concurrent requests to one master so that all its workers serve."""
    log(f"sending {requests} requests per site to each master")
    plan = [(m, host, *TRAFFIC[n % len(TRAFFIC)])
            for start in range(0, requests, workers) for m in masters for host in m.hosts
            for n in range(start, min(start + workers, requests))]
    failures: list[str] = []
    lock = threading.Lock()

    def one(job):
        m, host, path, expected = job
        try:
            status, _ = http_get(m.socket, path, host)
        except (OSError, http.client.HTTPException) as exc:
            status = repr(exc)
        if status != expected:
            with lock:
                failures.append(f"{m.name} GET {host}{path}: {status} (expected {expected})")

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        list(pool.map(one, plan))
    finally:  # on Ctrl-C or timeout, drop the requests not yet sent
        pool.shutdown(wait=True, cancel_futures=True)
    if failures:
        shown = "\n".join("    " + f for f in failures[:10])
        raise BenchError(f"{len(failures)} of {len(plan)} requests failed:\n{shown}")


def measure(masters: list[Master], samples: int, workers: int) -> None:
    log(f"measuring PSS ({samples} samples)")
    for m in masters:
        m.samples = []
    for n in range(samples):
        if n:
            time.sleep(1.0)
        for m in masters:
            for _attempt in range(10):
                if not m.service.alive():
                    raise BenchError(f"{m.name} exited while measuring:\n{m.service.log_tail()}")
                s = m.sample(workers)
                if s is not None:
                    m.samples.append(s)
                    break
                time.sleep(0.5)
            else:
                raise BenchError(f"{m.name} does not have {workers} workers: "
                                 f"{children(m.pid)}\n{m.service.log_tail()}")


def local_sites(workers: int) -> list[dict]:
    """The local catalogue's sites (harbor, meadow, ember), each with *workers* workers."""
    sites = [dict(site, workers=workers) for site in local_catalogue() if site["name"] in DOMAIN]
    if [site["name"] for site in sites] != list(DOMAIN):
        raise BenchError(f"the local catalogue no longer has the sites {list(DOMAIN)}")
    return sites


def render(workdir: Path, hosts: dict[str, dict], sites: list[dict]) -> dict[str, dict[str, dict]]:
    """The masters of *sites* on each of *hosts* (name -> host variables; its own root), as the
    gunicorn_site role renders them (ansible-playbook; a pool's sites file too); plain http, as
    nginx forwards it."""
    log("rendering the masters' gunicorn configurations (ansible-playbook)")
    return render_gunicorn(workdir / "render", {
        host: {"sitekit_root": str(workdir / host), "sitekit_tls": "off", **variables}
        for host, variables in hosts.items()}, sites=sites, files=(*GUNICORN_FILES, "pool_sites"))


# --- KSM ----------------------------------------------------------------------------------


def ksm_stat(pid: int) -> dict[str, str]:
    """/proc/<pid>/ksm_stat (Linux >= 6.1): KSM figures of one process."""
    lines = Path(f"/proc/{pid}/ksm_stat").read_text(encoding="ascii").splitlines()
    return {key.rstrip(":"): value.strip() for key, _, value in (ln.partition(" ") for ln in lines)}


def ksm(name: str) -> str:
    return (KSM_DIR / name).read_text(encoding="ascii").strip()


def set_ksm(name: str, value: str | int) -> None:
    (KSM_DIR / name).write_text(f"{value}\n", encoding="ascii")


def stop_host_ksm(cleanup: contextlib.ExitStack) -> dict[str, str]:
    """Stop the host's ksmd (pages it merged stay merged) for the masters to boot and be
    measured without it; its tunables are saved and written back by *cleanup*."""
    if os.geteuid() != 0:
        raise BenchError("--ksm changes /sys/kernel/mm/ksm: run the benchmark as root")
    if not (KSM_DIR / "run").exists():
        raise BenchError(f"--ksm: no {KSM_DIR}/run (kernel without CONFIG_KSM)")
    if ctypes.CDLL(None, use_errno=True).prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) < 0:
        raise BenchError("--ksm: prctl(PR_GET_MEMORY_MERGE) failed "
                         f"({os.strerror(ctypes.get_errno())}): the kernel is older than 6.4")
    saved = {name: ksm(name) for name in KSM_TUNABLES}
    settings = ", ".join(f"{name}={value}" for name, value in saved.items())
    log(f"KSM settings before the run: {settings} (restored on exit)")

    def restore() -> None:
        for name, value in saved.items():
            try:
                set_ksm(name, value)
            except OSError as exc:
                log(f"could not restore {KSM_DIR / name} to {value}: {exc}")
        with contextlib.suppress(OSError):
            log("KSM settings restored: " + ", ".join(f"{n}={ksm(n)}" for n in saved))

    cleanup.callback(restore)
    try:
        set_ksm("run", 0)
    except OSError as exc:
        raise BenchError(f"--ksm: cannot write {KSM_DIR}/run: {exc}") from exc
    return saved


def ksm_converge(masters: list[Master], pages_to_scan: int, timeout: float) -> dict:
    """Run ksmd until it has converged: at least 3 full scans (one to checksum the pages,
    one to merge them, one more), the last of which changed pages_sharing by at most 1%."""
    log(f"starting ksmd (pages_to_scan={pages_to_scan}, sleep_millisecs={KSM_SLEEP_MILLISECS})"
        " and waiting until it converges")
    set_ksm("pages_to_scan", pages_to_scan)
    set_ksm("sleep_millisecs", KSM_SLEEP_MILLISECS)
    set_ksm("run", 1)
    ksmd = None
    for pid in children(2):  # the kernel thread, a child of kthreadd
        with contextlib.suppress(OSError):
            ksmd = pid if Path(f"/proc/{pid}/comm").read_text() == "ksmd\n" else ksmd
    cpu_before = cpu_seconds(ksmd)
    first = {name: int(ksm(name)) for name in KSM_COUNTERS}
    started = time.monotonic()
    scans, previous_sharing = 0, None
    while True:
        time.sleep(0.25)
        for m in masters:
            if not m.service.alive():
                raise BenchError(f"{m.name} exited while KSM ran:\n{m.service.log_tail()}")
        now = {name: int(ksm(name)) for name in KSM_COUNTERS}
        elapsed = time.monotonic() - started
        if now["full_scans"] - first["full_scans"] != scans:
            scans = now["full_scans"] - first["full_scans"]
            log(f"ksmd full scan {scans} after {elapsed:.1f}s: pages_sharing "
                f"{now['pages_sharing']}, pages_shared {now['pages_shared']}")
            if scans >= 3 and previous_sharing is not None and abs(
                    now["pages_sharing"] - previous_sharing) <= 0.01 * previous_sharing:
                break
            previous_sharing = now["pages_sharing"]
        if elapsed > timeout:
            raise BenchError(f"KSM did not converge within {timeout:.0f}s ({scans} full scans); "
                             "try a larger --ksm-wait or --ksm-pages-to-scan")
    cpu = cpu_seconds(ksmd) - cpu_before
    return {"seconds": round(elapsed, 1), "full_scans": scans,
            "pages_scanned": now["pages_scanned"] - first["pages_scanned"],
            "ksmd_cpu_seconds": round(cpu, 2), "ksmd_cpu_percent": round(100 * cpu / elapsed, 1),
            "counters": now}


# --- the benchmark ------------------------------------------------------------------------


def summarize(masters: list[Master], configs: list[str]) -> dict:
    """Per configuration, the mean over its masters of each figure in MB (a site's PSS also
    its min and max), and the requests each worker served."""
    result = {}
    for config in configs:
        ours = [m for m in masters if m.config == config]
        medians = [m.median() for m in ours]
        per_site = [x["site_pss"] / 1024 for x in medians]
        served = [n for m in ours for n in m.requests_per_worker.values()]
        result[config] = {
            "description": CONFIGURATIONS[config],
            "site_pss_mb": {"mean": statistics.fmean(per_site), "min": min(per_site),
                            "max": max(per_site)},
            **{f"{key}_mb": statistics.fmean(x[key] for x in medians) / 1024
               for key in medians[0] if key != "site_pss"},
            "requests_per_worker": {"min": min(served, default=0), "max": max(served, default=0)},
            "sites": [{"name": m.name, "settings_module": m.model["settings_module"],
                       **{k: v / 1024 for k, v in m.median().items()},
                       "requests_per_worker": m.requests_per_worker} for m in ours]}
    return result


def run(args, report: dict) -> None:
    configs = ["sitekit", *(["preload"] if args.preload_only else []), "naive"]
    with workdir("sitekit-bench-", args.keep) as (work, cleanup):
        saved = stop_host_ksm(cleanup) if args.ksm else None
        env = base_environment(work)
        log("migrating, syncing and seeding the sqlite database")
        prepare_database(args.python, env, work)
        groups = range((args.sites + len(SITES) - 1) // len(SITES))
        rendered = render(work, {f"{c}-{g}": {} for c in configs for g in groups},
                          local_sites(args.workers))
        masters = [Master(c, i, rendered[f"{c}-{i // len(SITES)}"][SITES[i % len(SITES)][0]])
                   for i in range(args.sites) for c in configs]  # interleaved: the same load
        cleanup.callback(stop_masters, masters)
        boot = start_masters(masters, args, env, work)
        for m in masters if args.ksm else []:
            with contextlib.suppress(OSError):  # a kernel that does not say
                if m.config == "sitekit" and ksm_stat(m.pid).get("ksm_merge_any") == "no":
                    raise BenchError(f"{m.name} did not opt into KSM:\n{m.service.log_tail()}")
        send_traffic(masters, args.requests, args.workers)
        for m in masters:
            m.count_requests(work)
        time.sleep(1.0)

        def figures() -> dict:
            measure(masters, args.samples, args.workers)
            results = summarize(masters, configs)
            mb = {c: results[c]["site_pss_mb"]["mean"] for c in ("sitekit", "naive")}
            return {"results": results, "ratio": mb["sitekit"] / mb["naive"], "mb": mb}

        report.update(figures())
        report["run"] = {"sites": args.sites, "workers": args.workers, "requests": args.requests,
                         "samples": args.samples, "boot_seconds": round(boot, 1),
                         "settings_modules": [m.model["settings_module"] for m in masters
                                              if m.config == "sitekit"],
                         "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX", ""),
                         "workdir": str(work) if args.keep else None}
        report["machine"] = machine(args.python)
        report["target"] = args.target
        if args.ksm:
            report["without_ksm"] = {k: report.pop(k) for k in ("results", "ratio", "mb")}
            convergence = ksm_converge(masters, args.ksm_pages_to_scan, args.ksm_wait)
            report.update(figures())
            per_site = {}
            for config in configs:
                ksm_figures = [m.ksm_figures() for m in masters if m.config == config]
                per_site[config] = {
                    "merging_pages": statistics.fmean(f["merging_pages"] for f in ksm_figures),
                    "overhead_mb": statistics.fmean(f["overhead_bytes"] for f in ksm_figures) / MB}
            mb = report["mb"]
            report["ksm"] = {
                "pages_to_scan": args.ksm_pages_to_scan, "sleep_millisecs": KSM_SLEEP_MILLISECS,
                "host_settings_before": saved, "counters": convergence.pop("counters"),
                "convergence": convergence, "per_site": per_site,
                "ratio_with_overhead": (mb["sitekit"] + per_site["sitekit"]["overhead_mb"])
                / (mb["naive"] + per_site["naive"]["overhead_mb"])}


# --- the report ---------------------------------------------------------------------------


def print_table(results: dict) -> None:
    header = (f"{'PSS (MB)':<10}{'per site':>9}{'min':>7}{'max':>7}{'master':>8}"
              f"{'worker':>8}{'anon':>7}{'file':>7}   requests/worker")
    print(f"{header}\n{'-' * len(header)}")
    for config, r in results.items():
        s, rq = r["site_pss_mb"], r["requests_per_worker"]
        print(f"{config:<10}{s['mean']:>9.1f}{s['min']:>7.1f}{s['max']:>7.1f}"
              f"{r['master_pss_mb']:>8.1f}{r['worker_pss_mb']:>8.1f}{r['site_pss_anon_mb']:>7.1f}"
              f"{r['site_pss_file_mb']:>7.1f}   {rq['min']}-{rq['max']}")


def print_report(report: dict) -> None:
    run, ksm = report["run"], report.get("ksm")
    results = report["without_ksm"]["results"] if ksm else report["results"]
    print(f"sitekit memory per dedicated site: {run['sites']} sites per configuration, "
          f"all {run['sites'] * len(results)} masters side by side")
    print(f"  {run['workers']} sync workers per site, {run['requests']} requests per master, "
          f"PSS = median of {run['samples']} samples 1 s apart; 1 MB = 1024 kB of /proc")
    print(f"  {versions_line(report['machine'])}"
          + (f"; MALLOC_ARENA_MAX={run['malloc_arena_max']}" if run["malloc_arena_max"] else ""))
    print(f"  settings modules: {', '.join(run['settings_modules'])}"
          + (" (reused cyclically: each master is still its own process)"
             if run["sites"] > len(SITES) else ""))
    print("\nwithout KSM (ksmd stopped)" if ksm else "")
    print_table(results)
    if ksm:
        c, k, s = ksm["convergence"], ksm["counters"], ksm["per_site"]["sitekit"]
        print(f"\nwith KSM (sitekit masters opted in with SITEKIT_KSM=1, naive ones not; "
              f"pages_to_scan={ksm['pages_to_scan']}, sleep_millisecs={ksm['sleep_millisecs']})")
        print_table(report["results"])
        print(f"\n  ksmd converged after {c['seconds']:.1f}s ({c['full_scans']} full scans, "
              f"{c['pages_scanned']} pages scanned), using {c['ksmd_cpu_seconds']:.2f}s of CPU "
              f"({c['ksmd_cpu_percent']:.1f}% of one CPU meanwhile)")
        print(f"  pages_shared {k['pages_shared']}, pages_sharing {k['pages_sharing']}, "
              f"pages_unshared {k['pages_unshared']}, pages_volatile {k['pages_volatile']}, "
              f"general_profit {k['general_profit'] / MB:.1f} MB")
        print(f"  per sitekit site: {s['merging_pages']:.0f} pages mapped to merged pages; "
              f"KSM's kernel memory for it (rmap items, in no PSS) {s['overhead_mb']:.1f} MB")
        print("  measured with every site idle once ksmd has converged: requests write to "
              "merged pages again (see bench/README.md)")
    print()
    for config, r in results.items():
        print(f"  {config}: {r['description']}")
    print("  per site = master + its workers; worker = mean per worker; anon/file = the site's "
          "PSS in anonymous and file-backed pages\n")
    figures = [("", report)] if not ksm else [(" without KSM", report["without_ksm"]),
                                              (" with KSM", report)]
    for label, f in figures:
        print(f"ratio sitekit/naive PSS per site{label}: {f['ratio']:.2f} (target <= "
              f"{report['target']:.2f})  sitekit {f['mb']['sitekit']:.1f} MB, "
              f"naive {f['mb']['naive']:.1f} MB per site")
    if ksm:
        print(f"  with KSM and its kernel memory counted: {ksm['ratio_with_overhead']:.2f}")


def parse_args(argv: list[str] | None = None):
    p = parser("memory.py", __doc__, "Exit status: 0 when the ratio is at most --target, 1 when "
               "it is above, 2 when the run failed, 130 when it was interrupted or timed out. "
               "Every gunicorn process started is stopped in all cases.")
    workers = RESOURCE_FIELDS["workers"].default
    p.add_argument("--sites", type=at_least_one, default=3, metavar="N",
                   help="masters per configuration (default: 3)")
    p.add_argument("--workers", type=at_least_one, default=workers,
                   help=f"sync workers per master (default: {workers})")
    p.add_argument("--requests", type=at_least_one, default=200,
                   help="requests sent to each master before measuring (default: 200)")
    p.add_argument("--samples", type=at_least_one, default=5,
                   help="PSS samples, 1 s apart; the median is reported (default: 5)")
    p.add_argument("--preload-only", action="store_true",
                   help="also run a third set of masters with preload_app but without the hooks")
    p.add_argument("--ksm", action="store_true",
                   help="root only: after the measurement, run the host's KSM (ksmd) with the "
                   "sitekit masters opted in (SITEKIT_KSM=1), wait until it converges and measure "
                   "again; the host's KSM settings are restored on exit; the exit status then "
                   "judges the ratio with KSM")
    p.add_argument("--ksm-pages-to-scan", type=at_least_one, default=1000, metavar="N",
                   help="with --ksm: pages ksmd scans every 20 ms (default: 1000; the kernel's: "
                   "100)")
    p.add_argument("--ksm-wait", type=float, default=180.0, metavar="SECONDS",
                   help="with --ksm: time for ksmd to converge (default: 180)")
    p.add_argument("--target", type=float, default=0.60,
                   help="ratio sitekit/naive to reach; the exit status is 1 above it "
                   "(default: 0.60)")
    add_run_arguments(p, timeout=600, keeps="configurations, logs, database")
    return p.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    sys.exit(main(args, lambda report: run(args, report), print_report,
                  lambda report: report["ratio"] <= args.target))
