"""Server hooks shared by every site's gunicorn master.

Each site's rendered ``gunicorn.conf.py`` sets its own socket, workers and logs, then does
``from sitekit.runtime.gunicorn_conf import *`` to get these hooks:

``on_reload`` (SIGHUP)
    A preloaded master never re-imports the application, so a plain HUP would keep serving
    the old release. Instead the master re-executes itself *in place* (same pid, so supervisor
    sees nothing) from the release that ``current`` points to now, handing its listening
    socket over via ``GUNICORN_FD``. Its old workers are told to finish their requests and
    exit (SIGTERM); connections that arrive meanwhile wait in the socket's backlog until the
    new workers accept them. Nothing is refused.

``when_ready``
    After the application is loaded in the master, and before any worker is forked: a few
    passes of requests over a few URLs warm the lazy parts of Django (URL resolver, templates,
    the Site cache) and let CPython rewrite the bytecode of the request path in place, which it
    does only after a function has run several times (each such write in a worker would copy a
    page the master shares). The requests go through gunicorn's own HTTP parser and response
    writer, so gunicorn's request path is warmed too. The control-socket server, which
    gunicorn starts after forking, is imported now. Database connections are closed (a forked
    connection must not be shared), and ``gc.freeze()`` moves everything into the permanent
    generation, so the collector in the workers does not touch - and so copy - the pages the
    master loaded. ``bench/memory.py`` measures what this saves.

    With ``SITEKIT_KSM=1``, the master then opts itself into Kernel Samepage Merging
    (``prctl(PR_SET_MEMORY_MERGE, 1)``, Linux >= 6.4), which its workers inherit when they are
    forked. Pages a worker copied from the master and that are identical again (reference
    counts that went up and back down), or identical in both workers, can then be merged by
    ``ksmd`` into one read-only page. Nothing is merged unless KSM runs on the host
    (``/sys/kernel/mm/ksm/run`` = 1, a host setting this module never changes). Off by default;
    where the kernel does not support it, the master logs a line and goes on as usual. See
    ``bench/README.md`` for what it saves and what it costs.

Environment this module reads: ``SITEKIT_CURRENT``, the path of the ``current`` release
symlink, and ``SITEKIT_KSM`` ("1" to opt into KSM; unset, empty or "0": off), from the site's
supervisor program; ``SITEKIT_WARMUP_HOST``, a host name of the site (for a pooled master,
one per site, separated by commas), and ``SITEKIT_PUBLIC_SCHEME``, sent as
``X-Forwarded-Proto`` the way nginx forwards every request, from its env file (the settings
load it into the environment while the master preloads the application, so a new canonical
domain needs a reload, not a restart).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import time

# Captured when the site's gunicorn configuration first imports this module, before the
# application (and with it the site's env file) is loaded.
_START_ENVIRON = dict(os.environ)

__all__ = ["on_reload", "when_ready"]

WARMUP_PATHS = ("/healthz", "/", "/sitekit-warmup-404")
# CPython 3.11 rewrites a function's bytecode ("quickens" it) after 8 calls and specializes its
# instructions on the next ones. Done in a worker, each write copies the page of a code object
# the master shares; done here, once, for every worker. Eight passes is where the gain levels off.
WARMUP_ROUNDS = 8

# prctl(2) option (include/uapi/linux/prctl.h, Linux >= 6.4).
PR_SET_MEMORY_MERGE = 67
KSM_RUN = "/sys/kernel/mm/ksm/run"


class _DiscardingSocket:
    """The client side of a warm-up request: the response is written and dropped."""

    def sendall(self, data) -> None:
        pass

    send = sendall


def _warm_up_request(server, app, host: str, path: str) -> None:
    """GET *path* the way a worker serves it: gunicorn's parser, environ and response writer."""
    from gunicorn.http import RequestParser
    from gunicorn.http.wsgi import create

    # The scheme nginx would forward (over https, Django redirects anything else).
    scheme = os.environ.get("SITEKIT_PUBLIC_SCHEME", "").strip() or "http"
    raw = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: {scheme}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")
    client = _DiscardingSocket()
    request = next(RequestParser(server.cfg, [raw], ""))
    listener = server.LISTENERS[0].getsockname() if server.LISTENERS else f"{host}:80"
    response, environ = create(request, client, "", listener, server.cfg)
    response.force_close()
    body = app(environ, response.start_response)
    try:
        for chunk in body:
            response.write(chunk)
        response.close()
    finally:
        if hasattr(body, "close"):
            body.close()


