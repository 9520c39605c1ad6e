"""The sitekit command line: exit codes and what it prints for the inventories it reads."""

import subprocess
from pathlib import Path

import pytest
import yaml

from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]
SITEKIT = REPO / ".venv" / "bin" / "sitekit"

# Each environment has its own domains: a domain belongs to one environment only.
BAD_SITES = """\
    sitekit_sites:
      - name: harbor
        domains: [Harbor.bad.example.org]
      - name: meadow
        domains: [meadow.bad.example.org]
        wrokers: 3
      - name: ember
        domains: [ember.bad.example.org]
        threads: 0
    """

GOOD_SITES = """\
    sitekit_sites:
      - name: harbor
        domains: [harbor.example.org, "*.harbor.example.org", www.harbor.example.org]
      - name: meadow
        domains: [meadow.example.org]
      - name: ember
        state: absent
    """

STAGING_SITES = GOOD_SITES.replace(".example.org", ".staging.example.org")


def local_counts():
    sites = yaml.safe_load((REPO / "inventories/local/group_vars/all/sites.yml").read_text())
    sites = sites["sitekit_sites"]
    present = [s for s in sites if s.get("state", "present") == "present"]
    return len(sites), len(present), sum(len(s["domains"]) for s in present)


# --- sitekit check -------------------------------------------------------------------------


def test_check_local_from_the_checkout(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["check", "local"]) == 0
    out, err = capsys.readouterr()
    sites, present, domains = local_counts()
    assert out == f"local: OK: {sites} sites ({present} present), {domains} domains\n"
    assert err == ""


def test_check_finds_the_checkout_from_a_subdirectory(monkeypatch, capsys):
    monkeypatch.chdir(REPO / "sitekit")
    assert main(["check", "local"]) == 0
    assert capsys.readouterr().out.startswith("local: OK: ")


def test_check_accepts_an_inventory_directory(capsys):
    assert main(["check", str(REPO / "inventories" / "local")]) == 0
    assert capsys.readouterr().out.startswith("local: OK: ")


