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

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Run as a script (python bench/memory.py): the repository's packages, bench/ included.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MB,
    PAGE_SIZE,
    REPO,
    SITES,
    BenchError,
    add_run_arguments,
    base_environment,
    children,
    cpu_seconds,
    http_get,
    log,
    log_tail,
    make_workdir,
    prepare_database,
    remove_workdir,
    run_guarded,
    shielded,
    smaps_rollup,
    spawn,
    stat_fields,
    stop_all,
    versions,
)
from sitekit.catalogue import RESOURCE_FIELDS
from tests.harness import LOCAL_INVENTORY, bound_socket, render_gunicorn

TRAFFIC = (("/", 200), ("/healthz", 200), ("/sitekit-bench-missing-page", 404))

CONFIGURATIONS = {"sitekit": "preload_app + sitekit.runtime.gunicorn_conf hooks (as deployed)",
                  "preload": "preload_app only, no sitekit hooks",
                  "naive": "no preload_app, no sitekit hooks"}

KSM_DIR = Path("/sys/kernel/mm/ksm")
# Host-wide KSM tunables the benchmark writes, restored in this order on exit.
KSM_TUNABLES = ("pages_to_scan", "sleep_millisecs", "run")
KSM_COUNTERS = ("full_scans",
                "pages_shared",
                "pages_sharing",
                "pages_unshared",
                "pages_volatile",
                "pages_scanned",
                "general_profit")
KSM_SLEEP_MILLISECS = 20  # the kernel's default
PR_GET_MEMORY_MERGE = 68


# --- /proc --------------------------------------------------------------------------------


