"""`sitekit logs`: one site's nginx lines whichever log layout the environment resolves to, read
here from real files (per-site and shared), and the ssh command line of a remote host."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sitekit import inventory, logs, model
from sitekit.catalogue import validate
from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]

# Lines as nginx writes them: the per-site format, and the shared one (the site's name first).
HARBOR = [f'127.0.0.1 harbor.localhost "GET /h{i} HTTP/1.1" 200 5 "curl" rt=0.001 urt=0.001'
          for i in range(4)]
MEADOW = ['127.0.0.1 meadow.localhost "GET /m0 HTTP/1.1" 200 5 "curl" rt=0.001 urt=0.001']


def run(capfd, *argv, project: Path = REPO):
    code = main(["--project", str(project), *argv])
    out, err = capfd.readouterr()
    return code, out, err


def checkout(tmp_path: Path, layout: str | None) -> Path:
    """A checkout whose local environment logs in ``layout`` (sitekit_nginx_logs), or the
    default (auto: per-site for its 3 sites)."""
    project = tmp_path / "checkout"
    (project / "inventories").mkdir(parents=True)
    shutil.copytree(REPO / "inventories" / "local", project / "inventories" / "local")
    for name in ("settings", "project"):
        (project / name).symlink_to(REPO / name)
    if layout:
        main_yml = project / "inventories" / "local" / "group_vars" / "all" / "main.yml"
        main_yml.write_text(main_yml.read_text() + f"\nsitekit_nginx_logs: {layout}\n")
    return project


@pytest.mark.parametrize(("argv", "message"), [
    (["logs", "local", "nosuch"], "local: no site 'nosuch' in the catalogue (present sites: "
     "harbor, meadow, ember)"),
    (["logs", "nowhere", "harbor"], "no environment 'nowhere'"),
    (["logs", "local", "harbor", "--host", "web9"], "local: no web host 'web9' (web hosts: "
     "localhost)"),
])
def test_usage_errors_are_one_line_and_exit_2(capfd, argv, message):
    code, out, err = run(capfd, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sitekit logs: "), err
    assert message in err
    assert "Traceback" not in err


def test_auto_keeps_per_site_logs_up_to_256_sites():
    assert model.PER_SITE_LOGS_MAX == 256
    auto = model.Layout()
    assert auto.nginx_logs == "auto"
    assert auto.nginx_log_layout(256) == "per-site"
    assert auto.nginx_log_layout(257) == "shared"
    assert model.Layout(nginx_logs="per-site").nginx_log_layout(10_000) == "per-site"
    assert model.Layout(nginx_logs="shared").nginx_log_layout(1) == "shared"
    assert model.layout_problems(model.Layout(nginx_logs="both"), secret_key_base="k" * 40) == [
        model.Problem("", "", "sitekit_nginx_logs",
                      "must be one of auto, per-site, shared, got 'both'")]


def test_the_tls_sites_share_one_http_server_with_certificates_by_name_and_the_shared_log():
    auto = model.Layout()
    assert auto.nginx_http_layout(256, 256) == "per-site"
    assert auto.nginx_http_layout(10_000, 10_000) == "shared"
    # many sites, few of them TLS: their certificates per site, their http side too
    assert auto.nginx_http_layout(10_000, 200) == "per-site"
    # a site's own log files: its redirects are logged there, by its own http server
    assert model.Layout(nginx_logs="per-site").nginx_http_layout(10_000, 10_000) == "per-site"
    assert model.Layout(nginx_certificates="per-site").nginx_http_layout(10_000, 10_000) \
        == "per-site"
    both = model.Layout(nginx_logs="shared", nginx_certificates="sni")
    assert both.nginx_http_layout(1, 1) == "shared"
    variables = model.resolve(validate([{"name": "harbor", "domains": ["harbor.localhost"]}],
                                       env="local"), both).variables()
    assert variables["sitekit_layout"]["nginx_http"] == "shared"


def test_per_site_the_sites_own_file(capfd, tmp_path):
    root = tmp_path / "stack"
    nginx = root / "log" / "nginx"
    nginx.mkdir(parents=True)
    (nginx / "harbor.access.log").write_text("\n".join(HARBOR) + "\n")
    (nginx / "meadow.access.log").write_text("\n".join(MEADOW) + "\n")
    (nginx / "harbor.error.log").write_text("an error of harbor\n")
    code, out, err = run(capfd, "logs", "local", "harbor", "--root", str(root), "-n", "2",
                         project=checkout(tmp_path, None))
    assert (code, err) == (0, "")
    assert out.splitlines() == HARBOR[-2:]
    code, out, _ = run(capfd, "logs", "local", "harbor", "--root", str(root), "--errors",
                       project=checkout(tmp_path / "again", None))
    assert (code, out) == (0, "an error of harbor\n")


def test_shared_the_lines_that_start_with_the_sites_name(capfd, tmp_path):
    root = tmp_path / "stack"
    nginx = root / "log" / "nginx"
    nginx.mkdir(parents=True)
    mixed = [f"harbor {HARBOR[0]}", f"meadow {MEADOW[0]}", f"harbor {HARBOR[1]}",
             # another site's line that names harbor elsewhere than first
             f"meadow {MEADOW[0].replace('/m0', '/harbor ')}", f"harbor {HARBOR[2]}"]
    (nginx / "access.log").write_text("\n".join(mixed) + "\n")
    (nginx / "error.log").write_text(
        '2026/01/01 00:00:00 [error] 1#1: *1 connect() failed, client: 127.0.0.1, server: '
        'harbor.localhost, request: "GET / HTTP/1.1", host: "www.harbor.localhost"\n'
        '2026/01/01 00:00:00 [error] 1#1: *2 connect() failed, client: 127.0.0.1, server: '
        'meadow.localhost, request: "GET / HTTP/1.1", host: "meadow.localhost"\n')
    project = checkout(tmp_path, "shared")
    code, out, err = run(capfd, "logs", "local", "harbor", "--root", str(root), "-n", "2",
                         project=project)
    assert (code, err) == (0, "")
    assert out.splitlines() == [f"harbor {HARBOR[1]}", f"harbor {HARBOR[2]}"]
    code, out, _ = run(capfd, "logs", "local", "meadow", "--root", str(root), project=project)
    assert out.splitlines() == [mixed[1], mixed[3]]
    code, out, _ = run(capfd, "logs", "local", "harbor", "--root", str(root), "--errors",
                       project=project)
    assert code == 0 and out.count("\n") == 1 and "server: harbor.localhost," in out
    # no line yet (ember never answered), and a missing log is an error
    code, out, _ = run(capfd, "logs", "local", "ember", "--root", str(root), project=project)
    assert (code, out) == (0, "")
    (nginx / "access.log").unlink()
    code, out, err = run(capfd, "logs", "local", "harbor", "--root", str(root),
                         project=project)
    assert code == 1 and out == "" and "access.log" in err


def default_signals() -> None:
    """In a child: what SIGINT, SIGHUP and SIGTERM do by default, as at a terminal (a test run
    started in the background, or under nohup, passes them on ignored)."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def readers(path: Path) -> dict[int, str]:
    """The processes on this machine that name ``path``: their command lines by pid."""
    found = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().decode("utf-8", "replace").split("\0")
            if any(str(path) in arg for arg in args):
                found[int(cmdline.parent.name)] = " ".join(args)
    return found


