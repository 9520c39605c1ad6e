#!/usr/bin/env python3
"""nginx with thousands of sites: configuration scale, and throughput through nginx.

Three measurements, side by side in one run: 1. a generated catalogue of --sites sites (1,000;
up to 10,000 and more) with 5 domains each, the first 10 with their own master and the others
in 10 pools, validated, written by the nginx role (``ansible-playbook``: site.yml's preflight
and nginx role on throwaway roots, ``tests/harness.py``), ``nginx -t`` timed on it, also from a
soft limit of 1,024 open files; 2. requests/s through nginx with those sites against 1 site,
every server block's upstream the same trivial backend, in interleaved rounds; 3. requests/s to
a real site's Django (``/healthz``, the gunicorn configuration the role renders) through nginx
against the same master directly. Load comes from ``wrk``, to 127.0.0.1 only; the CPU time per
request of nginx and the backends is read from ``/proc``. bench/README.md describes the method
and the figures. Every process started (and the nginx the role starts) is stopped on exit, also
on errors, Ctrl-C, SIGTERM or ``--timeout``.

    python bench/nginx_scale.py                        # everything, about 6 minutes
    python bench/nginx_scale.py --only scale           # catalogue, the role's run, nginx -t
    prlimit --nofile=1024: python bench/nginx_scale.py --sites 10000 --only scale --only sites
    python bench/nginx_scale.py --set nginx_worker_processes=1 --json
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Run as a script (python bench/nginx_scale.py): the repository's packages, bench/ included.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MB,
    BenchError,
    add_run_arguments,
    at_least_one,
    first_line,
    load_line,
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
from sitekit.catalogue import validate
from tests.harness import (
    NginxConfig,
    Service,
    base_environment,
    free_port,
    http_get,
    http_request,
    lay_out,
    local_catalogue,
    make_catalogue,
    nginx_test,
    pool_catalogue,
    prepare_database,
    render_gunicorn,
    render_nginx,
    stop_nginx,
    write_settings,
)

PARTS = {"scale": "catalogue validation, render time, nginx -t on the large configuration",
         "sites": "requests/s through nginx with the large configuration against 1 site",
         "proxy": "requests/s to Django through nginx against the same gunicorn reached directly"}

WRK_SCRIPT = """\
-- Requests cycle through the Host headers of a file (one per line, already shuffled), each
-- thread from its own offset; done() prints the figures as one JSON line.
local requests = {}
local next_index = 0
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7919)
end

function init(args)
  local path = args[2] or "/"
  for host in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("GET", path, {Host = host})
  end
  next_index = (offset or 0) % #requests
end

function request()
  next_index = next_index % #requests + 1
  return requests[next_index]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "mean_us": %.1f, "p50_us": %.1f, '
    .. '"p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max))
end
"""

BACKEND_APP = """\
# The one upstream of every server block in part 2: as little work per request as gunicorn allows.
def application(environ, start_response):
    body = ("ok " + environ.get("HTTP_HOST", "") + "\\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""

BACKEND_CONF = """\
wsgi_app = "backend:application"
chdir = {workdir!r}
bind = ["unix:{socket}"]
backlog = 2048
workers = {workers}
worker_class = "sync"
pidfile = {pidfile!r}
control_socket = {control!r}
accesslog = None
errorlog = "-"
loglevel = "warning"
"""
WRK_ERRORS = ("connect", "read", "write", "status", "timeout")


# --- load -----------------------------------------------------------------------------------


@dataclass
class Target:
    """One thing requests/s is measured against: a URL, its Host headers, the services whose
    CPU time is counted."""

    label: str
    port: int
    hosts_file: Path
    path: str
    watch: dict[str, Service]  # CPU time counted per role: nginx, backend, gunicorn
    rounds: list[dict] = field(default_factory=list)


def write_hosts(path: Path, hosts: list[str], seed: int) -> Path:
    shuffled = list(hosts)
    random.Random(seed).shuffle(shuffled)
    path.write_text("\n".join(shuffled) + "\n", encoding="ascii")
    return path


def run_wrk(args, target: Target, seconds: float, script: Path) -> dict:
    cmd = [args.wrk, "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
           "--timeout", "10s", "-s", str(script), f"http://127.0.0.1:{target.port}/",
           "--", str(target.hosts_file), target.path]
    before = {role: s.cpu_seconds() for role, s in target.watch.items()}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                          stdin=subprocess.DEVNULL, check=False)
    after = {role: s.cpu_seconds() for role, s in target.watch.items()}
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"[-3000:])
    r = json.loads(line[len("WRK_JSON "):])
    return {"requests": r["requests"], "rps": r["requests"] / (r["duration_us"] / 1e6),
            "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            "max_ms": r["max_us"] / 1000, "errors": sum(r[k] for k in WRK_ERRORS),
            "error_detail": {k: r[k] for k in WRK_ERRORS},
            "cpu_us_per_request": {name: (after[name] - before[name]) * 1e6
                                   / max(r["requests"], 1) for name in before}}