def test_check_local_as_a_real_command():
    proc = subprocess.run(
        [str(SITEKIT), "check", "local"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("local: OK: ")
    assert proc.stderr == ""


def test_check_bad_inventory_lists_every_problem(project, capsys):
    root = project.env("bad", BAD_SITES)
    assert main(["--project", str(root), "check", "bad"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "bad: 3 problems:"
    assert len(lines) == 4
    assert lines[1].startswith(
        "  bad: site 'harbor': field 'domains[0]': 'Harbor.bad.example.org'"
    )
    assert "write 'harbor.bad.example.org'" in lines[1]
    assert lines[2].startswith(
        "  bad: site 'meadow': field 'wrokers': unknown field (did you mean 'workers'?)"
    )
    assert lines[3].startswith("  bad: site 'ember': field 'threads': must be between 1 and 64")


def test_check_single_problem_is_singular(project, capsys):
    root = project.env("bad", "sitekit_sites:\n  - name: harbor\n    domains: [harbor]\n")
    assert main(["--project", str(root), "check", "bad"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bad: 1 problem:\n  bad: site 'harbor': field 'domains[0]': ")


def test_check_reports_missing_settings_module(project, capsys):
    root = project.env("bad", "sitekit_sites:\n  - name: newsite\n    domains: [new.example.org]\n")
    assert main(["--project", str(root), "check", "bad"]) == 1
    err = capsys.readouterr().err
    assert "bad: site 'newsite': field 'name': no settings module for this site" in err
    assert "settings/newsite.py" in err


def test_check_without_environments_checks_them_all(project, capsys):
    project.env("good", GOOD_SITES)
    root = project.env("bad", BAD_SITES)
    assert main(["--project", str(root), "check"]) == 1
    out, err = capsys.readouterr()
    assert out == "good: OK: 3 sites (2 present), 4 domains\n"
    assert err.startswith("bad: 3 problems:\n")


def test_check_all_good_environments_exits_zero(project, capsys):
    project.env("good", GOOD_SITES)
    root = project.env("staging", STAGING_SITES)
    assert main(["--project", str(root), "check", "good", "staging"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "good: OK: 3 sites (2 present), 4 domains",
        "staging: OK: 3 sites (2 present), 4 domains",
    ]


def test_every_environment_of_the_checkout_is_valid(capsys):
    assert main(["--project", str(REPO), "check"]) == 0
    out = capsys.readouterr().out
    names = sorted(p.parent.parent.parent.name for p in REPO.glob(
        "inventories/*/group_vars/all/sites.yml"))
    assert [line.split(":")[0] for line in out.splitlines()] == names


def test_check_a_domain_in_two_environments_is_a_problem_in_both(project, capsys):
    project.env("production", GOOD_SITES)
    root = project.env(
        "staging", STAGING_SITES.replace("meadow.staging.example.org", "meadow.example.org")
    )
    assert main(["--project", str(root), "check"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "production: 1 problem:",
        "  production: site 'meadow': field 'domains': 'meadow.example.org' is already "
        "configured in environment 'staging' (site 'meadow'); a domain belongs to one "
        "environment only",
        "staging: 1 problem:",
        "  staging: site 'meadow': field 'domains': 'meadow.example.org' is already "
        "configured in environment 'production' (site 'meadow'); a domain belongs to one "
        "environment only",
    ]


def test_check_of_one_environment_looks_at_the_others(project, capsys):
    project.env("production", GOOD_SITES)
    root = project.env(
        "staging",
        STAGING_SITES.replace("[meadow.staging.example.org]", "[www.harbor.example.org]"),
    )
    assert main(["--project", str(root), "check", "staging"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "staging: 1 problem:",
        "  staging: site 'meadow': field 'domains': 'www.harbor.example.org' is already "
        "configured in environment 'production' (site 'harbor'); a domain belongs to one "
        "environment only",
    ]


def test_check_goes_on_past_environments_it_cannot_read(project, capsys):
    project.env("good", GOOD_SITES)
    project.env("broken", "sitekit_sites: [\n")
    root = project.env("staging", STAGING_SITES)
    (root / "inventories" / "empty").mkdir()
    vault = root / "inventories" / "staging" / "group_vars" / "all" / "vault.yml"
    vault.write_text("$ANSIBLE_VAULT;1.1;AES256\n6162630a\n")
    assert main(["--project", str(root), "check"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "good: OK: 3 sites (2 present), 4 domains",
        "staging: OK: 3 sites (2 present), 4 domains",
    ]
    assert err.startswith("broken: 1 problem:\n  broken: ")
    assert "is not valid YAML" in err


def test_check_unknown_environment_lists_known_ones(project, capsys):
    project.env("good", GOOD_SITES)
    root = project.env("bad", BAD_SITES)
    assert main(["--project", str(root), "check", "staging"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "staging: no environment 'staging' (known: bad, good)\n"


@pytest.mark.parametrize("name", ["", "  "])
def test_check_refuses_an_empty_environment_name(project, capsys, name):
    # it used to check inventories/ itself as an environment named ""
    root = project.env("good", GOOD_SITES)
    assert main(["--project", str(root), "check", name, "good"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("good: OK: ")
    assert err == (
        f"{name!r}: an environment name cannot be empty: give one such as 'local', or an "
        "inventory directory (inventories/local); without any, `sitekit check` checks them all\n"
    )


@pytest.mark.parametrize("name", [".", ".."])
def test_a_dot_is_a_directory_not_an_environment_name(project, capsys, monkeypatch, name):
    root = project.env("good", GOOD_SITES)
    monkeypatch.chdir(root / "inventories" / "good" / ("group_vars" if name == ".." else ""))
    assert main(["--project", str(root), "check", name]) == 0
    assert capsys.readouterr().out.startswith("good: OK: ")


def test_check_goes_on_past_an_unknown_environment(project, capsys):
    project.env("good", GOOD_SITES)
    root = project.env("bad", BAD_SITES)
    assert main(["--project", str(root), "check", "nosuch", "good"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("good: OK: ")
    assert err.startswith("nosuch: no environment 'nosuch'")


def test_check_unknown_environment_in_the_real_checkout(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["check", "nosuchenv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nosuchenv: no environment 'nosuchenv' (known: ")
    assert "local" in err


def test_check_yaml_syntax_error_is_reported_without_traceback(project, capsys):
    root = project.env(
        "bad",
        """\
        sitekit_sites:
          - name: harbor
           domains: [harbor.example.org
        """,
    )
    assert main(["--project", str(root), "check", "bad"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bad: 1 problem:\n  bad: ")
    assert "inventories/bad/group_vars/all/sites.yml is not valid YAML" in err
    assert "line 3" in err
    assert "Traceback" not in err


def test_check_yaml_syntax_error_as_a_real_command(project):
    root = project.env("bad", "sitekit_sites: [\n")
    proc = subprocess.run(
        [str(SITEKIT), "--project", str(root), "check", "bad"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "is not valid YAML" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("other_var: 1\n", "does not define 'sitekit_sites'"),
        ("", "does not define 'sitekit_sites'"),
        ("- name: harbor\n", "does not define 'sitekit_sites'"),
        ("sitekit_sites:\n  name: harbor\n", "field 'sitekit_sites': must be a list of sites"),
    ],
)
def test_check_catalogue_file_without_a_list_of_sites(project, capsys, content, fragment):
    root = project.env("bad", content)
    assert main(["--project", str(root), "check", "bad"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bad: 1 problem:\n  bad: ")
    assert fragment in err


def test_check_environment_without_catalogue_file(project, capsys):
    root = project.env("good", GOOD_SITES)
    (root / "inventories" / "empty").mkdir()
    assert main(["--project", str(root), "check", "empty"]) == 1
    err = capsys.readouterr().err
    assert "empty: no catalogue file" in err
    assert "inventories/empty/group_vars/all/sites.yml" in err


def test_check_outside_a_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "local"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sitekit: no sitekit checkout found at or above ")
    assert "looked for 'inventories/' and 'settings/'" in err


# --- sitekit urls --------------------------------------------------------------------------


def test_urls_local_with_port(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    assert main(["urls", "local", "--port", "8080", "--tls-port", "8443"]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == [
        "harbor", "https://harbor.localhost:8443/", "https://www.harbor.localhost:8443/"
    ]
    catalogue = yaml.safe_load((REPO / "inventories/local/group_vars/all/sites.yml").read_text())
    expected = [
        [s["name"], *(f"https://{d}:8443/" for d in s["domains"] if "*" not in d)]
        for s in catalogue["sitekit_sites"]
        if s.get("state", "present") == "present"
    ]
    assert lines == expected


def test_urls_default_port_is_the_inventory_s(project, capsys):
    root = project.env(
        "good", GOOD_SITES,
        "sitekit_tls: provided\nsitekit_public_port: 8080\nsitekit_tls_port: 8443\n",
    )
    assert main(["--project", str(root), "urls", "good"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # wildcard domains are named, not linked; absent sites are left out
    assert lines == [
        "harbor           https://harbor.example.org:8443/  https://www.harbor.example.org:8443/"
        "  (and any name matching *.harbor.example.org)",
        "meadow           https://meadow.example.org:8443/",
    ]


def test_check_refuses_acme_for_a_wildcard_as_the_deploy_does(project, capsys):
    # GOOD_SITES' harbor has *.harbor.example.org: certbot's webroot mode cannot cover it
    root = project.env("good", GOOD_SITES, "sitekit_tls: acme\n")
    assert main(["--project", str(root), "check", "good"]) == 1
    assert ("good: site 'harbor': field 'tls': 'acme' cannot cover a wildcard domain"
            in capsys.readouterr().err)


@pytest.mark.parametrize(
    ("main_yml", "args", "url"),
    [
        ("sitekit_tls: self-signed\n", [], "https://meadow.example.org/"),
        ("sitekit_tls_port: 443\nsitekit_public_port: 8080\n", [], "https://meadow.example.org/"),
        ("sitekit_tls: 'off'\nsitekit_public_port: 80\n", [], "http://meadow.example.org/"),
        ("sitekit_tls: off\n", ["--port", "8000"], "http://meadow.example.org:8000/"),
        ("sitekit_tls: off\nsitekit_public_port: 8080\n", ["--port", "80"],
         "http://meadow.example.org/"),
        ("sitekit_tls: provided\n", ["--tls-port", "9443"], "https://meadow.example.org:9443/"),
        (None, [], "https://meadow.example.org/"),
    ],
)
def test_urls_omit_the_default_port(project, capsys, main_yml, args, url):
    root = project.env("good", GOOD_SITES, main_yml)
    assert main(["--project", str(root), "urls", "good", *args]) == 0
    meadow = [line for line in capsys.readouterr().out.splitlines() if line.startswith("meadow")]
    assert meadow[0].split() == ["meadow", url]


def test_urls_follow_a_sites_own_tls(project, capsys):
    sites = GOOD_SITES.replace("name: meadow", "name: meadow\n        tls: 'off'", 1)
    assert sites != GOOD_SITES
    root = project.env("good", sites, "sitekit_tls: self-signed\nsitekit_public_port: 8080\n")
    assert main(["--project", str(root), "urls", "good"]) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["meadow"] == "http://meadow.example.org:8080/"
    assert lines["harbor"].startswith("https://harbor.example.org/")


def test_urls_of_an_invalid_catalogue_exits_one(project, capsys):
    root = project.env("bad", BAD_SITES)
    assert main(["--project", str(root), "urls", "bad"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "bad: site 'meadow': field 'wrokers'" in err


@pytest.mark.parametrize(
    ("main_yml", "fragment"),
    [
        ("sitekit_public_port: [\n", "main.yml is not valid YAML"),
        ("- sitekit_public_port\n", "main.yml must be a mapping of variables"),
        ("sitekit_tls: letsencrypt\n",
         "sitekit_tls must be 'self-signed', 'provided', 'acme' or 'off', got 'letsencrypt'"),
    ],
)
def test_urls_with_broken_main_yml_is_reported(project, capsys, main_yml, fragment):
    root = project.env("good", GOOD_SITES, main_yml)
    assert main(["--project", str(root), "urls", "good"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sitekit: good: ")
    assert fragment in err


def test_urls_unknown_environment(project, capsys):
    root = project.env("good", GOOD_SITES)
    assert main(["--project", str(root), "urls", "prod"]) == 1
    assert capsys.readouterr().err == "sitekit: no environment 'prod' (known: good)\n"


# --- help and usage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "usage: sitekit"),
        (["check"], "usage: sitekit check"),
        (["urls"], "usage: sitekit urls"),
        (["release"], "usage: sitekit release"),
        (["release", "build"], "usage: sitekit release build"),
        (["release", "id"], "usage: sitekit release id"),
    ],
)
def test_help_of_each_command(capsys, args, fragment):
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(fragment)


@pytest.mark.parametrize(
    "args",
    [[], ["urls"], ["release"], ["release", "build"], ["frobnicate"], ["urls", "x", "--port", "p"]],
)
def test_usage_errors_exit_two(capsys, args):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "usage: sitekit" in capsys.readouterr().err


def test_project_option_is_accepted_after_the_command(project, capsys):
    root = project.env("good", GOOD_SITES)
    assert main(["check", "good", "--project", str(root)]) == 0
    assert capsys.readouterr().out.startswith("good: OK: ")


@pytest.mark.parametrize("port", ["0", "65536", "http"])
def test_urls_rejects_an_impossible_port(port, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["urls", "local", "--port", port])
    assert exit_info.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_hosts_points_every_domain_at_the_load_balancer(capsys):
    assert main(["--project", str(REPO), "hosts", "vagrant"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# sitekit vagrant")
    assert "192.168.56.10 harbor.vagrant.test www.harbor.vagrant.test" in lines
    assert "192.168.56.10 ember.vagrant.test" in lines


def test_hosts_of_the_local_environment_is_loopback(capsys):
    assert main(["--project", str(REPO), "hosts", "local"]) == 0
    assert "127.0.0.1 harbor.localhost www.harbor.localhost" in capsys.readouterr().out
