"""`sitekit manage`: its arguments, where a site's command runs and the ssh command line built."""

import dataclasses
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from sitekit import inventory, manage
from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cret-Editor-pw"


def run(capsys, *argv):
    code = main(["--project", str(REPO), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", [
    (["manage", "nowhere", "harbor", "--", "check"], "no environment 'nowhere'"),
    (["manage", "local", "nosuch", "--", "check"], "local: no site 'nosuch' in the catalogue"),
    (["manage", "local", "harbor", "--host", "web9", "--", "check"],
     "local: no web host 'web9' (web hosts: localhost)"),
    (["manage", "production", "harbor", "--host", "web3.prod.example.com", "--", "check"],
     "no web host 'web3.prod.example.com'"),
    (["manage", "local", "harbor"], "no command: give it after '--'"),
    (["manage", "local", "harbor", "check"], "no command: give it after '--'"),
    (["manage", "local", "harbor", "--"], "no command after '--'"),
    (["manage", "local", "--", "harbor", "check"], "ENV and SITE come before '--'"),
    (["manage", "local", "harbor", "--bogus", "--", "check"], "unrecognized arguments: --bogus"),
    (["manage", "local", "harbor", "--env", "SITEKIT_TEST_UNSET_VARIABLE", "--", "check"],
     "--env SITEKIT_TEST_UNSET_VARIABLE: SITEKIT_TEST_UNSET_VARIABLE is not set"),
    (["manage", "local", "harbor", "--env", "NOT-A-NAME", "--", "check"], "not a variable name"),
    (["manage", "rehearsal", "harbor", "-i", "/nonexistent/hosts.yml", "--", "check"],
     "-i /nonexistent/hosts.yml: no such file (give an inventory file in YAML"),
    (["manage", "rehearsal", "harbor", "-i", "inventories/rehearsal", "--", "check"],
     "-i inventories/rehearsal: a directory (give an inventory file in YAML"),
])
def test_usage_errors_are_one_line_and_exit_2(capsys, monkeypatch, argv, message):
    monkeypatch.delenv("SITEKIT_TEST_UNSET_VARIABLE", raising=False)
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("sitekit manage: "), err
    assert message in err
    assert "Traceback" not in err


def test_an_absent_site_runs_nowhere(capsys, tmp_path):
    project = tmp_path / "checkout"
    (project / "inventories").mkdir(parents=True)
    shutil.copytree(REPO / "inventories" / "local", project / "inventories" / "local")
    (project / "settings").symlink_to(REPO / "settings")
    (project / "project").symlink_to(REPO / "project")
    catalogue = project / "inventories" / "local" / "group_vars" / "all" / "sites.yml"
    catalogue.write_text(catalogue.read_text().replace(
        "  - name: ember\n", "  - name: ember\n    state: absent\n"))
    code = main(["--project", str(project), "manage", "local", "ember", "--", "check"])
    err = capsys.readouterr().err
    assert code == 2
    assert "site 'ember' is absent" in err


def test_a_value_with_a_line_break_is_refused_unshown(capsys, monkeypatch):
    monkeypatch.setenv("SITEKIT_USER_PASSWORD", f"{SECRET}\nEVIL=1")
    code, out, err = run(capsys, "manage", "production", "harbor", "--env",
                         "SITEKIT_USER_PASSWORD", "--", "site_editors", "list", "harbor")
    assert code == 2
    assert "SITEKIT_USER_PASSWORD" in err and "line break" in err
    assert SECRET not in out + err


def test_a_local_site_runs_here_in_its_settings_with_its_masters_env_file():
    t = manage.target(inventory.find("local", REPO), "harbor", root="/tmp/stack")
    assert t.local and t.user == ""
    argv, env, cwd = manage.local_command(
        t, ["createsuperuser"], {"SITEKIT_USER_PASSWORD": SECRET},
        {"PATH": "/usr/bin", "TERM": "xterm", "SITEKIT_DEBUG": "1",
         "DJANGO_SETTINGS_MODULE": "settings.dev", "SITEKIT_USER_PASSWORD": "other"})
    assert argv == ["/tmp/stack/current/venv/bin/python", "manage.py", "createsuperuser"]
    assert cwd == "/tmp/stack/current"
    # the caller's SITEKIT_* never override the env file; --env ones do pass
    assert env == {"PATH": "/usr/bin", "TERM": "xterm", "SITEKIT_USER_PASSWORD": SECRET,
                   "DJANGO_SETTINGS_MODULE": "settings.harbor",
                   "SITEKIT_ENV_FILE": "/tmp/stack/etc/sites/harbor.env"}


def test_the_local_inventorys_own_root_is_the_checkouts_stack():
    t = manage.target(inventory.find("local", REPO), "meadow")
    assert t.current == f"{REPO}/.stack/current"
    assert t.env_file == f"{REPO}/.stack/etc/sites/meadow.env"