def _warm_up(server) -> None:
    # One host name per site the master serves (a pooled master's are comma-separated).
    hosts = [h.strip() for h in os.environ.get("SITEKIT_WARMUP_HOST", "").split(",") if h.strip()]
    if not hosts:
        return
    app = server.app.wsgi()
    started = time.monotonic()
    failures = {}
    logging_disabled = logging.root.manager.disable
    try:
        for round_ in range(WARMUP_ROUNDS):
            if round_ == 1:
                # What the application logs below ERROR (the 404 warning) is logged once.
                logging.disable(max(logging_disabled, logging.WARNING))
            for host in hosts:
                for path in WARMUP_PATHS:
                    if (host, path) in failures:
                        continue
                    try:
                        _warm_up_request(server, app, host, path)
                    except Exception as exc:  # a warm-up failure must never stop the master
                        failures[host, path] = exc
    finally:
        logging.disable(logging_disabled)
    for (host, path), exc in failures.items():
        server.log.warning("warm-up request %s%s failed: %s", host, path, exc)
    server.log.info(
        "warm-up: %d passes over %s of %s in %.2fs",
        WARMUP_ROUNDS,
        " ".join(WARMUP_PATHS),
        ", ".join(hosts),
        time.monotonic() - started,
    )


def _import_control_server(server) -> None:
    # gunicorn (>= 25) imports its control-socket server (asyncio) in the master after forking
    # the workers, into pages they still share; imported now, it is shared like the rest.
    if not getattr(server.cfg, "control_socket_disable", True):
        with contextlib.suppress(ImportError):
            import gunicorn.ctl.server  # noqa: F401


def _close_connections() -> None:
    try:
        from django.db import connections
    except ImportError:
        return
    connections.close_all()


def _enable_memory_merge(server) -> None:
    """Opt this master (and the workers it forks from now on) into KSM if SITEKIT_KSM=1."""
    setting = os.environ.get("SITEKIT_KSM", "").strip()
    if setting in ("", "0"):
        return
    if setting != "1":
        server.log.warning("SITEKIT_KSM=%r ignored: KSM not enabled (use 1 or 0)", setting)
        return
    if not sys.platform.startswith("linux"):
        server.log.info("SITEKIT_KSM=1: KSM not enabled (not Linux)")
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
        prctl.restype = ctypes.c_int
        args = [ctypes.c_ulong(a) for a in (PR_SET_MEMORY_MERGE, 1, 0, 0, 0)]
        if prctl(*args) != 0:
            # EINVAL: kernel older than 6.4 or without CONFIG_KSM; EPERM: forbidden here.
            error = ctypes.get_errno()
            server.log.info(
                "SITEKIT_KSM=1: KSM not enabled, prctl(PR_SET_MEMORY_MERGE) failed: %s",
                os.strerror(error),
            )
            return
    except (OSError, AttributeError) as exc:
        server.log.info("SITEKIT_KSM=1: KSM not enabled, no prctl: %s", exc)
        return
    try:
        with open(KSM_RUN, encoding="ascii") as f:
            host = f.read().strip()
    except OSError:
        host = "?"
    if host == "1":
        server.log.info("KSM enabled for this master and its workers (ksmd is running)")
    else:
        server.log.info(
            "KSM enabled for this master and its workers, but %s is %s: nothing is merged "
            "until the host runs ksmd",
            KSM_RUN,
            host,
        )


def when_ready(server) -> None:
    # Workers of the master this one replaced may have exited before its SIGCHLD handler was
    # installed: reap them now so they do not linger as zombies.
    server.reap_workers()
    if server.cfg.preload_app:
        _warm_up(server)
        _close_connections()
        _import_control_server(server)
        gc.collect()
        gc.freeze()
    _enable_memory_merge(server)


def on_reload(server) -> None:
    """Replace this master in place with one running the release ``current`` points to."""
    current = os.environ.get("SITEKIT_CURRENT")
    if not current:
        server.log.info("SITEKIT_CURRENT not set: plain reload of the workers")
        return
    release = os.path.realpath(current)
    python = os.path.join(release, "venv", "bin", "python")
    if not os.access(python, os.X_OK):
        server.log.error("cannot re-exec: %s is missing; reloading workers in place", python)
        return

    server.log.info("graceful re-exec onto %s", release)
    for pid in list(server.WORKERS):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    server.WORKERS.clear()
    stop_control = getattr(server, "_stop_control_server", None)
    if stop_control is not None:
        stop_control()
    fds = []
    for listener in server.LISTENERS:
        fd = listener.fileno()
        os.set_inheritable(fd, True)
        fds.append(str(fd))
    # GUNICORN_FD is honoured only together with GUNICORN_PID: the new master then adopts the
    # listening socket (and the connections queued on it) instead of binding a new one. Its
    # "parent" is not this pid, so it promotes itself at once and keeps the same pid file.
    # The environment this master was started with, not os.environ now: the settings loaded
    # the site's env file into os.environ, and the new master must read the file afresh.
    environ = dict(_START_ENVIRON)
    environ["GUNICORN_PID"] = str(os.getpid())
    environ["GUNICORN_FD"] = ",".join(fds)
    args = [python, "-m", "gunicorn", *sys.argv[1:]]
    try:
        # from the new release's directory (where the configuration's chdir points too): the
        # directory this master started in is the previous release, which may be gone by now
        os.chdir(release)
        os.execve(python, args, environ)  # noqa: S606 (argv, no shell)
    except OSError as exc:  # keep serving from this master: it spawns fresh workers next
        server.log.error("re-exec failed (%s); reloading workers in place", exc)
