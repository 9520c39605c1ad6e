"""`sitekit check` and the playbook's preflight accept exactly the same catalogues.

One corpus of catalogues (valid ones and every kind of mistake, acme with a wildcard among
them) goes through both: the CLI on one throwaway environment per catalogue, the preflight
(`roles/sitekit/tasks/preflight.yml`, as ansible/site.yml imports it) in one ansible-playbook
run with one local host per catalogue. Both must accept the same ones and report the same
problems, word for word.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# name -> (sites.yml, the environment's sitekit_tls)
CORPUS = {
    "plain": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test, www.harbor.c.test]
          - name: meadow
            domains: [meadow.c.test]
        """, "self-signed"),
    "pooled": ("""
        sitekit_pools:
          shared: {workers: 3}
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
            pool: shared
          - name: meadow
            domains: [meadow.c.test]
            pool: shared
          - name: ember
            domains: [ember.c.test]
            workers: 1
        """, "self-signed"),
    "acme_wildcard_environment": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test, "*.harbor.c.test"]
        """, "acme"),
    "acme_wildcard_field": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test, "*.harbor.c.test"]
            tls: acme
        """, "self-signed"),
    "acme_wildcard_absent_site": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
          - name: meadow
            state: absent
            domains: [meadow.c.test, "*.meadow.c.test"]
        """, "acme"),
    "wildcard_provided_under_acme": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test, "*.harbor.c.test"]
            tls: provided
        """, "acme"),
    "unknown_tls_choice": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
        """, "letsencrypt"),
    "unknown_tls_field": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
            tls: letsencrypt
        """, "self-signed"),
    "domain_twice": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
          - name: meadow
            domains: [harbor.c.test]
        """, "self-signed"),
    "bad_name_and_field": ("""
        sitekit_sites:
          - name: Harbor
            domains: [harbor.c.test]
          - name: meadow
            domains: [meadow.c.test]
            wrokers: 2
        """, "self-signed"),
    "no_settings_module": ("""
        sitekit_sites:
          - name: lighthouse
            domains: [lighthouse.c.test]
        """, "self-signed"),
    "pooled_site_with_resources_and_mixed_schemes": ("""
        sitekit_pools:
          shared: {}
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
            pool: shared
            workers: 4
          - name: meadow
            domains: [meadow.c.test]
            pool: shared
            tls: off
        """, "self-signed"),
    "wildcard_first_and_bad_domain": ("""
        sitekit_sites:
          - name: harbor
            domains: ["*.harbor.c.test", "exa mple.c.test"]
        """, "off"),
}


def _cli(tmp_path, name, sites_yaml, tls):
    """(accepted, problems) of `sitekit check` on an environment alone in its checkout."""
    root = tmp_path / "cli" / name
    (root / "inventories" / name / "group_vars" / "all").mkdir(parents=True)
    (root / "settings").symlink_to(REPO / "settings")
    group_vars = root / "inventories" / name / "group_vars" / "all"
    (group_vars / "sites.yml").write_text(textwrap.dedent(sites_yaml))
    (group_vars / "main.yml").write_text(f"sitekit_tls: {tls}\n")
    return root


def test_check_and_the_preflight_accept_the_same_catalogues(tmp_path, capsys):
    # the CLI, one environment at a time
    cli = {}
    for name, (sites_yaml, tls) in CORPUS.items():
        root = _cli(tmp_path, name, sites_yaml, tls)
        code = main(["--project", str(root), "check", name])
        err = capsys.readouterr().err
        # a warning about the code (a site module in no catalogue) is no problem of a catalogue
        problems = [line for line in err.splitlines()[1:] if not line.startswith("warning: ")]
        cli[name] = (code == 0, sorted(line.strip() for line in problems))

    # the preflight, one host per environment, in one run
    hosts = {}
    for name, (sites_yaml, tls) in CORPUS.items():
        data = yaml.safe_load(textwrap.dedent(sites_yaml))
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "sitekit_env": name,
            "sitekit_tls": False if tls == "off" else tls,
            "sitekit_project_dir": str(REPO),
            "sitekit_secret_key_base": "k" * 40,
            # the vault's certificates are not the catalogue's business: every site has one
            "sitekit_tls_certificates": {"harbor": {"certificate": "PEM", "key": "PEM"}},
            **data,
        }
    inventory = tmp_path / "preflight" / "hosts.yml"
    inventory.parent.mkdir()
    inventory.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))
    book = tmp_path / "preflight" / "preflight.yml"
    book.write_text(textwrap.dedent("""\
        - hosts: all
          gather_facts: false
          tasks:
            - ansible.builtin.import_role:
                name: sitekit
                tasks_from: preflight
        """))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible" / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    run = subprocess.run([str(BIN / "ansible-playbook"), "-i", str(inventory), str(book)],
                         env=env, capture_output=True, text=True, timeout=300, check=False)
    results = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]
    preflight = {
        name: (not result.get("failed"), sorted(result.get("problems", [])))
        for name, result in results.items()
    }

    assert preflight == cli
    # the corpus covers both outcomes, and the rule that used to live in the playbook only
    assert {accepted for accepted, _ in cli.values()} == {True, False}
    assert not cli["acme_wildcard_environment"][0] and not cli["acme_wildcard_field"][0]
    assert cli["acme_wildcard_absent_site"][0] and cli["wildcard_provided_under_acme"][0]


def test_domain_add_refuses_what_the_deploy_would_refuse(tmp_path, capsys):
    """Adding a wildcard under acme used to be written (and announced as served by the next
    deploy) while the deploy refused it; the editor now runs the same validator."""
    sites = "sitekit_sites:\n  - name: harbor\n    domains: [harbor.c.test]\n"
    acme = _cli(tmp_path, "acme_env", sites, "acme")
    path = acme / "inventories" / "acme_env" / "group_vars" / "all" / "sites.yml"
    before = path.read_bytes()
    assert main(["--project", str(acme), "domain", "add", "acme_env", "harbor",
                 "*.shop.c.test"]) == 1
    err = capsys.readouterr().err
    assert "acme_env: site 'harbor': field 'tls': 'acme' cannot cover a wildcard domain" in err
    assert path.read_bytes() == before

    plain = _cli(tmp_path, "plain_env", sites, "self-signed")
    assert main(["--project", str(plain), "domain", "add", "plain_env", "harbor",
                 "*.shop.c.test"]) == 0
    path = plain / "inventories" / "plain_env" / "group_vars" / "all" / "sites.yml"
    assert "*.shop.c.test" in path.read_text()
