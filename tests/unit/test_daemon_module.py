"""The sitekit.deploy.daemon module, run by ansible-playbook against a real process: it says
whether the process of a pid file runs, raises its open-files limit to what is wanted (and only
then), and changes nothing in check mode or when the limit would be below what is needed."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")


def _limits(pid: int) -> tuple[int, int]:
    return resource.prlimit(pid, resource.RLIMIT_NOFILE)


@pytest.fixture
def daemon(tmp_path):
    """A `sleep` with a soft limit of 256 open files, and its pid file."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    proc = subprocess.Popen(
        ["sleep", "300"],
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)),
    )
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(f"{proc.pid}\n")
    yield proc, pidfile
    proc.kill()
    proc.wait()


def _run(tmp: Path, *extra: str, **args) -> dict:
    play = [{"name": "open files", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Read and raise", "sitekit.deploy.daemon": args, "register": "limits"},
        {"name": "Show", "ansible.builtin.debug": {"msg": "RESULT={{ limits | to_json }}"}},
    ]}]
    playbook = tmp / "play.yml"
    playbook.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json")
    done = subprocess.run(
        [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    tasks = json.loads(done.stdout)["plays"][0]["tasks"]
    return tasks[0]["hosts"]["localhost"]


def test_a_running_daemon_is_raised_to_what_is_wanted_once(tmp_path, daemon):
    proc, pidfile = daemon
    hard = _limits(proc.pid)[1]
    want = min(4096, hard)
    first = _run(tmp_path, pidfile=str(pidfile), name="sleep", want=want, need=512)
    assert first["running"] and first["pid"] == proc.pid
    assert (first["soft"], first["limit"], first["changed"]) == (256, want, True)
    assert _limits(proc.pid) == (want, hard)
    again = _run(tmp_path, pidfile=str(pidfile), name="sleep", want=want, need=512)
    assert again["changed"] is False and again["soft"] == want


def test_check_mode_and_a_limit_below_the_need_raise_nothing(tmp_path, daemon):
    proc, pidfile = daemon
    planned = _run(tmp_path, "--check", pidfile=str(pidfile), name="sleep", want=1024)
    assert planned["changed"] is True
    assert _limits(proc.pid)[0] == 256
    short = _run(tmp_path, pidfile=str(pidfile), name="sleep", want=300, need=1000)
    assert short["changed"] is False
    assert _limits(proc.pid)[0] == 256


def test_the_cap_is_the_user_s_hard_limit(tmp_path, daemon):
    proc, pidfile = daemon
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    capped = _run(tmp_path, pidfile=str(pidfile), name="sleep", want=hard + 1000, cap=True)
    assert capped["limit"] == hard == capped["user_hard"]
    assert _limits(proc.pid)[0] == hard


def test_a_stale_pid_file_or_another_process_is_not_running(tmp_path, daemon):
    _, pidfile = daemon
    assert _run(tmp_path, pidfile=str(pidfile), name="nginx")["running"] is False
    assert _run(tmp_path, pidfile=str(tmp_path / "none.pid"), name="sleep")["running"] is False
    pidfile.write_text("not a pid\n")
    assert _run(tmp_path, pidfile=str(pidfile), name="sleep")["running"] is False
