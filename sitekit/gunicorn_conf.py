"""Server hooks shared by every site's gunicorn master.

Each site's rendered ``gunicorn.conf.py`` sets its own socket, workers and logs, then does
``from sitekit.gunicorn_conf import *`` to get these hooks:

``on_reload`` (SIGHUP)
    A preloaded master never re-imports the application, so a plain HUP would keep serving
    the old release. Instead the master re-executes itself *in place* (same pid, so supervisor
    sees nothing) from the release that ``current`` points to now, handing its listening
    socket over via ``GUNICORN_FD``. Its old workers are told to finish their requests and
    exit (SIGTERM); connections that arrive meanwhile wait in the socket's backlog until the
    new workers accept them. Nothing is refused.

``when_ready``
    After the application is loaded in the master, and before any worker is forked: one
    request to each of a few URLs warms the lazy parts of Django (URL resolver, templates, the
    Site cache), database connections are closed (a forked connection must not be shared),
    and ``gc.freeze()`` moves everything into the permanent generation, so the collector in the
    workers does not touch - and so copy - the pages the master loaded.

Environment this module reads (set by the site's supervisor program): ``SITEKIT_CURRENT``, the
path of the ``current`` release symlink, and ``SITEKIT_WARMUP_HOST``, the site's canonical domain.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import signal
import sys

__all__ = ["on_reload", "when_ready"]

WARMUP_PATHS = ("/healthz", "/", "/sitekit-warmup-404")


def _warm_up(server) -> None:
    host = os.environ.get("SITEKIT_WARMUP_HOST", "")
    if not host:
        return
    app = server.app.wsgi()
    for path in WARMUP_PATHS:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": host,
            "SERVER_PORT": "80",
            "HTTP_HOST": host,
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        try:
            body = app(environ, lambda status, headers, exc_info=None: None)
            for _chunk in body:
                pass
            if hasattr(body, "close"):
                body.close()
        except Exception as exc:  # a warm-up failure must never stop the master
            server.log.warning("warm-up request %s failed: %s", path, exc)


def _close_connections() -> None:
    try:
        from django.db import connections
    except ImportError:
        return
    connections.close_all()


def when_ready(server) -> None:
    # Workers of the master this one replaced may have exited before its SIGCHLD handler was
    # installed: reap them now so they do not linger as zombies.
    server.reap_workers()
    if server.cfg.preload_app:
        _warm_up(server)
        _close_connections()
        gc.collect()
        gc.freeze()


def on_reload(server) -> None:
    """Replace this master in place with one running the release ``current`` points to."""
    current = os.environ.get("SITEKIT_CURRENT")
    if not current:
        server.log.info("SITEKIT_CURRENT not set: plain reload of the workers")
        return
    python = os.path.join(os.path.realpath(current), "venv", "bin", "python")
    if not os.access(python, os.X_OK):
        server.log.error("cannot re-exec: %s is missing; reloading workers in place", python)
        return

    server.log.info("graceful re-exec onto %s", os.path.realpath(current))
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
    environ = dict(server.cfg.env_orig)
    environ["GUNICORN_PID"] = str(os.getpid())
    environ["GUNICORN_FD"] = ",".join(fds)
    args = [python, "-m", "gunicorn", *sys.argv[1:]]
    os.chdir(server.START_CTX["cwd"])
    try:
        os.execve(python, args, environ)  # noqa: S606 (argv, no shell)
    except OSError as exc:  # keep serving from this master: it spawns fresh workers next
        server.log.error("re-exec failed (%s); reloading workers in place", exc)
