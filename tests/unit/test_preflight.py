"""The playbook's preflight (``sitekit.deploy.catalogue``) checks a catalogue against the
environments next to it (a domain belongs to one environment only) and the environment's own
settings (its TLS choice, the values every env file holds).

Each test runs ansible-playbook against a throwaway ``inventories/`` directory whose hosts are
this machine (local connection); nothing is deployed.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sitekit.inventory import CATALOGUE_FILE

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Only the preflight's first task: the catalogue check, as site.yml runs it (the action reads
# the catalogue file: Ansible does not load it, ansible/ansible.cfg).
PREFLIGHT = """\
- name: Preflight
  hosts: all
  gather_facts: false
  tasks:
    - name: Validate the site catalogue
      sitekit.deploy.catalogue:
        environment: "{{ sitekit_env | default(inventory_dir | basename) }}"
        project_root: "REPO"
      register: checked
    - name: Show the sites
      ansible.builtin.debug:
        msg: >-
          sites: {{ checked.model | sitekit.deploy.published('sitekit_catalogue')
                    | map(attribute='name') | join(',') }}
""".replace("REPO", str(REPO))

HOSTS = """\
all:
  children:
    web:
      hosts:
        localhost:
          ansible_connection: local
          ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


@pytest.fixture
def inventories(tmp_path):
    """``inventories/`` with the real production catalogue and an environment ``mine``."""
    base = tmp_path / "inventories"
    production = base / "production" / "group_vars" / "all"
    production.mkdir(parents=True)
    shutil.copy2(REPO / "inventories/production/group_vars/all/sites.yml", production)
    # the vault of production cannot be opened here: only its plaintext catalogue is read
    (production / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162630a\n")

    def make(sites_yaml, name="mine"):
        env = base / name
        (env / "group_vars" / "all").mkdir(parents=True)
        (env / "hosts.yml").write_text(HOSTS)
        (env / "group_vars" / "all" / "sites.yml").write_text(textwrap.dedent(sites_yaml))
        (env / "group_vars" / "all" / "main.yml").write_text(
            f"sitekit_env: {name}\nsitekit_secret_key_base: {'k' * 40}\n"
        )
        return env

    make.base = base
    return make


def playbook(inventory, playbook_path, *extra, config=True, cwd=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    if not config:
        del env["ANSIBLE_CONFIG"]
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), str(playbook_path), *extra],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=cwd,
    )
    return proc.returncode, proc.stdout + proc.stderr


def preflight(inventory, tmp_path, *extra):
    """The preflight's task alone (PREFLIGHT) on *inventory*."""
    book = tmp_path / "preflight.yml"
    book.write_text(PREFLIGHT)
    return playbook(inventory, book, *extra)


def test_site_yml_stops_on_a_domain_of_another_environment(inventories, tmp_path):
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test, www.harbor.example.com]
        """)
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}")
    assert code != 0
    assert (
        "mine: site 'harbor': field 'domains': 'www.harbor.example.com' is already configured "
        "in environment 'production' (site 'harbor'); a domain belongs to one environment only"
    ) in output
    assert "nothing was changed on any host" in output
    assert "PLAY [The release and the masters" not in output  # no later play started
    assert not root.exists()
    assert "ansible.cfg is not in use" not in output


def test_site_yml_runs_without_its_configuration_and_says_what_that_costs(inventories, tmp_path):
    # as an operator runs it from the checkout without ANSIBLE_CONFIG (no ./ansible.cfg there)
    mine = inventories("sitekit_sites:\n  - name: harbor\n    domains: [harbor.mine.test]\n")
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}",
                            "--check", "--tags", "never", config=False, cwd=tmp_path)
    assert code == 0, output
    said = " ".join(output.split())
    assert ("[WARNING]: ansible/ansible.cfg is not in use (ansible-playbook reads ./ansible.cfg "
            "or ANSIBLE_CONFIG: export ANSIBLE_CONFIG=ansible/ansible.cfg") in said
    assert not root.exists()


def test_preflight_accepts_an_environment_with_its_own_domains(inventories, tmp_path):
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test, www.harbor.mine.test]
          - name: meadow
            domains: [meadow.mine.test]
        """)
    # neighbours whose catalogues cannot be read do not stop the check: it names them
    for name, text in UNREADABLE.items():
        inventories(text, name=name)
    code, output = preflight(mine, tmp_path)
    assert code == 0, output
    assert "sites: harbor,meadow" in output
    assert "Traceback" not in output
    for name in UNREADABLE:
        assert (
            f"[WARNING]: mine: domains not checked against environment '{name}': its catalogue "
            f"cannot be read (`sitekit check {name}` says why)"
        ) in output