def ksm_stat(pid: int) -> dict[str, str]:
    """/proc/<pid>/ksm_stat (Linux >= 6.1): KSM figures of one process."""
    stat = {}
    with open(f"/proc/{pid}/ksm_stat", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(" ")
            stat[key.rstrip(":")] = value.strip()
    return stat


# --- masters ------------------------------------------------------------------------------


@dataclass
class Master:
    config: str
    index: int
    site: str
    settings_module: str
    domain: str
    workdir: Path
    rendered: Path  # the gunicorn_site role's configuration of this master
    proc: subprocess.Popen | None = None
    samples: list[dict] = field(default_factory=list)
    requests_per_worker: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.config}-{self.index}-{self.site}"

    def path(self, suffix: str) -> Path:
        return self.workdir / f"{self.name}.{suffix}"

    @property
    def socket(self) -> Path:
        return bound_socket(self.rendered)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def config_text(self) -> str:
        """The configuration the role rendered; "preload" without the sitekit hooks, "naive"
        without them and without preload_app. The benchmark only names the process, logs each
        request's worker pid and sends the error log to its own log."""
        text = self.rendered.read_text(encoding="utf-8")
        if self.config != "sitekit":
            text, hooks = re.subn(r"^from sitekit\.runtime\.gunicorn_conf import .*$",
                                  "# no sitekit hooks", text, flags=re.M)
            if hooks != 1:
                raise BenchError(f"{self.rendered} no longer imports the sitekit hooks")
        if self.config == "naive":
            text = re.sub(r"^preload_app = .*$", "preload_app = False", text, flags=re.M)
        return text + (f"\n# the memory benchmark: {self.name} ({CONFIGURATIONS[self.config]})\n"
                       f'proc_name = "sitekit-bench-{self.name}"\n'
                       f"accesslog = {str(self.path('access.log'))!r}\n"
                       'access_log_format = "%(p)s %(s)s %(U)s"\nerrorlog = "-"\n')

    def start(self, python: str, env: dict[str, str]) -> None:
        conf = self.path("conf.py")
        conf.write_text(self.config_text(), encoding="utf-8")
        for line in re.findall(r'^(?:pidfile|control_socket) = "(/[^"]+)"', conf.read_text(),
                               re.M):
            Path(line).parent.mkdir(parents=True, exist_ok=True)
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.proc = spawn([python, "-m", "gunicorn", "-c", str(conf)], self.path("log"),
                          env=env, cwd=REPO)

    def environment(self, base_env: dict[str, str], ksm: bool) -> dict[str, str]:
        env = dict(base_env, DJANGO_SETTINGS_MODULE=self.settings_module)
        if self.config == "sitekit":
            env["SITEKIT_WARMUP_HOST"] = self.domain
            if ksm:
                env["SITEKIT_KSM"] = "1"
        return env

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(self.path("log"), lines)

    def healthy(self) -> bool:
        try:
            status, body = http_get(self.socket, "/healthz", self.domain, timeout=5)
        except (OSError, http.client.HTTPException):
            return False
        if status != 200:
            return False
        try:
            served = json.loads(body)
        except ValueError:
            return False
        if served.get("site") != self.site:
            raise BenchError(f"{self.name}: /healthz says it serves {served.get('site')!r}")
        return True

    def sample(self, workers: int) -> dict | None:
        """One PSS measurement of the master and its workers, or None if it has not exactly
        *workers* workers at this moment (one is being replaced)."""
        workers_now = children(self.pid)
        if len(workers_now) != workers:
            return None
        try:
            master = smaps_rollup(self.pid)
            worker_rollups = [smaps_rollup(pid) for pid in workers_now]
        except FileNotFoundError:
            return None

        def total(key: str, rollups: list[dict]) -> int:
            return sum(r.get(key, 0) for r in rollups)

        def uss(r: dict) -> int:
            return r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)

        everything = [master, *worker_rollups]
        return {"site_pss": total("Pss", everything),
                "site_pss_anon": total("Pss_Anon", everything),
                "site_pss_file": total("Pss_File", everything),
                "master_pss": master["Pss"],
                "worker_pss": total("Pss", worker_rollups) / workers,
                "master_uss": uss(master),
                "worker_uss": sum(uss(r) for r in worker_rollups) / workers,
                "master_rss": master["Rss"],
                "worker_rss": total("Rss", worker_rollups) / workers}

    def median(self) -> dict[str, float]:
        return {key: statistics.median(s[key] for s in self.samples) for key in self.samples[0]}

    def count_requests(self) -> None:
        """Requests per worker pid, from the access log."""
        counts: Counter[str] = Counter()
        with contextlib.suppress(OSError):
            for line in self.path("access.log").read_text(encoding="utf-8").splitlines():
                if line.strip():
                    counts[line.split()[0].strip("<>")] += 1
        self.requests_per_worker = dict(counts)

    def ksm_figures(self) -> dict[str, int]:
        """KSM figures of the master and its workers, from their ksm_stat: pages mapped to a
        merged page, and the kernel memory KSM spends on them (an rmap item per page scanned),
        which no process's PSS includes."""
        merging = zero = overhead = 0
        for pid in [self.pid, *children(self.pid)]:
            with contextlib.suppress(OSError, KeyError, ValueError):
                stat = ksm_stat(pid)
                pages = int(stat["ksm_merging_pages"]) + int(stat.get("ksm_zero_pages", 0))
                merging += int(stat["ksm_merging_pages"])
                zero += int(stat.get("ksm_zero_pages", 0))
                # ksm_process_profit = merged pages - the rmap items' memory
                overhead += pages * PAGE_SIZE - int(stat["ksm_process_profit"])
        return {"merging_pages": merging, "zero_pages": zero, "overhead_bytes": overhead}

    def merge_any(self) -> str | None:
        """Whether this master opted into KSM ("yes"/"no"), or None if the kernel does not say."""
        try:
            return ksm_stat(self.pid).get("ksm_merge_any")
        except OSError:
            return None


def stop_masters(masters: list[Master], grace: float = 20.0) -> None:
    """SIGTERM every master (it stops its workers), wait, then SIGKILL whatever is left of
    its process group."""
    stop_all([(m.name, m.proc) for m in masters if m.proc is not None], grace=grace)