def test_remote_command_for_a_system_mode_inventory(monkeypatch):
    t = manage.target(inventory.find("production", REPO), "harbor", "web2.prod.example.com")
    assert not t.local
    argv = manage.remote_command(t, ["createsuperuser", "--username", "o'brien"], [], tty=True)
    assert argv == [
        "ssh", "-l", "root", "-t", "--", "web2.prod.example.com",
        "cd -P /srv/sitekit/current && exec sudo -u sk-harbor -- env "
        "DJANGO_SETTINGS_MODULE=settings.harbor SITEKIT_ENV_FILE=/etc/sitekit/sites/harbor.env "
        "venv/bin/python manage.py createsuperuser --username 'o'\"'\"'brien'",
    ]
    # what the remote shell runs: exactly the command, its arguments as given
    remote = shlex.split(argv[-1])
    assert remote[-4:] == ["manage.py", "createsuperuser", "--username", "o'brien"]
    # without a terminal, no -t
    assert "-t" not in manage.remote_command(t, ["check"], [], tty=False)


def test_remote_command_with_env_sends_values_on_input_never_in_argv(monkeypatch, capsys):
    monkeypatch.setenv("SITEKIT_USER_PASSWORD", SECRET)
    t = manage.target(inventory.find("production", REPO), "harbor")
    assert t.host == "web1.prod.example.com"  # the first web host
    command = ["site_editors", "grant", "ed", "harbor", "--create"]
    argv = manage.remote_command(t, command, ["SITEKIT_USER_PASSWORD"], tty=True)
    assert "-t" not in argv  # the values come on ssh's input, not a terminal
    assert all(SECRET not in arg for arg in argv)
    assert argv[:5] == ["ssh", "-l", "root", "--", "web1.prod.example.com"]
    outer = shlex.split(argv[-1])
    assert outer[:9] == ["cd", "-P", "/srv/sitekit/current", "&&", "exec", "sudo", "-u",
                         "sk-harbor", "--"]
    assert outer[9:11] == ["sh", "-c"]
    assert outer[11] == (
        "IFS= read -r SITEKIT_USER_PASSWORD && export SITEKIT_USER_PASSWORD && exec env "
        "DJANGO_SETTINGS_MODULE=settings.harbor SITEKIT_ENV_FILE=/etc/sitekit/sites/harbor.env "
        "venv/bin/python manage.py site_editors grant ed harbor --create")


def test_a_pooled_site_runs_its_own_settings_with_its_pools_env_file_and_user():
    t = manage.target(inventory.find("rehearsal", REPO), "meadow")
    assert (t.settings_module, t.master, t.user, t.env_file) == (
        "settings.meadow", "quiet", "sk-quiet", "/etc/sitekit/sites/quiet.env")
    argv = manage.remote_command(t, ["site_editors", "list", "meadow"], [], tty=False)
    assert argv[:3] == ["ssh", "--", "10.231.7.11"]
    assert "sudo -u sk-quiet -- env DJANGO_SETTINGS_MODULE=settings.meadow " \
           "SITEKIT_ENV_FILE=/etc/sitekit/sites/quiet.env" in argv[-1]


def test_ssh_connection_variables_of_the_inventory_are_used():
    t = manage.target(inventory.find("vagrant", REPO), "harbor", "web2")
    argv = manage.remote_command(t, ["check"], [], tty=False)
    key = "~/.vagrant.d/insecure_private_key"  # every provider's machines: the Vagrantfile
    assert argv[:10] == ["ssh", "-l", "vagrant", "-i", key, "-o", "StrictHostKeyChecking=no",
                         "-o", "UserKnownHostsFile=/dev/null", "--"]
    assert argv[10] == "192.168.56.12"


def test_a_further_inventory_file_adds_its_variables_as_a_second_i_does(tmp_path):
    """The connection variables of hosts kept outside the checkout (the rehearsal's testbed
    writes them so): each host's own, wherever the file lists it, over the checkout's."""
    key = tmp_path / "id_ed25519"
    connection = tmp_path / "connection.yml"
    connection.write_text(
        "all:\n  vars:\n    ansible_ssh_common_args: -o IdentitiesOnly=yes\n  hosts:\n"
        f"    web1:\n      ansible_user: root\n      ansible_ssh_private_key_file: {key}\n"
        "    web2:\n      ansible_host: 10.231.7.99\n      ansible_user: root\n"
        f"      ansible_ssh_private_key_file: {key}\n"
        "  children:\n    lb:\n      hosts:\n        lb: {ansible_user: admin}\n")
    later = tmp_path / "later.yml"
    later.write_text("all:\n  children:\n    web:\n      hosts:\n"
                     "        web2: {ansible_port: 2202}\n        web3: {}\n")
    inv = inventory.find("rehearsal", REPO)
    assert manage.remote_command(manage.target(inv, "harbor", "web2"), ["check"], [],
                                 tty=False)[:3] == ["ssh", "--", "10.231.7.12"]
    t = manage.target(inv, "harbor", "web2", extra=[connection, later])
    assert manage.remote_command(t, ["check"], [], tty=False)[:10] == [
        "ssh", "-p", "2202", "-l", "root", "-i", str(key), "-o", "IdentitiesOnly=yes", "--"]
    assert manage.remote_command(t, ["check"], [], tty=False)[10] == "10.231.7.99"
    # the checkout's address stays where the file gives none; a web host it adds is one
    first = manage.target(inv, "harbor", extra=[connection, later])
    assert first.host == "web1"
    assert manage.remote_command(first, ["check"], [], tty=False)[-2] == "10.231.7.11"
    assert list(manage.web_hosts(inv, extra=[connection, later])) == ["web1", "web2", "web3"]