# neighbours' catalogues that cannot be read: each used to end the preflight in a traceback
# (but the first)
UNREADABLE = {
    "syntax": "sitekit_sites: [\n",
    "date": "sitekit_sites:\n  - name: 2024-02-30\n",
    "tagged": "sitekit_sites:\n  - name: a\n    workers: !!int abc\n",
    "digits": "sitekit_sites:\n  - name: a\n    workers: 1" + "0" * 5000 + "\n",
    "deep": "sitekit_sites: " + "[" * 5000 + "]" * 5000 + "\n",
    "twice": "sitekit_sites:\n  - name: a\n    name: b\n",
}


def test_preflight_refuses_a_catalogue_with_a_key_given_twice(inventories, tmp_path):
    # Ansible warns and keeps the last; the preflight reads the file as `sitekit check` does
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test]
            domains: [www.harbor.mine.test]
        """)
    code, output = preflight(mine, tmp_path)
    assert code != 0
    assert (
        "mine: site 'harbor': field 'domains': 'domains' is given twice in one mapping (lines 3 "
        "and 4); a YAML reader keeps one of them silently: remove the other (line 4 of "
        "inventories/mine/group_vars/all/sites.yml)"
    ) in output
    assert "sites: harbor" not in output


def test_site_yml_stops_at_the_preflight_on_a_value_yaml_cannot_construct(inventories, tmp_path):
    # the preflight's reader (Ansible does not load the file) names the site, the field and
    # the line; nothing after it runs, and no traceback is shown
    mine = inventories("""\
        sitekit_sites:
          - name: 2024-02-30
            domains: [harbor.mine.test]
        """)
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}")
    assert code != 0
    assert (
        "mine: site '#1': field 'name': '2024-02-30' reads as a date in YAML but is not one (day "
        "is out of range for month); quote it if it is meant as text (line 2 of "
        "inventories/mine/group_vars/all/sites.yml)") in output
    assert "nothing was changed on any host" in output
    assert "Traceback" not in output
    assert "PLAY [The release and the masters" not in output  # no later play started
    assert not root.exists()


def test_a_catalogue_given_to_the_host_is_used_instead_of_the_file(inventories, tmp_path):
    # host_vars or -e win over the catalogue file, as they would over any group_vars/all
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test]
        """)
    given = json.dumps({"sitekit_sites": [{"name": "meadow", "domains": ["meadow.mine.test"]}]})
    code, output = preflight(mine, tmp_path, "-e", given)
    assert code == 0, output
    assert "sites: meadow" in output
    code, output = preflight(mine, tmp_path)
    assert code == 0, output
    assert "sites: harbor" in output


def test_site_yml_stops_when_it_finds_no_catalogue_at_all(inventories, tmp_path):
    # no catalogue is not an empty one: deploying no site would take every site down
    mine = inventories("sitekit_sites: []\n")
    (mine / CATALOGUE_FILE).unlink()
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}")
    assert code != 0
    assert (f"mine: no site catalogue: no file {mine / CATALOGUE_FILE}, and no variable "
            "sitekit_sites for this host") in output
    assert "nothing was changed on any host" in output and "Traceback" not in output
    assert "PLAY [The release and the masters" not in output
    assert not root.exists()
    # an empty catalogue is a catalogue, and so is one given to the host
    code, output = preflight(mine, tmp_path, "-e", '{"sitekit_sites": []}')
    assert code == 0, output
    assert "msg: 'sites: '" in output