# --- KSM ----------------------------------------------------------------------------------


def _ksm_read(name: str) -> str:
    return (KSM_DIR / name).read_text(encoding="ascii").strip()


def _ksm_write(name: str, value: str | int) -> None:
    (KSM_DIR / name).write_text(f"{value}\n", encoding="ascii")


def ksm_counters() -> dict[str, int]:
    return {name: int(_ksm_read(name)) for name in KSM_COUNTERS}


def ksmd_pid() -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                comm = Path(f"/proc/{entry}/comm").read_text(encoding="ascii").strip()
                # the kernel thread, a child of kthreadd (pid 2)
                if comm == "ksmd" and stat_fields(int(entry))[1] == "2":
                    return int(entry)
    return None


class HostKsm:
    """The host's KSM for the duration of the run: stopped while the masters boot and are
    measured without it, started for the second measurement, and its previous tunables
    written back by restore()."""

    def __init__(self, pages_to_scan: int):
        self.pages_to_scan = pages_to_scan
        self.saved: dict[str, str] = {}

    def check(self) -> None:
        if os.geteuid() != 0:
            raise BenchError("--ksm changes /sys/kernel/mm/ksm: run the benchmark as root")
        if not (KSM_DIR / "run").exists():
            raise BenchError(f"--ksm: no {KSM_DIR}/run (kernel without CONFIG_KSM)")
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) < 0:
            raise BenchError("--ksm: prctl(PR_GET_MEMORY_MERGE) failed "
                             f"({os.strerror(ctypes.get_errno())}): the kernel is older than 6.4")

    def stop(self) -> None:
        """Save the tunables, then stop ksmd (pages it merged before stay merged)."""
        self.saved = {name: _ksm_read(name) for name in KSM_TUNABLES}
        log("KSM settings before the run: "
            + ", ".join(f"{name}={value}" for name, value in self.saved.items())
            + " (restored on exit)")
        try:
            _ksm_write("run", 0)
        except OSError as exc:
            raise BenchError(f"--ksm: cannot write {KSM_DIR}/run: {exc}") from exc

    def start(self) -> None:
        _ksm_write("pages_to_scan", self.pages_to_scan)
        _ksm_write("sleep_millisecs", KSM_SLEEP_MILLISECS)
        _ksm_write("run", 1)

    def restore(self) -> None:
        for name, value in self.saved.items():
            try:
                _ksm_write(name, value)
            except OSError as exc:
                log(f"could not restore {KSM_DIR / name} to {value}: {exc}")
        with contextlib.suppress(OSError):
            if self.saved:
                log("KSM settings restored: "
                    + ", ".join(f"{name}={_ksm_read(name)}" for name in self.saved))


def wait_for_ksm(masters: list[Master], timeout: float) -> dict:
    """Run ksmd until it has converged: at least 3 full scans (one to checksum the pages,
    one to merge them, one more), the last of which changed pages_sharing by at most 1%."""
    pid = ksmd_pid()
    cpu_before = cpu_seconds(pid)
    first = ksm_counters()
    started = time.monotonic()
    scans, previous_sharing = first["full_scans"], None
    while True:
        time.sleep(0.25)
        for m in masters:
            if not m.alive():
                raise BenchError(f"{m.name} exited while KSM ran:\n{m.log_tail()}")
        now = ksm_counters()
        elapsed = time.monotonic() - started
        if now["full_scans"] != scans:
            scans = now["full_scans"]
            done = scans - first["full_scans"]
            log(f"ksmd full scan {done} after {elapsed:.1f}s: pages_sharing "
                f"{now['pages_sharing']}, pages_shared {now['pages_shared']}")
            if (done >= 3
                and previous_sharing is not None
                and abs(now["pages_sharing"] - previous_sharing) <= 0.01 * previous_sharing):
                break
            previous_sharing = now["pages_sharing"]
        if elapsed > timeout:
            raise BenchError(
                f"KSM did not converge within {timeout:.0f}s "
                f"({scans - first['full_scans']} full scans); try a larger --ksm-wait "
                "or --ksm-pages-to-scan"
            )
    cpu = cpu_seconds(pid) - cpu_before
    return {"seconds": round(elapsed, 1),
            "full_scans": scans - first["full_scans"],
            "pages_scanned": now["pages_scanned"] - first["pages_scanned"],
            "ksmd_cpu_seconds": round(cpu, 2),
            "ksmd_cpu_percent": round(100 * cpu / elapsed, 1)}


