#!/usr/bin/env python3
"""nginx with a thousand sites: configuration scale, and throughput through nginx.

Three measurements, side by side in one run: 1. a generated catalogue of 1,000 sites and 5,000
domains, validated, written by the nginx role (``ansible-playbook``: site.yml's preflight and
nginx role on throwaway roots, ``tests/harness.py``), ``nginx -t`` timed on it; 2. requests/s
through nginx with those 1,000 sites against 1 site, every server block proxying to one trivial
backend, in interleaved rounds; 3. requests/s to a real site's Django (``/healthz``, the gunicorn
configuration the role renders) through nginx against the same master directly. Load comes from
``wrk``, to 127.0.0.1 only; the CPU time per request of nginx and the backends is read from
``/proc``. bench/README.md describes the method and the figures. Every process started (and the
nginx the role starts) is stopped on exit, also on errors, Ctrl-C, SIGTERM or ``--timeout``.

    python bench/nginx_scale.py                        # everything, about 6 minutes
    python bench/nginx_scale.py --only scale           # catalogue, the role's run, nginx -t
    python bench/nginx_scale.py --set nginx_worker_processes=1 --json
"""

from __future__ import annotations

import argparse
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
    REPO,
    BenchError,
    Service,
    add_run_arguments,
    base_environment,
    first_line,
    free_port,
    http_get,
    http_request,
    log,
    make_workdir,
    prepare_database,
    remove_workdir,
    run_guarded,
    shielded,
    versions,
)
from bench.common import machine as common_machine
from sitekit.catalogue import validate
from tests.harness import (
    NginxConfig,
    bound_socket,
    lay_out,
    make_catalogue,
    nginx_test,
    render_gunicorn,
    render_nginx,
    stop_nginx,
    write_settings,
)

LOCAL_CATALOGUE = REPO / "inventories" / "local" / "group_vars" / "all" / "sites.yml"
MB = 1024 * 1024

PARTS = {"scale": "catalogue validation, render time, nginx -t on the large configuration",
         "sites": "requests/s through nginx with the large configuration against 1 site",
         "proxy": "requests/s to Django through nginx against the same gunicorn reached directly"}

# Building blocks of the generated domains: <stem>.<org>.<tld>, www.<stem>.<org>.<tld>,
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
proc_name = "sitekit-bench-backend"
bind = ["unix:{socket}"]
backlog = 2048
workers = {workers}
worker_class = "sync"
pidfile = {pidfile!r}
control_socket = {control!r}
accesslog = None
errorlog = {errorlog!r}
loglevel = "warning"
"""


# --- the processes --------------------------------------------------------------------------


def harbor_catalogue() -> list[dict]:
    """The harbor site of the local environment's catalogue, as written there."""
    sites = yaml.safe_load(LOCAL_CATALOGUE.read_text(encoding="utf-8"))["sitekit_sites"]
    for site in sites:
        if site.get("name") == "harbor":
            return [site]
    raise BenchError(f"no site 'harbor' in {LOCAL_CATALOGUE}")


def start_nginx(config: NginxConfig, workdir: Path) -> Service:
    """nginx in the foreground (-g 'daemon off;') with the rendered configuration."""
    service = Service(f"nginx {config.name}", [*config.cmd, "-g", "daemon off;"],
                      workdir / f"nginx-{config.name}.out", stop_signal=signal.SIGQUIT)
    service.start()
    return service


