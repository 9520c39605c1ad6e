"""`sitekit plan ENV`: how it runs ansible-playbook, what it prints, its exit status."""

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from sitekit import cli, plan
from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]

CHANGED = [
    plan.record(
        {"changed": True, "results": [{
            "changed": True,
            "diff": [{"before_header": "/srv/sitekit/etc/nginx/sites/harbor.conf",
                      "before": "server_name a;\n", "after": "server_name a b;\n",
                      "after_header": "/tmp/site.conf.j2"}],
        }]},
        host="web1", task="Render one server block per present site", role="nginx",
        notify=["Nginx configuration changed"],
    ),
    plan.record(
        {"changed": False, "skipped": True, "msg": plan.CHECK_MODE_SKIP,
         "invocation": {"module_args": {"argv": ["/usr/sbin/nginx", "-s", "reload"]}}},
        host="web1", task="Reload nginx", role="nginx", status="skipped", handler=True,
    ),
]
UNCHANGED = [plan.record({"changed": False, "msg": "ok"}, host="web1", task="Check", role=None)]


@pytest.fixture
def ansible(monkeypatch):
    """Replace the ansible-playbook run: record how it was called, answer with ``records``."""

    class Fake:
        def __init__(self):
            self.calls = []
            self.records = CHANGED
            self.returncode = 0
            self.output = ""

        def __call__(self, command, cwd, env, **kwargs):
            self.calls.append({"command": command, "cwd": cwd, "env": env})
            data = {"format": plan.FORMAT, "tasks": self.records, "stats": {"web1": {}}}
            Path(env["SITEKIT_PLAN_FILE"]).write_text(json.dumps(data))
            return subprocess.CompletedProcess(command, self.returncode, self.output, "")

    fake = Fake()
    monkeypatch.setattr(cli.subprocess, "run", fake)
    return fake