def ksm_summary(masters: list[Master], configs: list[str]) -> dict:
    """Per configuration, the KSM figures of a site (mean over its masters)."""
    result = {}
    for config in configs:
        figures = [m.ksm_figures() for m in masters if m.config == config]
        result[config] = {
            "merging_pages": statistics.fmean(f["merging_pages"] for f in figures),
            "overhead_mb": statistics.fmean(f["overhead_bytes"] for f in figures) / MB,
        }
    return result


# --- the benchmark ------------------------------------------------------------------------


def local_sites(workers: int) -> list[dict]:
    """The local catalogue's sites (harbor, meadow, ember), each with *workers* workers."""
    data = yaml.safe_load((LOCAL_INVENTORY / "group_vars" / "all" / "sites.yml").read_text())
    names = [name for name, _, _ in SITES]
    sites = [dict(site, workers=workers) for site in data["sitekit_sites"]
             if site["name"] in names]
    if [site["name"] for site in sites] != names:
        raise BenchError(f"the local catalogue no longer has the sites {names}")
    return sites


def wait_healthy(masters: list[Master], timeout: float) -> float:
    started = time.monotonic()
    pending = list(masters)
    while pending:
        for m in list(pending):
            if not m.alive():
                raise BenchError(f"{m.name} exited ({m.proc.returncode}) at boot:\n{m.log_tail()}")
            if m.healthy():
                pending.remove(m)
        if not pending:
            break
        if time.monotonic() - started > timeout:
            names = ", ".join(m.name for m in pending)
            raise BenchError(
                f"no /healthz answer within {timeout:.0f}s from {names}:\n{pending[0].log_tail()}"
            )
        time.sleep(0.2)
    return time.monotonic() - started


def send_traffic(masters: list[Master], requests: int, workers: int,
                 hosts_of: Callable[[Master], list[str]] = lambda m: [m.domain]) -> None:
    """*requests* requests per master and host (``hosts_of``: a pooled master's every site)
    over TRAFFIC, configurations interleaved, in bursts of *workers* concurrent requests to one
    master so that all its workers serve."""
    plan = []
    for start in range(0, requests, workers):
        for m in masters:
            for host in hosts_of(m):
                for n in range(start, min(start + workers, requests)):
                    plan.append((m, host, *TRAFFIC[n % len(TRAFFIC)]))
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
    for n in range(samples):
        if n:
            time.sleep(1.0)
        for m in masters:
            for _attempt in range(10):
                if not m.alive():
                    raise BenchError(f"{m.name} exited while measuring:\n{m.log_tail()}")
                s = m.sample(workers)
                if s is not None:
                    m.samples.append(s)
                    break
                time.sleep(0.5)
            else:
                raise BenchError(
                    f"{m.name} does not have {workers} workers: {children(m.pid)}\n{m.log_tail()}"
                )