def wait_for(what: str, check, service: Service, timeout: float) -> float:
    started = time.monotonic()
    while True:
        if not service.alive():
            raise BenchError(f"{service.name} exited ({service.proc.returncode}) at start:\n"
                             f"{service.log_tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if check():
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise BenchError(f"{what} not ready within {timeout:.0f}s:\n{service.log_tail()}")
        time.sleep(0.1)


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
    requests = max(r["requests"], 1)
    errors = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    return {"requests": r["requests"],
            "rps": r["requests"] / (r["duration_us"] / 1e6),
            "p50_ms": r["p50_us"] / 1000,
            "p99_ms": r["p99_us"] / 1000,
            "max_ms": r["max_us"] / 1000,
            "errors": errors,
            "error_detail": {k: r[k] for k in ("connect", "read", "write", "status", "timeout")},
            "cpu_us_per_request": {
            name: (after[name] - before[name]) * 1e6 / requests for name in before
            }}


def measure(args, targets: list[Target], script: Path) -> None:
    """Warm-up, then --rounds rounds per target, interleaved A B, B A, A B..."""
    for t in targets:
        run_wrk(args, t, args.warmup, script)
    for r in range(args.rounds):
        order = targets if r % 2 == 0 else targets[::-1]
        for t in order:
            result = run_wrk(args, t, args.duration, script)
            if result["errors"] > max(0, result["requests"] // 1000):
                raise BenchError(f"{t.label}: {result['errors']} failed requests of "
                                 f"{result['requests']}: {result['error_detail']}")
            t.rounds.append(result)
            log(f"  round {r + 1}/{args.rounds} {t.label}: {result['rps']:,.0f} req/s, "
                f"p99 {result['p99_ms']:.1f} ms")


def summarize(t: Target) -> dict:
    rounds = t.rounds
    rps = [r["rps"] for r in rounds]
    names = rounds[0]["cpu_us_per_request"].keys()
    return {"label": t.label,
            "rps_median": statistics.median(rps),
            "rps_min": min(rps),
            "rps_max": max(rps),
            "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
            "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
            "requests": sum(r["requests"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            "cpu_us_per_request": {
            n: statistics.median(r["cpu_us_per_request"][n] for r in rounds) for n in names
            },
            "rounds": rounds}


def compare(a: Target, b: Target, target: float) -> dict:
    sa, sb = summarize(a), summarize(b)
    # Rounds r of a and b ran one after the other: their ratio cancels whatever else loaded
    # the machine at the time; the median of those ratios is the figure judged.
    paired = [x["rps"] / y["rps"] for x, y in zip(a.rounds, b.rounds, strict=True)]
    ratio = statistics.median(paired)
    return {"a": sa,
            "b": sb,
            "ratio": ratio,
            "paired_ratios": paired,
            "ratio_of_medians": sa["rps_median"] / sb["rps_median"],
            "cpu_ratio": {n: sa["cpu_us_per_request"][n] / sb["cpu_us_per_request"][n]
            for n in sa["cpu_us_per_request"]
            if sb["cpu_us_per_request"].get(n)},
            "target": target,
            "pass": ratio >= target}


# --- the run --------------------------------------------------------------------------------


def machine(python: str, nginx: str, wrk: str) -> dict:
    return common_machine(nginx=first_line([nginx, "-v"]).replace("nginx version: ", ""),
                          wrk=first_line([wrk, "--version"]).split(" [")[0],
                          versions=versions(python),
                          nofile_soft=resource.getrlimit(resource.RLIMIT_NOFILE)[0])


def settings_from(args) -> dict:
    settings = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise BenchError(f"--set {item!r}: expected NAME=VALUE")
        settings[name] = yaml.safe_load(value)
    return settings


def run(args: argparse.Namespace, report: dict) -> None:
    parts = set(args.only or PARTS)
    settings = {"nginx_binary": args.nginx, **settings_from(args)}
    workdir = make_workdir("sitekit-bench-nginx-")
    services: list[Service] = []
    rendered: list[dict] = []  # hosts the nginx role ran on (and started nginx)
    report["run"] = {"parts": sorted(parts),
                     "sites": args.sites,
                     "domains_per_site": args.domains_per_site,
                     "set": settings,
                     "connections": args.connections,
                     "threads": args.threads,
                     "rounds": args.rounds,
                     "duration_s": args.duration,
                     "warmup_s": args.warmup,
                     "backend_workers": args.backend_workers,
                     "workdir": str(workdir) if args.keep else None}
    report["machine"] = machine(args.python, args.nginx, args.wrk)
    try:
        script = workdir / "wrk.lua"
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        backend_socket = workdir / "backend.sock"
        scale = one = None
        if parts & {"scale", "sites"}:
            # 1. the catalogue, validated and rendered
            raw = make_catalogue(args.sites, args.domains_per_site, args.seed)
            project = workdir / "project"
            write_settings(project / "settings", raw)
            log(f"validating {args.sites} sites")
            sites, validate_s = validated(raw, project)
            lengths = sorted(len(d) for s in raw for d in s["domains"])
            report["catalogue"] = {
                "sites": len(sites),
                "domains": len(lengths),
                "length_min": lengths[0],
                "length_median": statistics.median(lengths),
                "length_max": lengths[-1],
                "validate_s": validate_s,
                "example": raw[420]["domains"] if len(raw) > 420 else raw[0]["domains"],
            }
            # every server block of part 2 points at the one backend
            hosts = {label: {"sitekit_root": str(workdir / label), "nginx_binary": args.nginx,
                             "sitekit_tls": "off", "sitekit_sites": catalogue,
                             "sitekit_site_socket": str(backend_socket), **settings}
                     for label, catalogue in (("scale", raw), ("one", raw[:1]))}
            rendered.append(hosts)
            scale, one, seconds = render(workdir, hosts, project / "settings")
            render_info = {"seconds": seconds, "files": len(scale.files),
                           "rlimit_nofile": int(scale.variables["nginx_rlimit_nofile"]),
                           "bytes": sum(len(t) for t in scale.files.values())}
            report["render"] = render_info

            report["server_names_hash"] = {
                "scale": configured_hash(scale.conf.read_text(encoding="utf-8")),
                "one": configured_hash(one.conf.read_text(encoding="utf-8")),
            }
            if "scale" in parts:
                log(f"timing nginx -t ({args.nginx_t_runs} runs each)")
                report["nginx_t"] = {"scale": nginx_test(scale, args.nginx_t_runs),
                                     "one": nginx_test(one, args.nginx_t_runs),
                                     "target_s": args.target_nginx_t}
                report["nginx_t"]["pass"] = (
                    report["nginx_t"]["scale"]["ok"]
                    and report["nginx_t"]["scale"]["median_s"] < args.target_nginx_t
                )
                # a soft limit of 1024 open files: systemd's default for services, a login
                # shell's usual one
                report["nginx_t_nofile_1024"] = {
                    "role": nginx_test(scale, 1, nofile=1024),
                    "plain": nginx_test(scale, 1, nofile=1024, plain=True),
                }
            elif not nginx_test(scale, 1)["ok"]:
                raise BenchError("nginx -t fails on the large configuration")

        if "sites" in parts:
            # 2. the same backend behind 1000 sites and behind 1
            log(f"starting the backend (gunicorn, {args.backend_workers} sync workers)")
            (workdir / "backend.py").write_text(BACKEND_APP, encoding="utf-8")
            (workdir / "backend.conf.py").write_text(
                BACKEND_CONF.format(
                    workdir=str(workdir), socket=backend_socket, workers=args.backend_workers,
                    pidfile=str(workdir / "backend.pid"), control=str(workdir / "backend.ctl"),
                    errorlog=str(workdir / "backend.log"),
                ),
                encoding="utf-8",
            )
            backend = Service(
                "backend", [args.python, "-m", "gunicorn", "-c", str(workdir / "backend.conf.py")],
                workdir / "backend.out", env=base_environment(workdir), cwd=workdir,
            )
            services.append(backend)
            backend.start()
            nginx_scale = start_nginx(scale, workdir)
            services.append(nginx_scale)
            nginx_one = start_nginx(one, workdir)
            services.append(nginx_one)
            wait_for("backend", lambda: http_get(backend_socket, "/", "x")[0] == 200, backend, 60)
            for config, service in ((scale, nginx_scale), (one, nginx_one)):
                wait_for(service.name,
                         lambda c=config: http_request(c.port, c.domains[0])[0] == 200,
                         service, 60)
            spot_check(scale, one, args.seed)
            targets = [
                Target(f"{len(scale.sites)} sites, {len(scale.domains)} domains", scale.port,
                       write_hosts(workdir / "hosts-scale.txt", scale.domains, args.seed), "/",
                       {"nginx": nginx_scale, "backend": backend}),
                Target(f"{len(one.sites)} site, {len(one.domains)} domains", one.port,
                       write_hosts(workdir / "hosts-one.txt", one.domains, args.seed), "/",
                       {"nginx": nginx_one, "backend": backend}),
            ]
            log(f"requests/s through nginx, {args.rounds} rounds of {args.duration:g}s each")
            measure(args, targets, script)
            result = compare(targets[0], targets[1], args.target_sites)
            logs = [scale.log_dir / f"{s['name']}.access.log" for s in scale.sites]
            if all(p.exists() for p in logs):  # per-site access logs, as the template writes
                result["server_blocks_reached"] = sum(1 for p in logs if p.stat().st_size > 0)
            result["nginx"] = {
                "scale": {"pss_mb": nginx_scale.pss_mb(), "open_files": nginx_scale.open_files(),
                          "workers": len(nginx_scale.children())},
                "one": {"pss_mb": nginx_one.pss_mb(), "open_files": nginx_one.open_files(),
                        "workers": len(nginx_one.children())},
            }
            report["sites"] = result
            for s in (nginx_scale, nginx_one, backend):
                s.stop()

        if "proxy" in parts:
            # 3. Django through nginx and its socket against the same master reached directly
            log("migrating and syncing the sqlite database")
            env = base_environment(workdir)
            prepare_database(args.python, env, workdir)
            raw = harbor_catalogue()
            site = validate(raw, env="local", project_root=REPO).sites[0].as_dict()
            hosts = {"harbor": {"sitekit_root": str(workdir / "harbor"), "nginx_binary": args.nginx,
                                "sitekit_tls": "off", "sitekit_sites": raw, **settings}}
            rendered.append(hosts)
            harbor, _ = render(workdir, hosts)
            conf = render_gunicorn(workdir / "gunicorn", hosts, raw)["harbor"]["harbor"]
            tcp_port = free_port(harbor.port)
            gunicorn = start_site_master(args, conf, site, env, tcp_port, workdir)
            services.append(gunicorn)
            nginx_harbor = start_nginx(harbor, workdir)
            services.append(nginx_harbor)
            host = site["canonical_domain"]
            sock = bound_socket(conf)
            boot = wait_for("gunicorn (harbor)", lambda: healthy(sock, host, site["name"]),
                            gunicorn, args.boot_timeout)
            log(f"harbor answers /healthz after {boot:.1f}s")
            wait_for(nginx_harbor.name, lambda: http_request(harbor.port, host, "/healthz")[0]
                     == 200, nginx_harbor, 60)
            if http_request(tcp_port, host, "/healthz")[0] != 200:
                raise BenchError("gunicorn does not answer /healthz on its TCP port")
            hosts = write_hosts(workdir / "hosts-harbor.txt", [host], args.seed)
            targets = [Target("nginx -> unix socket -> gunicorn", harbor.port, hosts, "/healthz",
                       {"nginx": nginx_harbor, "gunicorn": gunicorn}),
                       Target("gunicorn directly (TCP)", tcp_port, hosts, "/healthz",
                       {"gunicorn": gunicorn})]
            log(f"requests/s to Django, {args.rounds} rounds of {args.duration:g}s each")
            measure(args, targets, script)
            result = compare(targets[0], targets[1], args.target_proxy)
            result["site"] = {"name": site["name"], "settings_module": site["settings_module"],
                              "workers": site["workers"], "threads": site["threads"],
                              "host": host}
            report["proxy"] = result
        report["machine"]["load_end"] = os.getloadavg()
    finally:
        with shielded():  # neither Ctrl-C nor the timeout may interrupt the clean-up
            if services:
                log("stopping nginx and gunicorn")
            for s in reversed(services):
                s.stop()
            for hosts in rendered:
                stop_nginx(hosts)
            remove_workdir(workdir, args.keep)


def validated(raw: list[dict], project: Path, repeat: int = 3) -> tuple[list[dict], float]:
    """The catalogue validated by sitekit.catalogue.validate: its sites, the median time."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = validate(raw, env="bench", project_root=project)
        times.append(time.perf_counter() - started)
    if not result.ok:
        shown = "\n".join(f"    {p}" for p in result.problems[:10])
        raise BenchError(f"the generated catalogue is invalid ({len(result.problems)}):\n{shown}")
    return [site.as_dict() for site in result.sites], statistics.median(times)


def render(workdir: Path, hosts: dict[str, dict],
           settings: Path | None = None) -> tuple[NginxConfig, ...]:
    """The nginx role run by ansible-playbook on *hosts* (laid out first: the layout's loops
    over every site are slow); their configurations and the role's run time. The nginx the
    role started is stopped: the parts start their own, to measure it."""
    label = "-".join(hosts)
    laid_out = lay_out(workdir / f"layout-{label}", hosts)
    if not laid_out.ok:
        raise BenchError(f"laying out {label} failed:\n{laid_out.output[-3000:]}")
    for variables in hosts.values():
        variables["sitekit_laid_out"] = True
    log(f"the nginx role for {', '.join(hosts)} (ansible-playbook)")
    configs, run = render_nginx(workdir / f"render-{label}", hosts, settings=settings)
    stop_nginx(hosts)
    if not run.ok:
        raise BenchError(f"the nginx role failed:\n{run.output[-3000:]}")
    return (*(configs[name] for name in hosts), run.seconds)


def configured_hash(conf_text: str) -> dict[str, int]:
    found = dict(re.findall(r"^\s*server_names_hash_(max_size|bucket_size)\s+(\d+);", conf_text,
                            re.M))
    return {k: int(v) for k, v in found.items()}


def spot_check(scale: NginxConfig, one: NginxConfig, seed: int) -> None:
    """A sample of domains reaches the backend with its Host; an unknown Host gets no answer."""
    rng = random.Random(seed)
    sample = rng.sample(scale.domains, min(50, len(scale.domains)))
    for config, hosts in ((scale, sample), (one, one.domains)):
        for host in hosts:
            status, body = http_request(config.port, host)
            if status != 200 or body.decode().strip() != f"ok {host}":
                raise BenchError(f"{config.name}: Host {host} got {status} {body[:80]!r}")
    with contextlib.suppress(http.client.RemoteDisconnected, ConnectionResetError):
        status, _ = http_request(scale.port, "unknown.example.invalid")
        raise BenchError(f"an unknown Host got an answer ({status}), not 444")


def healthy(sock: Path, host: str, name: str) -> bool:
    status, body = http_get(sock, "/healthz", host, timeout=5)
    return status == 200 and json.loads(body).get("site") == name


def start_site_master(args, conf: Path, site: dict, env: dict, tcp_port: int,
                      workdir: Path) -> Service:
    """The site's master with the configuration the gunicorn_site role's template renders for
    it, also bound to 127.0.0.1 (and named sitekit-bench-*)."""
    text = conf.read_text(encoding="utf-8")
    unix_bind = f'bind = ["unix:{bound_socket(conf)}"]'
    if text.count(unix_bind) != 1:
        raise BenchError(f"{conf} no longer has the line {unix_bind!r}")
    text = text.replace(unix_bind, f'bind = ["unix:{bound_socket(conf)}", "127.0.0.1:{tcp_port}"]')
    # named like the other benchmarks' processes, not like a deployed master
    text = re.sub(r'^proc_name = "(.*)"$', r'proc_name = "sitekit-bench-\1"', text, flags=re.M)
    for path in re.findall(r'^(?:pidfile|control_socket|accesslog|errorlog) = "(/[^"]+)"', text,
                           re.M):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    bound_socket(conf).parent.mkdir(parents=True, exist_ok=True)
    bench_conf = workdir / f"{site['name']}.gunicorn.conf.py"
    bench_conf.write_text(text, encoding="utf-8")
    master = Service(f"gunicorn {site['name']}",
                     [args.python, "-m", "gunicorn", "-c", str(bench_conf)],
                     workdir / f"gunicorn-{site['name']}.out",
                     env=dict(env, DJANGO_SETTINGS_MODULE=site["settings_module"],
                     SITEKIT_WARMUP_HOST=site["canonical_domain"]), cwd=REPO)
    master.start()
    return master


# --- the report -----------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_comparison(result: dict, what: str) -> None:
    a, b = result["a"], result["b"]
    names = list(dict.fromkeys([*a["cpu_us_per_request"], *b["cpu_us_per_request"]]))
    width = max(len(a["label"]), len(b["label"])) + 2
    header = (f"  {'':<{width}}{'req/s':>8} {'(min-max)':<16}{'p50 ms':>7}{'p99 ms':>8}"
              + "".join(f"{n + ' CPU us/req':>20}" for n in names) + f"{'errors':>8}")
    print(header)
    for s in (a, b):
        cpu = "".join(f"{s['cpu_us_per_request'][n]:>20.0f}" if n in s["cpu_us_per_request"]
                      else f"{'-':>20}" for n in names)
        span = f"({s['rps_min']:,.0f}-{s['rps_max']:,.0f})"
        print(f"  {s['label']:<{width}}{s['rps_median']:>8,.0f} {span:<16}{s['p50_ms']:>7.1f}"
              f"{s['p99_ms']:>8.1f}{cpu}{s['errors']:>8}")
    paired = result["paired_ratios"]
    print(f"  req/s ratio {what}: {result['ratio']:.3f} (median of {len(paired)} round pairs, "
          f"{min(paired):.3f}-{max(paired):.3f}; ratio of the medians "
          f"{result['ratio_of_medians']:.3f})"
          f"   target >= {result['target']:.2f}  {verdict(result['pass'])}")
    if result["cpu_ratio"]:
        print("  CPU per request, same ratio: " + ", ".join(
            f"{n} {r:.3f}" for n, r in result["cpu_ratio"].items()))


def print_report(report: dict) -> None:
    m, run = report["machine"], report["run"]
    v = m.get("versions", {})
    print("sitekit nginx at scale")
    print(f"  {m['cpus']} CPUs, kernel {m['kernel']}, nginx {m['nginx']}, {m['wrk']}, Python "
          f"{v.get('python', '?')}, Django {v.get('django', '?')}, gunicorn "
          f"{v.get('gunicorn', '?')}; open files limit {m['nofile_soft']}")
    load_end = m.get("load_end")
    print(f"  load average (1/5/15 min) {' '.join(f'{x:.2f}' for x in m['load_start'])} at start"
          + (f", {' '.join(f'{x:.2f}' for x in load_end)} at end" if load_end else ""))
    if run["set"]:
        print(f"  variables set: {json.dumps(run['set'])}")
    if "catalogue" in report:
        c, r = report["catalogue"], report["render"]
        print()
        print(f"1. scale: {c['sites']} sites, {c['domains']} domains of {c['length_min']} to "
              f"{c['length_max']} characters (median {c['length_median']:g}), e.g. "
              f"{', '.join(c['example'][:2])}")
        print(f"  validated by sitekit.catalogue.validate in {c['validate_s'] * 1000:.0f} ms "
              "(median of 3, one settings module read per site)")
        print(f"  written by the nginx role (ansible-playbook: preflight and nginx role, with its "
              f"nginx -t and start, for {c['sites']} sites and for 1 site) in "
              f"{r['seconds']:.1f} s: {r['files']} files, {r['bytes'] / MB:.1f} MB")
        h = report["server_names_hash"]
        print(f"  server_names_hash_max_size {h['scale'].get('max_size')}, "
              f"server_names_hash_bucket_size {h['scale'].get('bucket_size')} "
              f"(1 site: {h['one'].get('max_size')}, {h['one'].get('bucket_size')})")
    if "nginx_t" in report:
        t = report["nginx_t"]
        s, o = t["scale"], t["one"]
        print(f"  nginx -t: {s['median_s']:.3f} s median of {s['runs']} ({s['min_s']:.3f}-"
              f"{s['max_s']:.3f}){'' if s['ok'] else ' FAILED'}; 1 site: {o['median_s']:.3f} s"
              f"   target < {t['target_s']:g} s  {verdict(t['pass'])}")
        for message in s["messages"]:
            print(f"    {message}")
        n = report["nginx_t_nofile_1024"]
        print("  nginx -t from a soft limit of 1024 open files (systemd's default for services): "
              f"as the role runs it (prlimit, {report['render']['rlimit_nofile']} files) "
              f"{'ok' if n['role']['ok'] else 'FAILS'}; nginx alone "
              f"{'ok' if n['plain']['ok'] else 'FAILS'}")
        for message in n["role"]["messages"][:2] + n["plain"]["messages"][:2]:
            print(f"    {message}")
    if "sites" in report:
        r = report["sites"]
        print()
        print(f"2. requests/s through nginx: {r['a']['label']} against {r['b']['label']}")
        print(f"  every server block proxies to one backend: gunicorn, {run['backend_workers']} "
              "sync workers, a trivial WSGI app, unix socket")
        print(f"  wrk: {run['connections']} connections, {run['threads']} thread(s), Host "
              f"headers cycling through the configured domains; {run['rounds']} rounds of "
              f"{run['duration_s']:g} s per configuration, interleaved, after "
              f"{run['warmup_s']:g} s of warm-up")
        print_comparison(r, "1000 sites / 1 site" if r["a"]["label"].startswith("1000 ")
                         else "many sites / 1 site")
        n = r["nginx"]
        if "server_blocks_reached" in r:
            print(f"  requests reached {r['server_blocks_reached']} server blocks (per-site "
                  "access logs written)")
        print(f"  nginx (master + "
              f"{n['scale']['workers']} workers) PSS {n['scale']['pss_mb']:.1f} MB against "
              f"{n['one']['pss_mb']:.1f} MB; open files per worker "
              f"{n['scale']['open_files'].get('worker')} against "
              f"{n['one']['open_files'].get('worker')}")
    if "proxy" in report:
        r = report["proxy"]
        s = r["site"]
        print()
        print(f"3. requests/s to Django ({s['settings_module']}, GET /healthz, Host {s['host']}): "
              "through nginx against the same gunicorn directly")
        print(f"  one gunicorn master as the deploy renders it ({s['workers']} sync workers, "
              "preload + sitekit hooks), bound to its unix socket and to 127.0.0.1; "
              f"wrk {run['connections']} connections, {run['rounds']} rounds of "
              f"{run['duration_s']:g} s each way, interleaved")
        print_comparison(r, "through nginx / direct")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/nginx_scale.py",
        description=__doc__.split("\n\n")[1],
        epilog=("Exit status: 0 when the run completed (whether or not the targets were met), 2 "
                "when it failed, 130 when it was interrupted or timed out. Every process started "
                "is stopped in all cases."),
    )
    parser.add_argument("--only", action="append", choices=sorted(PARTS),
                        help="run only this part (repeatable): "
                        + "; ".join(f"{k}: {v}" for k, v in PARTS.items()))
    parser.add_argument("--sites", type=int, default=1000, metavar="N",
                        help="sites in the generated catalogue (default: 1000)")
    parser.add_argument("--domains-per-site", type=int, default=5, metavar="N",
                        help="domains per generated site (default: 5)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a host variable for every configuration the role writes "
                        "(VALUE is YAML), e.g. nginx_worker_processes=1 or "
                        "nginx_templates_dir=/tmp/copy (repeatable)")
    parser.add_argument("--connections", type=int, default=16,
                        help="wrk connections (default: 16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (default: 1)")
    parser.add_argument("--rounds", type=int, default=15,
                        help="measured rounds per configuration (default: 15)")
    parser.add_argument("--duration", type=float, default=2.0, metavar="SECONDS",
                        help="length of a round (default: 2)")
    parser.add_argument("--warmup", type=float, default=2.0, metavar="SECONDS",
                        help="unmeasured load per configuration first (default: 2)")
    parser.add_argument("--backend-workers", type=int, default=2, metavar="N",
                        help="sync workers of part 2's backend (default: 2)")
    parser.add_argument("--nginx-t-runs", type=int, default=5, metavar="N",
                        help="nginx -t runs; the median is reported (default: 5)")
    parser.add_argument("--target-nginx-t", type=float, default=1.0, metavar="SECONDS",
                        help="nginx -t on the large configuration (default: < 1 s)")
    parser.add_argument("--target-sites", type=float, default=0.95, metavar="RATIO",
                        help="req/s with the large configuration / with 1 site (default: 0.95)")
    parser.add_argument("--target-proxy", type=float, default=0.90, metavar="RATIO",
                        help="req/s through nginx / directly (default: 0.90)")
    parser.add_argument("--seed", type=int, default=421, help="seed of the catalogue and the "
                        "order of the Host headers (default: 421)")
    parser.add_argument("--nginx", default="/usr/sbin/nginx",
                        help="nginx binary (default: /usr/sbin/nginx)")
    parser.add_argument("--wrk", default=shutil.which("wrk") or "wrk",
                        help="wrk binary (default: from PATH; Debian package wrk)")
    add_run_arguments(parser, timeout=1200, keeps="configurations, logs, database")
    args = parser.parse_args(argv)
    for name in ("sites", "domains_per_site", "connections", "threads", "rounds",
                 "backend_workers", "nginx_t_runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.sites > 9999:
        parser.error("--sites must be at most 9999")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be positive and --warmup not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not os.access(args.nginx, os.X_OK):
        log(f"error: {args.nginx} is not executable (apt-get install nginx-light)")
        return 2
    needs_load = set(args.only or PARTS) & {"sites", "proxy"}
    if needs_load and not shutil.which(args.wrk):
        log(f"error: wrk not found ({args.wrk}): apt-get install wrk")
        return 2
    report: dict = {}
    status, _ = run_guarded(args.timeout, lambda: run(args, report))
    if status:
        return status
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
