"""`sitekit check` and the playbook's preflight accept exactly the same catalogues.

One corpus of catalogues (valid ones and every kind of mistake, acme with a wildcard among
them) goes through both: the CLI on one throwaway environment per catalogue, the preflight
(`roles/sitekit/tasks/preflight.yml`, as ansible/site.yml imports it) in one ansible-playbook
run with one local host per catalogue. Both must accept the same ones and report the same
problems and warnings, word for word. Each host's inventory_dir is its catalogue's own, so the
preflight reads that file (keys given twice, values YAML cannot construct) and its neighbours
(some of which cannot be read) as `sitekit check` does.
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
    # the preflight took `[]` for no pools; the validator refuses it, and so do both now
    "pools_an_empty_list": ("""
        sitekit_pools: []
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
        """, "self-signed"),
    "reserved_name_once": ("""
        sitekit_sites:
          - name: base
            domains: [base.c.test]
        """, "self-signed"),
    "escape_sequences_shown_escaped": ("""
        sitekit_sites:
          - name: harbor
            domains: ["\\e[2jharbor.c.test", "a\\u202eb.c.test"]
        """, "self-signed"),
    # keys given twice: Ansible warns and keeps the last; the one reader of the file refuses
    "domains_twice": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
            domains: [www.harbor.c.test]
        """, "self-signed"),
    "name_twice": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
            name: meadow
        """, "self-signed"),
    "sitekit_sites_twice": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
        sitekit_sites: []
        """, "self-signed"),
    # a value YAML cannot construct: Ansible's own loader refuses such a file before any task
    # (test_preflight.py); here the host's catalogue comes from elsewhere, and the preflight's
    # reading of the file must refuse it as `sitekit check` does
    "impossible_date_as_a_name": ("""
        sitekit_sites:
          - name: 2024-02-30
            domains: [harbor.c.test]
        """, "self-signed"),
    # neighbours that cannot be read: checked all the same, naming them in warnings
    "unreadable_neighbours": ("""
        sitekit_sites:
          - name: harbor
            domains: [harbor.c.test]
        """, "self-signed"),
}

# case -> the environments next to it (name -> sites.yml)
NEIGHBOURS = {
    "unreadable_neighbours": {
        "syntax": "sitekit_sites: [\n",
        "date": "sitekit_sites:\n  - name: 2024-02-30\n",
        "digits": "sitekit_sites:\n  - name: a\n    workers: 1" + "0" * 5000 + "\n",
        "twice": "sitekit_sites:\n  - name: a\n    name: b\n",
        "readable": "sitekit_sites:\n  - name: harbor\n    domains: [harbor.other.c.test]\n",
    },
}


def _cli(tmp_path, name, sites_yaml, tls, neighbours=None):
    """A checkout holding the environment ``name`` (and its ``neighbours``) alone."""
    root = tmp_path / "cli" / name
    (root / "inventories" / name / "group_vars" / "all").mkdir(parents=True)
    (root / "settings").symlink_to(REPO / "settings")
    group_vars = root / "inventories" / name / "group_vars" / "all"
    (group_vars / "sites.yml").write_text(textwrap.dedent(sites_yaml))
    (group_vars / "main.yml").write_text(f"sitekit_tls: {tls}\n")
    for other, text in (neighbours or {}).items():
        (root / "inventories" / other / "group_vars" / "all").mkdir(parents=True)
        (root / "inventories" / other / "group_vars" / "all" / "sites.yml").write_text(text)
    return root


def _as_ansible_reads_it(sites_yaml):
    """The variables Ansible takes from a sites.yml: the last of keys given twice; none from a
    file its loader refuses (the preflight reads the file itself)."""
    try:
        return yaml.safe_load(textwrap.dedent(sites_yaml))
    except (yaml.YAMLError, ValueError):
        return {"sitekit_sites": []}


def test_check_and_the_preflight_accept_the_same_catalogues(tmp_path, capsys):
    # the CLI, one environment at a time
    cli = {}
    for name, (sites_yaml, tls) in CORPUS.items():
        root = _cli(tmp_path, name, sites_yaml, tls, NEIGHBOURS.get(name))
        code = main(["--project", str(root), "check", name])
        lines = capsys.readouterr().err.splitlines()
        # the catalogue's warnings (a neighbour it could not compare), not those about the code
        # (a site module in no catalogue), which are no business of a catalogue
        cli[name] = (
            code == 0,
            sorted(line.strip() for line in lines if line.startswith("  ")),
            sorted(line.removeprefix("warning: ") for line in lines
                   if line.startswith(f"warning: {name}: ")),
        )

    # the preflight, one host per environment, in one run; each host's inventory_dir is its
    # environment's: the preflight reads its catalogue file and its neighbours as check does
    hosts = {}
    for name, (sites_yaml, tls) in CORPUS.items():
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "inventory_dir": str(tmp_path / "cli" / name / "inventories" / name),
            "sitekit_env": name,
            "sitekit_tls": False if tls == "off" else tls,
            "sitekit_project_dir": str(REPO),
            # one web host per environment (its own group), as in each environment's inventory
            "sitekit_web_group": f"web_{name}",
            "sitekit_secret_key_base": "k" * 40,
            # the vault's certificates are not the catalogue's business: every site has one
            "sitekit_tls_certificates": {"harbor": {"certificate": "PEM", "key": "PEM"}},
            **_as_ansible_reads_it(sites_yaml),
        }
    inventory = tmp_path / "preflight" / "hosts.yml"
    inventory.parent.mkdir()
    inventory.write_text(yaml.safe_dump({"all": {"children": {
        f"web_{name}": {"hosts": {name: host}} for name, host in hosts.items()}}}))
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
        name: (
            not result.get("failed"),
            sorted(result.get("problems", [])),
            sorted(result.get("warnings", [])),
        )
        for name, result in results.items()
    }

    assert preflight == cli
    # the corpus covers both outcomes, and the rule that used to live in the playbook only
    assert {accepted for accepted, _, _ in cli.values()} == {True, False}
    assert not cli["acme_wildcard_environment"][0] and not cli["acme_wildcard_field"][0]
    assert cli["acme_wildcard_absent_site"][0] and cli["wildcard_provided_under_acme"][0]
    # what each new case is about
    assert cli["pools_an_empty_list"][:2] == (False, [
        "pools_an_empty_list: field 'sitekit_pools': must be a mapping of pool names to their "
        "resources, got []"])
    assert len(cli["reserved_name_once"][1]) == 1
    assert "'\\x1b[2jharbor.c.test'" in cli["escape_sequences_shown_escaped"][1][0]
    assert "'a\\u202eb.c.test'" in cli["escape_sequences_shown_escaped"][1][1]
    for case, key in (("domains_twice", "domains"), ("name_twice", "name"),
                      ("sitekit_sites_twice", "sitekit_sites")):
        assert not cli[case][0] and f"'{key}' is given twice" in cli[case][1][0]
    assert "'2024-02-30' reads as a date" in cli["impossible_date_as_a_name"][1][0]
    accepted, problems, warnings = cli["unreadable_neighbours"]
    assert accepted and not problems
    assert [w.split("'")[1] for w in warnings] == ["date", "digits", "syntax", "twice"]


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