def summarize(masters: list[Master], configs: list[str]) -> dict:
    result = {}
    for config in configs:
        medians = [m.median() for m in masters if m.config == config]
        per_site = [x["site_pss"] for x in medians]

        def mean(key: str, medians=medians) -> float:
            return statistics.fmean(x[key] for x in medians) / 1024

        served = [n for m in masters if m.config == config for n in m.requests_per_worker.values()]
        result[config] = {
            "description": CONFIGURATIONS[config],
            "site_pss_mb": {"mean": statistics.fmean(per_site) / 1024,
                            "min": min(per_site) / 1024,
                            "max": max(per_site) / 1024},
            "site_pss_anon_mb": mean("site_pss_anon"),
            "site_pss_file_mb": mean("site_pss_file"),
            "master_pss_mb": mean("master_pss"),
            "worker_pss_mb": mean("worker_pss"),
            "master_uss_mb": mean("master_uss"),
            "worker_uss_mb": mean("worker_uss"),
            "master_rss_mb": mean("master_rss"),
            "worker_rss_mb": mean("worker_rss"),
            "requests_per_worker": {"min": min(served, default=0), "max": max(served, default=0)},
            "sites": [{"name": m.name,
                      "settings_module": m.settings_module,
                      **{k: v / 1024 for k, v in m.median().items()},
                      "requests_per_worker": m.requests_per_worker}
                      for m in masters
                      if m.config == config],
        }
    return result


def print_table(results: dict) -> None:
    header = (f"{'PSS (MB)':<10}{'per site':>9}{'min':>7}{'max':>7}{'master':>8}"
              f"{'worker':>8}{'anon':>7}{'file':>7}   requests/worker")
    print(header)
    print("-" * len(header))
    for config, r in results.items():
        s = r["site_pss_mb"]
        rq = r["requests_per_worker"]
        print(
            f"{config:<10}{s['mean']:>9.1f}{s['min']:>7.1f}{s['max']:>7.1f}"
            f"{r['master_pss_mb']:>8.1f}{r['worker_pss_mb']:>8.1f}"
            f"{r['site_pss_anon_mb']:>7.1f}{r['site_pss_file_mb']:>7.1f}   {rq['min']}-{rq['max']}"
        )


def print_ratio(label: str, results: dict, ratio: float, target: float) -> None:
    print(f"{label}: {ratio:.2f} (target <= {target:.2f})"
          f"  sitekit {results['sitekit']['site_pss_mb']['mean']:.1f} MB, "
          f"naive {results['naive']['site_pss_mb']['mean']:.1f} MB per site")


def print_report(report: dict) -> None:
    run = report["run"]
    results = report["results"]
    ksm = report.get("ksm")
    if ksm:
        results = report["without_ksm"]["results"]
    print(f"sitekit memory per dedicated site: {run['sites']} sites per configuration, "
          f"all {run['sites'] * len(results)} masters side by side")
    print(f"  {run['workers']} sync workers per site, {run['requests']} requests per master, "
          f"PSS = median of {run['samples']} samples 1 s apart; 1 MB = 1024 kB of /proc")
    v = run["versions"]
    print(f"  Python {v.get('python', '?')}, Django {v.get('django', '?')}, gunicorn "
          f"{v.get('gunicorn', '?')}; {run['cpus']} CPUs; kernel {run['kernel']}"
          + (f"; MALLOC_ARENA_MAX={run['malloc_arena_max']}" if run["malloc_arena_max"] else ""))
    print(f"  settings modules: {', '.join(run['settings_modules'])}"
          + (" (reused cyclically: each master is still its own process)"
          if run["sites"] > len(SITES)
          else ""))
    print()
    if ksm:
        print("without KSM (ksmd stopped)")
    print_table(results)
    if ksm:
        c = ksm["convergence"]
        print()
        print(f"with KSM (sitekit masters opted in with SITEKIT_KSM=1, naive ones not; "
              f"pages_to_scan={ksm['pages_to_scan']}, sleep_millisecs={ksm['sleep_millisecs']})")
        print_table(report["results"])
        print()
        print(f"  ksmd converged after {c['seconds']:.1f}s ({c['full_scans']} full scans, "
              f"{c['pages_scanned']} pages scanned), using {c['ksmd_cpu_seconds']:.2f}s of CPU "
              f"({c['ksmd_cpu_percent']:.1f}% of one CPU meanwhile)")
        k = ksm["counters"]
        print(f"  pages_shared {k['pages_shared']}, pages_sharing {k['pages_sharing']}, "
              f"pages_unshared {k['pages_unshared']}, pages_volatile {k['pages_volatile']}, "
              f"general_profit {k['general_profit'] / MB:.1f} MB")
        s = ksm["per_site"]["sitekit"]
        print(f"  per sitekit site: {s['merging_pages']:.0f} pages mapped to merged pages; "
              f"KSM's kernel memory for it (rmap items, in no PSS) {s['overhead_mb']:.1f} MB")
        print("  measured with every site idle once ksmd has converged: requests write to "
              "merged pages again (see bench/README.md)")
    print()
    for config, r in results.items():
        print(f"  {config}: {r['description']}")
    print("  per site = master + its workers; worker = mean per worker; anon/file = the site's "
          "PSS in anonymous and file-backed pages")
    print()
    if ksm:
        print_ratio("ratio sitekit/naive PSS per site without KSM", results,
                    report["without_ksm"]["ratio"], report["target"])
        print_ratio("ratio sitekit/naive PSS per site with KSM", report["results"],
                    report["ratio"], report["target"])
        print(f"  with KSM and its kernel memory counted: {ksm['ratio_with_overhead']:.2f}")
    else:
        print_ratio("ratio sitekit/naive PSS per site", results, report["ratio"], report["target"])