def test_the_commands_own_i_is_the_commands(tmp_path):
    from sitekit.cli import parser

    argv = ["manage", "rehearsal", "harbor", "-i", str(tmp_path / "c.yml"), "--", "shell", "-i",
            "python"]
    args, unknown = parser().parse_known_args(argv)
    args.ansible_args, args.command_line = unknown, shlex.join(["sitekit", *argv])
    assert args.inventories == [str(tmp_path / "c.yml")]
    assert manage.split_command(args) == ["shell", "-i", "python"]


def test_port_and_extra_args(tmp_path):
    inv_dir = tmp_path / "inventories" / "box"
    shutil.copytree(REPO / "inventories" / "production", inv_dir)
    (inv_dir / "hosts.yml").write_text(
        "all:\n  children:\n    web:\n      hosts:\n        w1:\n"
        "          ansible_host: 192.0.2.5\n          ansible_port: 2222\n"
        "          ansible_user: deploy\n          ansible_ssh_extra_args: -o ConnectTimeout=5\n")
    inv = inventory.Inventory("box", inv_dir, REPO)
    argv = manage.remote_command(manage.target(inv, "ember"), ["check"], [], tty=False)
    assert argv[:9] == ["ssh", "-p", "2222", "-l", "deploy", "-o", "ConnectTimeout=5", "--",
                        "192.0.2.5"]


def test_help_is_concrete(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["manage", "--help"])
    assert exc.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "sitekit manage local harbor -- createsuperuser" in text
    assert "--env SITEKIT_USER_PASSWORD -- \\ site_editors grant ed harbor --create" in text
    assert "sudo -u" in text
    assert "sitekit manage production harbor -i ~/ssh-hosts.yml -- site_editors list harbor" in text


def test_the_remote_shell_reads_the_values_then_gives_the_command_the_rest_of_its_input(
        tmp_path):
    """The remote half run by sh here (no ssh, no sudo): a stand-in python prints what it got."""
    release = tmp_path / "current"
    (release / "venv" / "bin").mkdir(parents=True)
    python = release / "venv" / "bin" / "python"
    python.write_text('#!/bin/sh\necho "[$SITEKIT_USER_PASSWORD] [$OTHER] $DJANGO_SETTINGS_MODULE '
                      '$SITEKIT_ENV_FILE $*"\ncat\n')
    python.chmod(0o755)
    t = manage.target(inventory.find("production", REPO), "harbor")
    t = dataclasses.replace(t, current=str(release), user="")
    argv = manage.remote_command(t, ["site_editors", "grant", "o'brien", "harbor"],
                                 ["SITEKIT_USER_PASSWORD", "OTHER"], tty=False)
    proc = subprocess.run(["sh", "-c", argv[-1]], input=f" {SECRET} $x'\"\nsecond\nrest of input\n",
                          capture_output=True, text=True, check=True, timeout=30)
    assert proc.stdout.splitlines() == [
        f"[ {SECRET} $x'\"] [second] settings.harbor /etc/sitekit/sites/harbor.env "
        "manage.py site_editors grant o'brien harbor",
        "rest of input",
    ]


def test_variables_the_shell_sudo_or_python_read_are_not_passed():
    environ = {"PATH": "/tmp/evil", "IFS": ":", "LD_PRELOAD": "x.so", "PYTHONPATH": "/tmp",
               "SITEKIT_USER_PASSWORD": "s3cret"}
    for name in ("PATH", "IFS", "LD_PRELOAD", "PYTHONPATH"):
        with pytest.raises(manage.ManageError, match=f"--env {name}: the shell, sudo or Python"):
            manage.passed_values([name], environ)
    assert manage.passed_values(["SITEKIT_USER_PASSWORD"], environ) == {
        "SITEKIT_USER_PASSWORD": "s3cret"}