def readers_of(path: Path) -> list[str]:
    """The command lines of the processes on this machine that name ``path``."""
    return list(readers(path).values())


def end(proc: subprocess.Popen, log: Path) -> None:
    """After a test: the command killed, and whatever it left reading ``log`` (a reader in a
    session of its own outlives a killed `sitekit logs`)."""
    proc.kill()
    proc.wait(10)
    for pid in readers(log):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def within(seconds: float, done) -> bool:
    """Whether ``done()`` holds within ``seconds`` (polled)."""
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def assert_stops_with_its_readers(proc: subprocess.Popen, signum: int, code: int,
                                  log: Path) -> None:
    """``signum`` to `sitekit logs -f` alone: it exits with ``code``, and no process reading
    ``log`` is left (without a further line written)."""
    proc.send_signal(signum)
    assert proc.wait(10) == code
    assert within(5, lambda: not readers_of(log)), readers_of(log)


@pytest.mark.parametrize(("signum", "code"), [
    (signal.SIGTERM, 128 + signal.SIGTERM),
    (signal.SIGINT, 130),  # Ctrl-C
    (signal.SIGHUP, 128 + signal.SIGHUP),
])
def test_follow_prints_the_new_lines_and_stops_its_readers(tmp_path, signum, code):
    root = tmp_path / "stack"
    nginx = root / "log" / "nginx"
    nginx.mkdir(parents=True)
    log = nginx / "access.log"
    log.write_text(f"harbor {HARBOR[0]}\n")
    project = checkout(tmp_path, "shared")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "sitekit"), "--project", str(project),
                             "logs", "local", "harbor", "--root", str(root), "-f"],
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    try:
        assert proc.stdout.readline() == f"harbor {HARBOR[0]}\n"
        with log.open("a") as f:
            f.write(f"meadow {MEADOW[0]}\nharbor {HARBOR[3]}\n")
        assert proc.stdout.readline() == f"harbor {HARBOR[3]}\n"
        assert any(args.startswith("tail ") for args in readers_of(log))
        # the signal reaches sitekit alone (as `kill` or a supervisor sends it), not its readers
        assert_stops_with_its_readers(proc, signum, code, log)
    finally:
        end(proc, log)


# An ssh that runs its remote command here as sshd would: the command's input is a pipe from
# this ssh's, closed when the connection ends; stopped, it ends the connection and leaves the
# command running (sshd sends it no signal when there is no terminal).
FAKE_SSH = """#!/usr/bin/env python3
import signal, subprocess, sys, threading
remote = subprocess.Popen(["sh", "-c", sys.argv[-1]], stdin=subprocess.PIPE)
def disconnect(*_):
    remote.stdin.close()
    sys.exit(255)
signal.signal(signal.SIGTERM, disconnect)
def relay():
    for chunk in iter(lambda: sys.stdin.buffer.read1(4096), b""):
        remote.stdin.write(chunk)
    remote.stdin.close()
threading.Thread(target=relay, daemon=True).start()
sys.exit(remote.wait())
"""


