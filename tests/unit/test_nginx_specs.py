"""The nginx role's file specs (roles/nginx/vars/main.yml) as Ansible resolves them: each of
nginx's directories is one entry of the host, made once, never once per site."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

PLAYBOOK = """\
- hosts: localhost
  connection: local
  gather_facts: false
  vars_files:
    - {repo}/roles/nginx/vars/main.yml
  tasks:
    - ansible.builtin.debug:
        msg: "SPECS={{{{ nginx_dir_specs | to_json }}}}"
"""


@pytest.mark.parametrize(("mode", "tls", "expected"), [
    ("local", True, ["sites", "stage", "stage_sites", "logs", "temp", "acme"]),
    ("local", False, ["sites", "stage", "stage_sites", "logs", "temp"]),
    ("system", True, ["sites", "stage", "stage_sites", "acme"]),
])
def test_every_directory_of_nginx_is_one_entry_of_the_host(tmp_path, mode, tls, expected):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(repo=REPO))
    tls_sites = [{"name": f"s{i}", "domains": [f"s{i}.example"], "mode": "self-signed"}
                 for i in range(3)]
    variables = {"sitekit_mode": mode, "nginx_tls": True,
                 "sitekit_tls_sites": tls_sites if tls else []}
    run = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
         "-e", json.dumps(variables), "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, timeout=120, check=False,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default",
                 ANSIBLE_CALLBACK_RESULT_FORMAT="json"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    line = next(x for x in run.stdout.splitlines() if "SPECS=" in x)
    specs = json.loads(json.loads("{" + line.strip().rstrip(",") + "}")["msg"][len("SPECS="):])
    assert [s["name"] for s in specs] == expected
    # rendered for the host alone: with no sites of its own, a spec is made once per site
    assert all(s["sites"] == [{"name": "nginx"}] for s in specs), specs