def summary(t: Target) -> dict:
    rps = [r["rps"] for r in t.rounds]
    return {"label": t.label, "rps_median": statistics.median(rps), "rps_min": min(rps),
            "rps_max": max(rps), **{k: statistics.median(r[k] for r in t.rounds)
                                    for k in ("p50_ms", "p99_ms")},
            "requests": sum(r["requests"] for r in t.rounds),
            "errors": sum(r["errors"] for r in t.rounds),
            "cpu_us_per_request": {n: statistics.median(r["cpu_us_per_request"][n]
                                                        for r in t.rounds) for n in t.watch},
            "rounds": t.rounds}


def compare(args, targets: list[Target], script: Path, target: float) -> dict:
    """Warm-up, then --rounds rounds per target, interleaved A B, B A, A B...; the figures of
    each, and the ratio of the first's requests/s to the second's."""
    for t in targets if args.warmup > 0 else []:
        run_wrk(args, t, args.warmup, script)
    for r in range(args.rounds):
        for t in targets if r % 2 == 0 else targets[::-1]:
            result = run_wrk(args, t, args.duration, script)
            if result["errors"] > max(0, result["requests"] // 1000):
                raise BenchError(f"{t.label}: {result['errors']} failed requests of "
                                 f"{result['requests']}: {result['error_detail']}")
            t.rounds.append(result)
            log(f"  round {r + 1}/{args.rounds} {t.label}: {result['rps']:,.0f} req/s, "
                f"p99 {result['p99_ms']:.1f} ms")
    a, b = (summary(t) for t in targets)
    # Rounds r of a and b ran one after the other: their ratio cancels whatever else loaded
    # the machine at the time; the median of those ratios is the figure judged.
    paired = [x["rps"] / y["rps"] for x, y in zip(a["rounds"], b["rounds"], strict=True)]
    ratio = statistics.median(paired)
    cpu_a, cpu_b = a["cpu_us_per_request"], b["cpu_us_per_request"]
    return {"a": a, "b": b, "ratio": ratio, "paired_ratios": paired,
            "ratio_of_medians": a["rps_median"] / b["rps_median"],
            "cpu_ratio": {n: cpu_a[n] / cpu_b[n] for n in cpu_a if cpu_b.get(n)},
            "target": target, "pass": ratio >= target}


# --- the parts --------------------------------------------------------------------------------


def nginx(config: NginxConfig, work: Path, cleanup: contextlib.ExitStack,
          path: str = "/") -> Service:
    """nginx in the foreground (-g 'daemon off;') with the configuration the role wrote, once
    *path* answers 200 for the configuration's first domain."""
    service = Service(f"nginx {config.name}", [*config.cmd, "-g", "daemon off;"],
                      work / f"nginx-{config.name}.out", stop_signal=signal.SIGQUIT)
    service.start()
    cleanup.callback(service.stop)
    wait_until(lambda: http_request(config.port, config.domains[0], path)[0] == 200, service, 60)
    return service


def render(work: Path, hosts: dict[str, dict], cleanup: contextlib.ExitStack,
           settings: Path | None = None) -> tuple[NginxConfig, ...]:
    """The nginx role run by ansible-playbook on *hosts* (laid out first: the layout's loops
    over every site are slow); their configurations and the role's run time. The nginx the
    role started is stopped: the parts start their own, to measure it."""
    label = "-".join(hosts)
    cleanup.callback(stop_nginx, hosts)
    laid_out = lay_out(work / f"layout-{label}", hosts)
    if not laid_out.ok:
        raise BenchError(f"laying out {label} failed:\n{laid_out.output[-3000:]}")
    for variables in hosts.values():
        variables["sitekit_laid_out"] = True
    log(f"the nginx role for {', '.join(hosts)} (ansible-playbook)")
    configs, run = render_nginx(work / f"render-{label}", hosts, settings=settings)
    stop_nginx(hosts)
    if not run.ok:
        raise BenchError(f"the nginx role failed:\n{run.output[-3000:]}")
    return (*(configs[name] for name in hosts), run.seconds)


def part_scale(args, report: dict, work: Path, host, cleanup) -> tuple[NginxConfig, NginxConfig]:
    """1. The catalogue validated, the nginx role's configuration for it and for its first
    site, and (part "scale") nginx -t on it."""
    raw = make_catalogue(args.sites, args.domains_per_site, args.seed)
    pools = pool_catalogue(raw, args.pools, dedicated=args.dedicated)
    project = work / "project"
    write_settings(project / "settings", raw)
    log(f"validating {args.sites} sites")
    times = []
    for _ in range(3):
        started_at = time.perf_counter()
        result = validate(raw, env="bench", project_root=project, pools=pools)
        times.append(time.perf_counter() - started_at)
    if not result.ok:
        shown = "\n".join(f"    {p}" for p in result.problems[:10])
        raise BenchError(f"the generated catalogue is invalid ({len(result.problems)}):\n{shown}")
    lengths = sorted(len(d) for s in raw for d in s["domains"])
    report["catalogue"] = {"sites": len(result.sites), "domains": len(lengths),
                           "pools": len(pools), "masters": len(pools) + sum(
                               1 for site in raw if "pool" not in site),
                           "length_min": lengths[0], "length_median": statistics.median(lengths),
                           "length_max": lengths[-1], "validate_s": statistics.median(times),
                           "example": raw[min(420, len(raw) - 1)]["domains"]}
    hosts = {"scale": host("scale", raw, pools), "one": host("one", raw[:1])}
    scale, one, seconds = render(work, hosts, cleanup, project / "settings")
    report["render"] = {"seconds": seconds, "files": len(scale.files),
                        "rlimit_nofile": int(scale.variables["nginx_rlimit_nofile"]),
                        "bytes": sum(len(t) for t in scale.files.values())}
    report["server_names_hash"] = {c.name: {k: int(v) for k, v in re.findall(
        r"^\s*server_names_hash_(max_size|bucket_size)\s+(\d+);", c.conf.read_text(), re.M)}
        for c in (scale, one)}
    if "scale" not in (args.only or PARTS):
        if not nginx_test(scale)["ok"]:
            raise BenchError("nginx -t fails on the large configuration")
        return scale, one
    log(f"timing nginx -t ({args.nginx_t_runs} runs each)")
    t = report["nginx_t"] = {"scale": nginx_test(scale, args.nginx_t_runs),
                             "one": nginx_test(one, args.nginx_t_runs),
                             "target_s": args.target_nginx_t}
    t["pass"] = t["scale"]["ok"] and t["scale"]["median_s"] < args.target_nginx_t
    # a soft limit of 1024 open files: systemd's default for services, a login shell's usual one
    report["nginx_t_nofile_1024"] = {"role": nginx_test(scale, 1, nofile=1024),
                                     "plain": nginx_test(scale, 1, nofile=1024, plain=True)}
    return scale, one


def part_sites(args, report: dict, work: Path, cleanup, scale: NginxConfig, one: NginxConfig,
               script: Path) -> None:
    """2. The same backend behind the large configuration and behind 1 site: every server
    block's upstream (the socket of its site's master) is a link to the backend's socket."""
    log(f"starting the backend (gunicorn, {args.backend_workers} sync workers)")
    (work / "backend.py").write_text(BACKEND_APP, encoding="utf-8")
    backend_socket = work / "backend.sock"
    backend = start_gunicorn("backend", BACKEND_CONF.format(
        workdir=str(work), socket=backend_socket, workers=args.backend_workers,
        pidfile=str(work / "backend.pid"), control=str(work / "backend.ctl")),
        work, args.python, base_environment(work), cwd=work)
    cleanup.callback(backend.stop)
    for config in (scale, one):
        for site in config.sites:
            upstream = config.upstream(site["name"])
            if upstream.is_symlink():  # a pool's socket: its sites share it
                continue
            upstream.parent.mkdir(parents=True, exist_ok=True)
            upstream.symlink_to(backend_socket)
    wait_until(lambda: http_get(backend_socket, "/", "x")[0] == 200, backend, 60)
    nginx_scale, nginx_one = nginx(scale, work, cleanup), nginx(one, work, cleanup)
    # a sample of domains reaches the backend with its Host; an unknown Host gets no answer
    sample = random.Random(args.seed).sample(scale.domains, min(50, len(scale.domains)))
    for config, hosts in ((scale, sample), (one, one.domains)):
        for host in hosts:
            status, body = http_request(config.port, host)
            if status != 200 or body.decode().strip() != f"ok {host}":
                raise BenchError(f"{config.name}: Host {host} got {status} {body[:80]!r}")
    with contextlib.suppress(http.client.RemoteDisconnected, ConnectionResetError):
        status, _ = http_request(scale.port, "unknown.example.invalid")
        raise BenchError(f"an unknown Host got an answer ({status}), not 444")
    targets = [Target(f"{len(c.sites)} site{'s' if len(c.sites) > 1 else ''}, {len(c.domains)} "
                      f"domains", c.port, write_hosts(work / f"hosts-{c.name}.txt", c.domains,
                                                      args.seed), "/",
                      {"nginx": service, "backend": backend})
               for c, service in ((scale, nginx_scale), (one, nginx_one))]
    log(f"requests/s through nginx, {args.rounds} rounds of {args.duration:g}s each")
    result = report["sites"] = compare(args, targets, script, args.target_sites)
    logs = [scale.log_dir / f"{s['name']}.access.log" for s in scale.sites]
    if all(p.exists() for p in logs):  # per-site access logs, as the template writes them
        result["server_blocks_reached"] = sum(1 for p in logs if p.stat().st_size > 0)
    elif (scale.log_dir / "access.log").exists():  # the shared one: the site's name first
        with open(scale.log_dir / "access.log", encoding="utf-8", errors="replace") as lines:
            result["server_blocks_reached"] = len({ln.split(" ", 1)[0] for ln in lines} - {"-"})
    result["logs"] = scale.variables.get("sitekit_layout", {}).get("nginx_logs")
    result["nginx"] = {name: {"pss_mb": s.pss_mb(), "open_files": s.open_files(),
                              "workers": len(s.children())}
                       for name, s in (("scale", nginx_scale), ("one", nginx_one))}
    for s in (nginx_scale, nginx_one, backend):
        s.stop()


def part_proxy(args, report: dict, work: Path, host, cleanup, script: Path) -> None:
    """3. Django through nginx and its socket against the same master reached directly: the
    master as the gunicorn_site role renders it, also bound to a 127.0.0.1 port."""
    log("migrating and syncing the sqlite database")
    env = base_environment(work)
    prepare_database(args.python, env, work)
    raw = [site for site in local_catalogue() if site["name"] == "harbor"]
    if not raw:
        raise BenchError("no site 'harbor' in the local catalogue")
    hosts = {"harbor": host("harbor", raw)}
    harbor, _ = render(work, hosts, cleanup)
    master = render_gunicorn(work / "gunicorn", hosts, raw)["harbor"]["harbor"]
    tcp_port = free_port(harbor.port)
    text = Path(master["conf_file"]).read_text(encoding="utf-8")
    unix_bind = f'bind = ["unix:{master["socket"]}"]'
    if text.count(unix_bind) != 1:
        raise BenchError(f"{master['conf_file']} no longer has the line {unix_bind!r}")
    text = text.replace(unix_bind, f'bind = ["unix:{master["socket"]}", "127.0.0.1:{tcp_port}"]')
    gunicorn = start_gunicorn("harbor", text, work, args.python, {**env, **master["env"]})
    cleanup.callback(gunicorn.stop)
    domain = master["canonical_domain"]
    boot = wait_until(lambda: serves(Path(master["socket"]), domain, "harbor"), gunicorn,
                      args.boot_timeout)
    log(f"harbor answers /healthz after {boot:.1f}s")
    nginx_harbor = nginx(harbor, work, cleanup, "/healthz")
    if http_request(tcp_port, domain, "/healthz")[0] != 200:
        raise BenchError("gunicorn does not answer /healthz on its TCP port")
    hosts_file = write_hosts(work / "hosts-harbor.txt", [domain], args.seed)
    targets = [Target("nginx -> unix socket -> gunicorn", harbor.port, hosts_file, "/healthz",
                      {"nginx": nginx_harbor, "gunicorn": gunicorn}),
               Target("gunicorn directly (TCP)", tcp_port, hosts_file, "/healthz",
                      {"gunicorn": gunicorn})]
    log(f"requests/s to Django, {args.rounds} rounds of {args.duration:g}s each")
    report["proxy"] = compare(args, targets, script, args.target_proxy)
    report["proxy"]["site"] = {"name": "harbor", "host": domain, **{
        k: master[k] for k in ("settings_module", "workers", "threads")}}


def run(args, report: dict) -> None:
    parts = set(args.only or PARTS)
    settings = {"nginx_binary": args.nginx}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise BenchError(f"--set {item!r}: expected NAME=VALUE")
        settings[name] = yaml.safe_load(value)
    with workdir("sitekit-bench-nginx-", args.keep) as (work, cleanup):
        report["run"] = {"parts": sorted(parts), "set": settings, "workdir": str(work) if
                         args.keep else None, **{k: getattr(args, k) for k in (
                             "sites", "domains_per_site", "connections", "threads", "rounds",
                             "duration", "warmup", "backend_workers")}}
        report["machine"] = machine(
            args.python, args.nginx, wrk=first_line([args.wrk, "--version"]).split(" [")[0],
            nofile_soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        script = work / "wrk.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")

        def host(label: str, sites: list[dict], pools: dict | None = None) -> dict:
            return {"sitekit_root": str(work / label), "sitekit_tls": "off",
                    "sitekit_sites": sites, **({"sitekit_pools": pools} if pools else {}),
                    **settings}

        if parts & {"scale", "sites"}:
            scale, one = part_scale(args, report, work, host, cleanup)
        if "sites" in parts:
            part_sites(args, report, work, cleanup, scale, one, script)
        if "proxy" in parts:
            part_proxy(args, report, work, host, cleanup, script)
        report["machine"]["load_end"] = os.getloadavg()


# --- the report -----------------------------------------------------------------------------


def print_comparison(result: dict, what: str) -> None:
    a, b = result["a"], result["b"]
    names = list(dict.fromkeys([*a["cpu_us_per_request"], *b["cpu_us_per_request"]]))
    width = max(len(a["label"]), len(b["label"])) + 2
    print(f"  {'':<{width}}{'req/s':>8} {'(min-max)':<16}{'p50 ms':>7}{'p99 ms':>8}"
          + "".join(f"{n + ' CPU us/req':>20}" for n in names) + f"{'errors':>8}")
    for s in (a, b):
        cpu = "".join(f"{s['cpu_us_per_request'][n]:>20.0f}" if n in s["cpu_us_per_request"]
                      else f"{'-':>20}" for n in names)
        span = f"({s['rps_min']:,.0f}-{s['rps_max']:,.0f})"
        print(f"  {s['label']:<{width}}{s['rps_median']:>8,.0f} {span:<16}"
              f"{s['p50_ms']:>7.1f}{s['p99_ms']:>8.1f}{cpu}{s['errors']:>8}")
    paired = result["paired_ratios"]
    print(f"  req/s ratio {what}: {result['ratio']:.3f} (median of {len(paired)} round pairs, "
          f"{min(paired):.3f}-{max(paired):.3f}; ratio of the medians "
          f"{result['ratio_of_medians']:.3f})   target >= {result['target']:.2f}  "
          + ("PASS" if result["pass"] else "MISS"))
    if result["cpu_ratio"]:
        print("  CPU per request, same ratio: " + ", ".join(
            f"{n} {r:.3f}" for n, r in result["cpu_ratio"].items()))


def print_report(report: dict) -> None:
    m, run = report["machine"], report["run"]
    print(f"sitekit nginx at scale\n  {versions_line(m)}, nginx {m['nginx']}, {m['wrk']}; "
          f"open files limit {m['nofile_soft']}\n  {load_line(m)}")
    if len(run["set"]) > 1:
        print(f"  variables set: {json.dumps(run['set'])}")
    if "catalogue" in report:
        c, r, h = report["catalogue"], report["render"], report["server_names_hash"]
        print(f"\n1. scale: {c['sites']} sites ({c['masters']} masters: {c['pools']} pools and "
              f"{c['masters'] - c['pools']} dedicated), {c['domains']} domains of "
              f"{c['length_min']} to {c['length_max']} characters (median "
              f"{c['length_median']:g}), e.g. {', '.join(c['example'][:2])}")
        print(f"  validated by sitekit.catalogue.validate in {c['validate_s'] * 1000:.0f} ms "
              "(median of 3, one settings module read per site)")
        print(f"  written by the nginx role (ansible-playbook: preflight and nginx role, with its "
              f"nginx -t and start, for {c['sites']} sites and for 1 site) in "
              f"{r['seconds']:.1f} s: {r['files']} files, {r['bytes'] / MB:.1f} MB")
        print(f"  server_names_hash_max_size {h['scale'].get('max_size')}, "
              f"server_names_hash_bucket_size {h['scale'].get('bucket_size')} "
              f"(1 site: {h['one'].get('max_size')}, {h['one'].get('bucket_size')})")
    if "nginx_t" in report:
        t, n = report["nginx_t"], report["nginx_t_nofile_1024"]
        s, o = t["scale"], t["one"]
        print(f"  nginx -t: {s['median_s']:.3f} s median of {s['runs']} ({s['min_s']:.3f}-"
              f"{s['max_s']:.3f}; CPU {s['cpu_s']:.3f} s){'' if s['ok'] else ' FAILED'}; 1 site: "
              f"{o['median_s']:.3f} s"
              f"   target < {t['target_s']:g} s  {'PASS' if t['pass'] else 'MISS'}")
        for message in s["messages"]:
            print(f"    {message}")
        print("  nginx -t from a soft limit of 1024 open files (systemd's default for services): "
              f"as the role runs it (prlimit, {report['render']['rlimit_nofile']} files) "
              f"{'ok' if n['role']['ok'] else 'FAILS'}; nginx alone "
              f"{'ok' if n['plain']['ok'] else 'FAILS'}")
        for message in n["role"]["messages"][:2] + n["plain"]["messages"][:2]:
            print(f"    {message}")
    if "sites" in report:
        r, n = report["sites"], report["sites"]["nginx"]
        print(f"\n2. requests/s through nginx: {r['a']['label']} against {r['b']['label']}")
        print(f"  every server block proxies to one backend: gunicorn, {run['backend_workers']} "
              "sync workers, a trivial WSGI app, unix socket")
        print(f"  wrk: {run['connections']} connections, {run['threads']} thread(s), Host "
              f"headers cycling through the configured domains; {run['rounds']} rounds of "
              f"{run['duration']:g} s per configuration, interleaved, after "
              f"{run['warmup']:g} s of warm-up")
        print_comparison(r, f"{run['sites']} sites / 1 site")
        if "server_blocks_reached" in r:
            print(f"  requests reached {r['server_blocks_reached']} server blocks ("
                  + ("sites named in the shared access log)" if r.get("logs") == "shared"
                     else "per-site access logs written)"))
        print(f"  nginx (master + {n['scale']['workers']} workers) PSS "
              f"{n['scale']['pss_mb']:.1f} MB against {n['one']['pss_mb']:.1f} MB; open files "
              f"per worker {n['scale']['open_files'].get('worker')} against "
              f"{n['one']['open_files'].get('worker')}")
    if "proxy" in report:
        r, s = report["proxy"], report["proxy"]["site"]
        print(f"\n3. requests/s to Django ({s['settings_module']}, GET /healthz, Host "
              f"{s['host']}): through nginx against the same gunicorn directly")
        print(f"  one gunicorn master as the deploy renders it ({s['workers']} sync workers, "
              "preload + sitekit hooks), bound to its unix socket and to 127.0.0.1; "
              f"wrk {run['connections']} connections, {run['rounds']} rounds of "
              f"{run['duration']:g} s each way, interleaved")
        print_comparison(r, "through nginx / direct")


def parse_args(argv: list[str] | None = None):
    p = parser("nginx_scale.py", __doc__, "Exit status: 0 when the run completed (whether or not "
               "the targets were met), 2 when it failed, 130 when it was interrupted or timed "
               "out. Every process started is stopped in all cases.")
    p.add_argument("--only", action="append", choices=sorted(PARTS),
                   help="run only this part (repeatable): "
                   + "; ".join(f"{k}: {v}" for k, v in PARTS.items()))
    p.add_argument("--sites", type=at_least_one, default=1000, metavar="N",
                   help="sites in the generated catalogue (default: 1000)")
    p.add_argument("--pools", type=int, default=10, metavar="N",
                   help="pools the sites after the first --dedicated share (default: 10; 0: "
                   "every site has its own master)")
    p.add_argument("--dedicated", type=int, default=10, metavar="N",
                   help="sites with their own master, the first N (default: 10)")
    p.add_argument("--domains-per-site", type=at_least_one, default=5, metavar="N",
                   help="domains per generated site (default: 5)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a host variable for every configuration the role writes (VALUE is "
                   "YAML), e.g. nginx_worker_processes=1 or nginx_templates_dir=/tmp/copy "
                   "(repeatable)")
    p.add_argument("--connections", type=at_least_one, default=16,
                   help="wrk connections (default: 16)")
    p.add_argument("--threads", type=at_least_one, default=1, help="wrk threads (default: 1)")
    p.add_argument("--rounds", type=at_least_one, default=15,
                   help="measured rounds per configuration (default: 15)")
    p.add_argument("--duration", type=at_least_one, default=2, metavar="SECONDS",
                   help="length of a round, whole seconds as wrk takes them (default: 2)")
    p.add_argument("--warmup", type=int, default=2, metavar="SECONDS",
                   help="unmeasured load per configuration first; 0: none (default: 2)")
    p.add_argument("--backend-workers", type=at_least_one, default=2, metavar="N",
                   help="sync workers of part 2's backend (default: 2)")
    p.add_argument("--nginx-t-runs", type=at_least_one, default=5, metavar="N",
                   help="nginx -t runs; the median is reported (default: 5)")
    p.add_argument("--target-nginx-t", type=float, default=2.0, metavar="SECONDS",
                   help="nginx -t on the large configuration (default: < 2 s)")
    p.add_argument("--target-sites", type=float, default=0.95, metavar="RATIO",
                   help="req/s with the large configuration / with 1 site (default: 0.95)")
    p.add_argument("--target-proxy", type=float, default=0.90, metavar="RATIO",
                   help="req/s through nginx / directly (default: 0.90)")
    p.add_argument("--seed", type=int, default=421, help="seed of the catalogue and the "
                   "order of the Host headers (default: 421)")
    p.add_argument("--nginx", default="/usr/sbin/nginx",
                   help="nginx binary (default: /usr/sbin/nginx)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk",
                   help="wrk binary (default: from PATH; Debian package wrk)")
    add_run_arguments(p, timeout=1200, keeps="configurations, logs, database")
    args = p.parse_args(argv)
    if args.pools and args.sites - args.dedicated < args.pools:
        p.error("--pools: every pool needs a site (fewer pools, or more --sites)")
    if not os.access(args.nginx, os.X_OK):
        p.error(f"{args.nginx} is not executable (apt-get install nginx-light)")
    if set(args.only or PARTS) & {"sites", "proxy"} and not shutil.which(args.wrk):
        p.error(f"wrk not found ({args.wrk}): apt-get install wrk")
    return args


if __name__ == "__main__":
    args = parse_args()
    sys.exit(main(args, lambda report: run(args, report), print_report))