def test_help():
    proc = subprocess.run([str(REPO / ".venv/bin/sitekit"), "plan", "--help"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: sitekit plan [-h] [--project DIR] [--json] [--full] "
                                  "[--detailed-exitcode] ENV [ANSIBLE_ARGS ...]")
    text = " ".join(proc.stdout.split())
    assert "--check --diff" in text and "nothing to change" in text
    assert "--tags sites" in text and "--detailed-exitcode" in text


def test_runs_the_playbook_in_check_and_diff_mode_from_the_checkout(ansible, capsys):
    code = main(["plan", "local", "--project", str(REPO), "--tags", "sites", "-e",
                 "sitekit_root=/tmp/x", "--limit", "web1", "-v"])
    assert code == 0
    (call,) = ansible.calls
    assert call["command"][1:] == [
        "-i", "inventories/local", "ansible/site.yml", "--check", "--diff",
        "--tags", "sites", "-e", "sitekit_root=/tmp/x", "--limit", "web1", "-v",
    ]
    assert call["command"][0].endswith("ansible-playbook")
    assert Path(call["cwd"]) == REPO
    assert call["env"]["ANSIBLE_CONFIG"] == str(REPO / "ansible" / "ansible.cfg")
    assert call["env"]["ANSIBLE_STDOUT_CALLBACK"] == "sitekit.deploy.plan"
    assert not Path(call["env"]["SITEKIT_PLAN_FILE"]).exists()  # a temporary file, removed
    out, err = capsys.readouterr()
    assert err.startswith("sitekit plan local: ansible-playbook -i inventories/local "
                          "ansible/site.yml --check --diff --tags sites")
    assert out.splitlines()[0] == "web1:"
    assert "  nginx: reload (after testing the new configuration)" in out.splitlines()
    assert out.splitlines()[-1].startswith("plan: 1 host would change")


def test_project_option_before_the_command(ansible, tmp_path):
    root = tmp_path / "checkout"
    (root / "inventories" / "staging").mkdir(parents=True)
    (root / "settings").mkdir()
    (root / "ansible").mkdir()
    (root / "ansible" / "site.yml").write_text("---\n")
    assert main(["--project", str(root), "plan", "staging"]) == 0
    (call,) = ansible.calls
    assert Path(call["cwd"]) == root
    assert call["env"]["ANSIBLE_CONFIG"] == str(root / "ansible" / "ansible.cfg")
    assert call["command"][1:5] == ["-i", "inventories/staging", "ansible/site.yml", "--check"]


@pytest.mark.parametrize(
    ("records", "args", "code"),
    [
        (CHANGED, [], 0),
        (CHANGED, ["--detailed-exitcode"], 2),
        (UNCHANGED, ["--detailed-exitcode"], 0),
        (UNCHANGED, [], 0),
    ],
)
def test_exit_status(ansible, capsys, records, args, code):
    ansible.records = records
    assert main(["plan", "local", *args]) == code
    last = capsys.readouterr().out.splitlines()[-1]
    assert (last == "nothing to change") == (records is UNCHANGED)


def test_json(ansible, capsys):
    assert main(["plan", "local", "--json", "-e", "a=b"]) == 0
    assert ansible.calls[0]["command"][-2:] == ["-e", "a=b"]
    data = json.loads(capsys.readouterr().out)
    assert data["environment"] == "local" and data["changes"] is True
    assert data["hosts"]["web1"]["nginx_reload"] is True
    assert data["hosts"]["web1"]["files"][0]["path"] == "/srv/sitekit/etc/nginx/sites/harbor.conf"


def test_a_failed_playbook_exits_one_with_ansible_s_message(ansible, capsys):
    ansible.records = [plan.record({"msg": "Release abc could not be installed"}, host="web1",
                                   task="Stop the deploy", role="release", status="failed")]
    ansible.returncode = 2
    assert main(["plan", "local"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "web1: release : Stop the deploy:\n  Release abc could not be installed" in err


def test_other_commands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["check", "local", "--tags", "sites"])
    assert exited.value.code == 2
    assert "unrecognized arguments: --tags sites" in capsys.readouterr().err


def test_plan_needs_an_environment(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["plan"])
    assert exited.value.code == 2


# --- the real playbook, stopped by its preflight -------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    """A checkout whose only environment, ``bad``, runs on this machine (local connection)."""
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("ansible", "roles", "templates", "settings"):
        (root / name).symlink_to(REPO / name)
    env = root / "inventories" / "bad"
    (env / "group_vars" / "all").mkdir(parents=True)
    (env / "hosts.yml").write_text(textwrap.dedent("""\
        all:
          children:
            web:
              hosts:
                localhost:
                  ansible_connection: local
                  ansible_python_interpreter: "{{ ansible_playbook_python }}"
        """))
    (env / "group_vars" / "all" / "main.yml").write_text(
        f"sitekit_root: {tmp_path / 'host'}\nsitekit_secret_key_base: {'k' * 40}\n"
    )
    (env / "group_vars" / "all" / "sites.yml").write_text(textwrap.dedent("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.bad.test]
          - name: meadow
            domains: [harbor.bad.test]
        """))
    return root


def test_an_invalid_catalogue_stops_the_plan_before_any_host_is_touched(checkout, capsys):
    assert main(["--project", str(checkout), "plan", "bad"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "sitekit plan bad: the playbook failed" in err
    assert "localhost: sitekit : Validate the site catalogue:" in err
    assert ("  bad: site 'meadow': field 'domains[0]': 'harbor.bad.test' already belongs to "
            "site 'harbor'") in err
    assert not (checkout.parent / "host").exists()  # nothing ran on the host
    assert "Gathering Facts" not in err


def test_the_plan_as_a_real_command_exits_one_on_an_invalid_catalogue(checkout):
    proc = subprocess.run(
        [str(REPO / ".venv/bin/sitekit"), "plan", "bad", "--json"],
        cwd=checkout / "inventories", capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_CONFIG="/nonexistent"),
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    assert "field 'domains[0]'" in proc.stderr