def run(args: argparse.Namespace) -> dict:
    python = args.python
    configs = ["sitekit", *(["preload"] if args.preload_only else []), "naive"]
    host_ksm = HostKsm(args.ksm_pages_to_scan) if args.ksm else None
    if host_ksm:
        host_ksm.check()
    workdir = make_workdir("sitekit-bench-")
    masters: list[Master] = []
    try:
        if host_ksm:
            host_ksm.stop()
        env = base_environment(workdir)
        log("migrating, syncing and seeding the sqlite database")
        prepare_database(python, env, workdir)

        groups = range((args.sites + len(SITES) - 1) // len(SITES))
        log("rendering the masters' gunicorn configurations (ansible-playbook)")
        rendered = render_gunicorn(
            workdir / "render",
            {f"{config}-{g}": {"sitekit_root": str(workdir / f"{config}-{g}")}
             for config in configs for g in groups},
            sites=local_sites(args.workers))
        for i in range(args.sites):
            name, module, domain = SITES[i % len(SITES)]
            for config in configs:  # interleaved, so both boot under the same load
                conf = rendered[f"{config}-{i // len(SITES)}"][name]
                masters.append(Master(config, i, name, module, domain, workdir, conf))
        log(f"starting {len(masters)} gunicorn masters ({', '.join(configs)})")
        for m in masters:
            m.start(python, m.environment(env, args.ksm))
        boot = wait_healthy(masters, args.boot_timeout)
        log(f"all masters answer /healthz after {boot:.1f}s")
        if args.ksm:
            for m in masters:
                if m.config == "sitekit" and m.merge_any() == "no":
                    raise BenchError(f"{m.name} did not opt into KSM:\n{m.log_tail()}")

        log(f"sending {args.requests} requests to each master")
        send_traffic(masters, args.requests, args.workers)
        for m in masters:
            m.count_requests()
        time.sleep(1.0)

        log(f"measuring PSS ({args.samples} samples)")
        measure(masters, args.samples, args.workers)
        results = summarize(masters, configs)
        sitekit_mb = results["sitekit"]["site_pss_mb"]["mean"]
        naive_mb = results["naive"]["site_pss_mb"]["mean"]
        ksm_report = None
        if host_ksm:
            without_ksm = {"results": results, "ratio": sitekit_mb / naive_mb}
            log(f"starting ksmd (pages_to_scan={host_ksm.pages_to_scan}, "
                f"sleep_millisecs={KSM_SLEEP_MILLISECS}) and waiting until it converges")
            host_ksm.start()
            convergence = wait_for_ksm(masters, args.ksm_wait)
            log(f"measuring PSS again ({args.samples} samples)")
            for m in masters:
                m.samples = []
            measure(masters, args.samples, args.workers)
            results = summarize(masters, configs)
            counters = ksm_counters()
            per_site = ksm_summary(masters, configs)
            sitekit_mb = results["sitekit"]["site_pss_mb"]["mean"]
            naive_mb = results["naive"]["site_pss_mb"]["mean"]
            ksm_report = {"pages_to_scan": host_ksm.pages_to_scan,
                          "sleep_millisecs": KSM_SLEEP_MILLISECS,
                          "host_settings_before": host_ksm.saved,
                          "convergence": convergence,
                          "counters": counters,
                          "per_site": per_site,
                          "ratio_with_overhead": (sitekit_mb + per_site["sitekit"]["overhead_mb"])
                          / (naive_mb + per_site["naive"]["overhead_mb"])}
        report = {"run": {"sites": args.sites,
                  "workers": args.workers,
                  "requests": args.requests,
                  "samples": args.samples,
                  "settings_modules": [SITES[i % len(SITES)][1] for i in range(args.sites)],
                  "boot_seconds": round(boot, 1),
                  "cpus": os.cpu_count(),
                  "kernel": platform.release(),
                  "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX", ""),
                  "versions": versions(python),
                  "workdir": str(workdir) if args.keep else None},
                  "results": results,
                  "ratio": sitekit_mb / naive_mb,
                  "target": args.target}
        if ksm_report:
            report["without_ksm"] = without_ksm
            report["ksm"] = ksm_report
        return report
    finally:
        with shielded():  # neither Ctrl-C nor the timeout may interrupt the clean-up
            try:
                if masters:
                    log("stopping every master")
                    stop_masters(masters)
                remove_workdir(workdir, args.keep)
            finally:
                if host_ksm:
                    host_ksm.restore()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/memory.py",
        description=__doc__.split("\n\n")[1],
        epilog=("Exit status: 0 when the ratio is at most --target, 1 when it is above, 2 when "
                "the run failed, 130 when it was interrupted or timed out. Every gunicorn process "
                "started is stopped in all cases."),
    )
    parser.add_argument(
        "--sites", type=int, default=3, metavar="N", help="masters per configuration (default: 3)"
    )
    parser.add_argument(
        "--workers", type=int, default=RESOURCE_FIELDS["workers"].default,
        help=f"sync workers per master (default: {RESOURCE_FIELDS['workers'].default})"
    )
    parser.add_argument("--requests", type=int, default=200,
                        help="requests sent to each master before measuring (default: 200)")
    parser.add_argument("--samples", type=int, default=5,
                        help="PSS samples, 1 s apart; the median is reported (default: 5)")
    parser.add_argument(
        "--preload-only",
        action="store_true",
        help="also run a third set of masters with preload_app but without the sitekit hooks",
    )
    parser.add_argument(
        "--ksm",
        action="store_true",
        help="root only: after the measurement, run the host's KSM (ksmd) with the sitekit "
        "masters opted in (SITEKIT_KSM=1), wait until it converges and measure again; the "
        "host's KSM settings are restored on exit; the exit status then judges the ratio "
        "with KSM",
    )
    parser.add_argument(
        "--ksm-pages-to-scan",
        type=int,
        default=1000,
        metavar="N",
        help="with --ksm: pages ksmd scans every 20 ms (default: 1000; the kernel's is 100)",
    )
    parser.add_argument("--ksm-wait", type=float, default=180.0, metavar="SECONDS",
                        help="with --ksm: time for ksmd to converge (default: 180)")
    parser.add_argument(
        "--target",
        type=float,
        default=0.60,
        help="ratio sitekit/naive to reach; the exit status is 1 above it (default: 0.60)",
    )
    add_run_arguments(parser, timeout=600, keeps="configurations, logs, database")
    args = parser.parse_args(argv)
    for name in ("sites", "workers", "requests", "samples", "ksm_pages_to_scan"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    status, report = run_guarded(args.timeout, lambda: run(args))
    if status:
        return status
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["ratio"] <= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
