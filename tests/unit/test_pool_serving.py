"""sitekit.deploy.pool_serving, run by ansible-playbook on localhost: what each pool's master
serves now, every pool in one call, from its sites file or an earlier release's env file line,
never the env file's other lines."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")
SECRET = "k" * 64


def test_every_pool_in_one_call_from_its_sites_file_or_its_env_files_line(tmp_path):
    (tmp_path / "a.sites.json").write_text(json.dumps([{"name": "harbor"}, {"name": "meadow"}]))
    (tmp_path / "b.env").write_text(
        f"SITEKIT_SECRET_KEY={SECRET}\nSITEKIT_POOL_SITES=" + json.dumps([{"name": "ember"}])
        + "\nDJANGO_SETTINGS_MODULE=settings.pool\n")
    pools = [
        {"name": "a", "kind": "pool", "sites_file": str(tmp_path / "a.sites.json"),
         "env_file": str(tmp_path / "a.env")},
        {"name": "b", "kind": "pool", "sites_file": str(tmp_path / "b.sites.json"),
         "env_file": str(tmp_path / "b.env")},
        {"name": "c", "kind": "pool", "sites_file": str(tmp_path / "c.sites.json"),
         "env_file": str(tmp_path / "c.env")},
    ]
    play = [{"name": "pools", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "Read", "sitekit.deploy.pool_serving": {"pools": pools}, "register": "serving"},
        {"name": "Show", "ansible.builtin.debug": {
            "msg": "SERVING={{ serving.results | to_json | b64encode }} "
                   "KEEPS={{ serving.results | sitekit.deploy.pool_keeps(['ember', 'meadow'])"
                   " | to_json | b64encode }}"}},
    ]}]
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    for extra in ([], ["--check"]):
        run = subprocess.run(
            [str(PLAYBOOK_BIN), "-i", "localhost,", "-c", "local", str(book), "-e",
             f"ansible_python_interpreter={sys.executable}", "-v", *extra],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stdout[-3000:]
        assert SECRET not in run.stdout
        results = json.loads(base64.b64decode(_marker(run.stdout, "SERVING=")))
        read = {r["site"]["name"]: base64.b64decode(r["content"]).decode()
                for r in results if "content" in r}
        assert [r["site"]["name"] for r in results] == ["a", "b", "c"]
        assert json.loads(read["a"]) == [{"name": "harbor"}, {"name": "meadow"}]
        assert read["b"] == "SITEKIT_POOL_SITES=" + json.dumps([{"name": "ember"}])
        assert "c" not in read  # a new pool: nothing to read
        # still present, no longer the pool's own (its master's "sites" are not given here)
        assert json.loads(base64.b64decode(_marker(run.stdout, "KEEPS="))) == {
            "a": ["meadow"], "b": ["ember"]}


def _marker(output: str, marker: str) -> str:
    line = next(x for x in output.splitlines() if marker in x)
    return line.split(marker, 1)[1].split()[0].strip("'\"")