def test_under_nohup_a_hangup_does_not_end_follow(tmp_path):
    root = tmp_path / "stack"
    (root / "log" / "nginx").mkdir(parents=True)
    log = root / "log" / "nginx" / "access.log"
    log.write_text(f"harbor {HARBOR[0]}\n")
    project = checkout(tmp_path, "shared")
    proc = subprocess.Popen(["nohup", str(REPO / ".venv" / "bin" / "sitekit"), "--project",
                             str(project), "logs", "local", "harbor", "--root", str(root), "-f"],
                            stdout=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    try:
        assert proc.stdout.readline() == f"harbor {HARBOR[0]}\n"
        proc.send_signal(signal.SIGHUP)
        with log.open("a") as f:
            f.write(f"harbor {HARBOR[1]}\n")
        assert proc.stdout.readline() == f"harbor {HARBOR[1]}\n"
        assert proc.poll() is None
        proc.terminate()
        assert proc.wait(10) == 128 + signal.SIGTERM
    finally:
        end(proc, log)


def test_a_reader_that_ignores_sigterm_is_killed(tmp_path):
    log = tmp_path / "access.log"
    log.write_text(f"harbor {HARBOR[0]}\n")
    script = (
        "import sys\nfrom sitekit import logs\nlogs.STOP_SECONDS = 1\n"
        "source = logs.Source('here', True, 'per-site', sys.argv[1], "
        "f\"trap '' TERM; exec tail -n 1 -F {sys.argv[1]}\", {}, True)\n"
        "try:\n    sys.exit(logs.run([source]))\n"
        "except logs.Stopped as exc:\n    sys.exit(128 + exc.signum)\n")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), "-c", script, str(log)],
                            stdout=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=default_signals)
    try:
        assert proc.stdout.readline() == f"harbor {HARBOR[0]}\n"
        started = time.monotonic()
        assert_stops_with_its_readers(proc, signal.SIGTERM, 128 + signal.SIGTERM, log)
        assert 1 <= time.monotonic() - started < 5  # SIGKILL after STOP_SECONDS
    finally:
        end(proc, log)


@pytest.mark.parametrize("layout", ["shared", "per-site"])
def test_follow_on_a_remote_host_stops_the_hosts_reader_when_it_ends(tmp_path, layout):
    directory = tmp_path / "nginx"
    directory.mkdir()
    log = directory / ("access.log" if layout == "shared" else "harbor.access.log")
    log.write_text(f"harbor {HARBOR[0]}\n" if layout == "shared" else f"{HARBOR[0]}\n")
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "ssh").write_text(FAKE_SSH)
    (bin_ / "ssh").chmod(0o755)
    script = (
        "import sys\nfrom sitekit import logs\n"
        f"path, shell = logs.command({{'name': 'harbor', 'domains': ['harbor.localhost']}}, "
        f"{layout!r}, {str(directory)!r}, 10, True, False)\n"
        "source = logs.Source('web1', False, "
        f"{layout!r}, path, shell, {{'sitekit_mode': 'local'}}, True)\n"
        "try:\n    sys.exit(logs.run([source]))\n"
        "except logs.Stopped as exc:  # as sitekit logs ends\n    sys.exit(128 + exc.signum)\n")
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "python"), "-c", script],
                            stdout=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=default_signals,
                            env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"})
    try:
        assert proc.stdout.readline().endswith(f"{HARBOR[0]}\n")
        # the lines so far are printed before tail -F starts
        assert within(5, lambda: any(a.startswith("tail ") for a in readers_of(log)))
        # the host's reader ends with the connection
        assert_stops_with_its_readers(proc, signal.SIGTERM, 128 + signal.SIGTERM, log)
    finally:
        end(proc, log)


@pytest.mark.parametrize("layout", ["shared", "per-site"])
def test_following_a_log_that_does_not_exist_is_status_1(capfd, tmp_path,
                                                       layout):
    root = tmp_path / "stack"
    (root / "log" / "nginx").mkdir(parents=True)
    project = checkout(tmp_path, layout)
    code, out, err = run(capfd, "logs", "local", "harbor", "--root", str(root), "-f",
                         project=project)
    assert (code, out) == (1, "") and "cannot open" in err and ".log" in err


def test_a_remote_host_is_read_over_ssh_as_root():
    inv = inventory.find("production", REPO)
    found = logs.sources(inv, "harbor", lines=5)
    assert [s.host for s in found] == ["web1.prod.example.com", "web2.prod.example.com"]
    argv = logs.argv_of(found[0])
    assert argv[:4] == ["ssh", "-l", "root", "--"] and argv[4] == "web1.prod.example.com"
    remote = shlex.split(argv[5])
    assert remote[:4] == ["sudo", "-n", "sh", "-c"]
    # production's catalogue is small: per-site logs, in the packaged nginx's directory
    assert remote[4] == "tail -n 5 /var/log/nginx/harbor.access.log"