def test_a_date_or_a_template_in_the_catalogue_file_reaches_the_validator(inventories, tmp_path):
    # the file's values go through templating as a vars file's would: a {{ }} is rendered, and
    # a date (a valid one: the reader keeps it) gets the validator's message, not a failure of
    # the task itself
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: ["{{ 'harbor' }}.mine.test"]
        """)
    code, output = preflight(mine, tmp_path)
    assert code == 0, output
    assert "sites: harbor" in output
    dated = inventories("""\
        sitekit_sites:
          - name: 2024-02-03
            domains: [dated.mine.test]
        """, name="dated")
    code, output = preflight(dated, tmp_path)
    assert code != 0
    assert "dated: site '#1': field 'name'" in output, output
    assert "nothing was changed on any host" in output
    assert "Unexpected failure" not in output and "Traceback" not in output


def test_ansible_loads_every_inventory_variable_but_the_catalogue(inventories, tmp_path):
    # ansible/ansible.cfg's vars plugin: group_vars/all/main.yml and host_vars load as before;
    # the catalogue file is the preflight's to read (at 10,000 sites Ansible's loader took 3.5 s)
    mine = inventories("sitekit_sites:\n  - name: harbor\n    domains: [harbor.mine.test]\n")
    (mine / "host_vars").mkdir()
    (mine / "host_vars" / "localhost.yml").write_text("from_host_vars: yes-host\n")
    book = tmp_path / "show.yml"
    book.write_text(textwrap.dedent("""\
        - name: Show
          hosts: all
          gather_facts: false
          tasks:
            - name: Show the variables
              ansible.builtin.debug:
                msg: "VARS {{ sitekit_env }} {{ from_host_vars }} {{ sitekit_sites is defined }}"
        """))
    code, output = playbook(mine, book)
    assert code == 0, output
    assert "VARS mine yes-host False" in output
    spec = importlib.util.spec_from_file_location(
        "sitekit_group_vars", REPO / "ansible" / "vars_plugins" / "sitekit_group_vars.py")
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    assert plugin.is_catalogue(mine.resolve() / CATALOGUE_FILE)
    assert not plugin.is_catalogue(mine.resolve() / "group_vars" / "all" / "main.yml")


def test_preflight_names_the_neighbour_that_has_the_domain(inventories, tmp_path):
    mine = inventories("""\
        sitekit_sites:
          - name: ember
            domains: [ember.example.net]
        """)
    code, output = preflight(mine, tmp_path)
    assert code != 0
    assert (
        "mine: site 'ember': field 'domains': 'ember.example.net' is already configured in "
        "environment 'production' (site 'ember')"
    ) in output


@pytest.mark.parametrize(
    ("sites_yaml", "extra", "message"),
    [
        ("""\
            sitekit_sites:
              - name: harbor
                domains: [harbor.mine.test]
                tls: provided
            """, [],
         "mine: site 'harbor': field 'tls': 'provided' but sitekit_tls_certificates has no "
         "certificate and key for it"),
        ("""\
            sitekit_sites:
              - name: harbor
                domains: [harbor.mine.test, "*.harbor.mine.test"]
            """, ["-e", "sitekit_tls=acme"],
         "mine: site 'harbor': field 'tls': 'acme' cannot cover a wildcard domain"),
        ("""\
            sitekit_sites:
              - name: harbor
                domains: [harbor.mine.test]
            """, ["-e", "sitekit_tls=letsencrypt"],
         "mine: sitekit_tls must be 'self-signed', 'provided', 'acme' or 'off', "
         "got 'letsencrypt'"),
    ],
    ids=["provided-without-certificate", "acme-wildcard", "unknown-mode"],
)
def test_site_yml_stops_on_a_tls_choice_it_cannot_serve(inventories, tmp_path, sites_yaml,
                                                          extra, message):
    mine = inventories(sites_yaml)
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}",
                            *extra)
    assert code != 0
    assert message in " ".join(output.split()), output[-3000:]
    assert "PLAY [The release and the masters" not in output  # no later play started
    assert not root.exists()


def test_site_yml_preflight_accepts_a_provided_certificate_and_tls_off(inventories, tmp_path):
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test]
            tls: provided
          - name: meadow
            domains: [meadow.mine.test, "*.meadow.mine.test"]
            tls: off
        """)
    certificates = tmp_path / "certificates.json"
    certificates.write_text('{"sitekit_tls_certificates": {"harbor": '
                            '{"certificate": "PEM", "key": "PEM"}}, "sitekit_tls": "acme"}')
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"@{certificates}",
                            "--tags", "never")
    assert code == 0, output[-3000:]
    assert "TLS cannot be set up" not in output


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"sitekit_db_password": "pw\nEVIL=1"},
         "mine: field 'sitekit_db_password': SITEKIT_DB_PASSWORD (every site's env file holds "
         "it) contains a line break or another control character; each line of an env file is "
         "one variable, so it would not read back as it is (the value is not shown)"),
        ({"sitekit_db_password": "pw\u2028EVIL=1"},
         "mine: field 'sitekit_db_password': SITEKIT_DB_PASSWORD (every site's env file holds "
         "it) contains a line break or another control character"),
        ({"sitekit_db_user": "sitekit\nEVIL=1"},
         "mine: field 'sitekit_db_user': SITEKIT_DB_USER (every site's env file holds it) "
         "contains a line break or another control character"),
        ({"sitekit_db_password": "pw "},
         "mine: field 'sitekit_db_password': SITEKIT_DB_PASSWORD (every site's env file holds "
         "it) starts or ends with white space"),
    ],
    ids=["newline", "unicode-line-separator", "not-a-secret", "trailing-space"],
)
def test_site_yml_stops_on_a_value_an_env_file_cannot_hold(inventories, tmp_path, variables,
                                                             message):
    """A value with a line break would add a variable to every master's env file (EVIL=1): the
    preflight refuses it, naming the variable, never showing the value, before any host
    changes."""
    mine = inventories("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.mine.test]
        """)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps({"sitekit_db_engine": "postgresql",
                                 "sitekit_db_password": "a-good-password", **variables}))
    root = tmp_path / "root"
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}",
                            "-e", f"@{extra}")
    assert code != 0
    assert message in " ".join(output.split()), output[-3000:]
    assert "nothing was changed on any host" in output
    assert "EVIL" not in output and "pw " not in output  # the value is never shown
    assert "PLAY [The release and the masters" not in output  # no later play started
    assert not root.exists()


def test_site_yml_refuses_an_alias_bomb_in_the_catalogue_before_expanding_it(inventories, tmp_path):
    # a billion values by aliases: the reader counts them without expanding any; Ansible, had it
    # templated the catalogue as the task's argument, would not have finished
    levels = ["    spare: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"    spare{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 9)]
    mine = inventories("sitekit_sites:\n  - name: harbor\n    domains: [harbor.mine.test]\n"
                       + "\n".join(levels) + "\n    state: *l8\n")
    root = tmp_path / "root"
    started = time.monotonic()
    code, output = playbook(mine, REPO / "ansible" / "site.yml", "-e", f"sitekit_root={root}")
    assert code != 0
    assert time.monotonic() - started < 120
    assert "inventories/mine/group_vars/all/sites.yml" in output
    assert "alias" in output
    assert len(output) < 20_000
    assert not root.exists()
