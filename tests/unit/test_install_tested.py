"""The sitekit.deploy.install_tested module: staged files go live only once their test passes.

Each test runs a small real playbook against localhost (no mocks of Ansible). The "test" is a
shell command that accepts a staged main file unless it contains the word "broken", the way
nginx -t accepts or rejects a staged nginx.conf.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")


def _play(tmp: Path) -> Path:
    stage, live = tmp / "stage", tmp / "live"
    play = [
        {
            "name": "install tested",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Install the staged files once they pass the test",
                    "sitekit.deploy.install_tested": {
                        "files": [
                            {"src": str(stage / "main.conf"), "dest": str(live / "main.conf")}
                        ],
                        "dirs": [
                            {
                                "src": str(stage / "sites"),
                                "dest": str(live / "sites"),
                                "patterns": ["*.conf"],
                            }
                        ],
                        "test": ["sh", "-c", f"echo testing >&2; ! grep -r broken {stage}"],
                    },
                    "register": "installed",
                },
                {"name": "Show", "ansible.builtin.debug": {"var": "installed"}},
            ],
        }
    ]
    path = tmp / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _run(playbook: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1"
    )
    return subprocess.run(
        [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}", *extra],
        cwd=playbook.parent, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def _recap(output: str) -> dict[str, int]:
    line = next(x for x in output.splitlines() if x.startswith("localhost") and "ok=" in x)
    return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}


def _stage(tmp: Path, files: dict[str, str]) -> None:
    stage = tmp / "stage"
    (stage / "sites").mkdir(parents=True, exist_ok=True)
    for old in (stage / "sites").iterdir():
        old.unlink()
    for name, text in files.items():
        (stage / name).write_text(text)
        (stage / name).chmod(0o644)


def _live(tmp: Path) -> dict[str, str]:
    live = tmp / "live"
    return {str(p.relative_to(live)): p.read_text() for p in sorted(live.rglob("*")) if p.is_file()}


GOOD = {"main.conf": "main v1\n", "sites/a.conf": "a v1\n", "sites/b.conf": "b v1\n"}


def _deployed(tmp: Path) -> Path:
    (tmp / "live" / "sites").mkdir(parents=True)
    (tmp / "live" / "sites" / "README").write_text("not managed\n")
    _stage(tmp, GOOD)
    playbook = _play(tmp)
    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    return playbook


def test_installs_what_passed_then_changes_nothing(tmp_path):
    playbook = _deployed(tmp_path)
    assert _live(tmp_path) == {**GOOD, "sites/README": "not managed\n"}
    again = _run(playbook)
    assert again.returncode == 0
    assert _recap(again.stdout)["changed"] == 0
    assert "testing" not in again.stdout  # nothing differs: the test does not even run


def test_changes_and_removals_are_installed_after_the_test(tmp_path):
    playbook = _deployed(tmp_path)
    _stage(tmp_path, {"main.conf": "main v2\n", "sites/a.conf": "a v1\n", "sites/c.conf": "c\n"})
    untouched = (tmp_path / "live" / "sites" / "a.conf").stat().st_ino
    run = _run(playbook)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "testing" in run.stdout
    assert _live(tmp_path) == {
        "main.conf": "main v2\n",
        "sites/a.conf": "a v1\n",
        "sites/c.conf": "c\n",
        "sites/README": "not managed\n",  # does not match the patterns: left alone
    }
    assert (tmp_path / "live" / "sites" / "a.conf").stat().st_ino == untouched
    assert f"{tmp_path}/live/sites/b.conf" in run.stdout  # reported as removed


def test_a_staged_set_that_fails_its_test_installs_nothing(tmp_path):
    playbook = _deployed(tmp_path)
    before = _live(tmp_path)
    _stage(tmp_path, {"main.conf": "main v2\n", "sites/a.conf": "a broken\n"})
    run = _run(playbook)
    assert run.returncode != 0
    assert "the new configuration failed its test" in run.stdout
    assert "nothing was installed, the running configuration is unchanged" in run.stdout
    assert "testing" in run.stdout  # the test's own output is shown
    assert _live(tmp_path) == before  # not even the valid main.conf, nor b.conf's removal

    _stage(tmp_path, GOOD)  # fixed: the next run has nothing to install
    fixed = _run(playbook)
    assert fixed.returncode == 0
    assert _recap(fixed.stdout)["changed"] == 0


def test_check_mode_reports_without_testing_or_writing(tmp_path):
    playbook = _deployed(tmp_path)
    before = _live(tmp_path)
    _stage(tmp_path, {"main.conf": "main v2\n", "sites/a.conf": "a broken\n"})
    planned = _run(playbook, "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert _recap(planned.stdout)["changed"] == 1
    assert "testing" not in planned.stdout
    assert _live(tmp_path) == before
