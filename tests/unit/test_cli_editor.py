"""`sitekit domain add|remove` and `sitekit site add|remove`: what a user sees, what is written.

Every test works on a copy of the checkout in a tmp dir (passed with --project); the real
inventories, settings and project/ are never written.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]
SITEKIT = REPO / ".venv" / "bin" / "sitekit"
CATALOGUE = Path("inventories/local/group_vars/all/sites.yml")

# The local catalogue with comments in odd places, a block list of quoted strings and an
# absent site.
ODD = """\
# The site catalogue of the local environment. Check it with: sitekit check local
sitekit_sites:
  - name: harbor              # settings module settings/harbor.py
    domains: [harbor.localhost, www.harbor.localhost]   # the first is canonical
    workers: 2
  # meadow keeps a block list
  - name: meadow
    domains:
      - "meadow.localhost"
      # served as is
      - "www.meadow.localhost"
    workers: 2
  - name: ember
    domains: [ember.localhost]
    workers: 2
    state: absent   # back next season
"""


@pytest.fixture
def checkout(copy_checkout):
    """A copy of what the commands read and write: manage.py, settings/, project/ and the
    local inventory (the real catalogue file)."""
    return copy_checkout("local")


class Catalogue:
    """The catalogue file of a checkout, with what it held when the test began."""

    def __init__(self, root, text=None):
        self.path = root / CATALOGUE
        if text is not None:
            self.path.write_text(text)
        self.before = self.path.read_bytes()
        self.mtime = self.path.stat().st_mtime_ns

    @property
    def text(self):
        return self.path.read_text()

    def assert_untouched(self):
        assert self.path.read_bytes() == self.before
        assert self.path.stat().st_mtime_ns == self.mtime


def run(root, capsys, *args):
    code = main(["--project", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def diff_lines(out):
    """The '-' and '+' lines of the diff a command printed."""
    return [
        line
        for line in out.splitlines()
        if line[:1] in "+-" and not line.startswith(("---", "+++"))
    ]


# --- domain add ----------------------------------------------------------------------------


def test_domain_add_on_the_real_local_catalogue(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, err = run(
        checkout, capsys, "domain", "add", "local", "harbor", "Shop.Harbor.Localhost."
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == (
        "local: site 'harbor': 'Shop.Harbor.Localhost.' normalised to 'shop.harbor.localhost'"
    )
    assert lines[1:3] == [
        "--- a/inventories/local/group_vars/all/sites.yml",
        "+++ b/inventories/local/group_vars/all/sites.yml",
    ]
    old = "    domains: [harbor.localhost, www.harbor.localhost]   # the first is canonical"
    new = (
        "    domains: [harbor.localhost, www.harbor.localhost, shop.harbor.localhost]"
        "   # the first is canonical"
    )
    assert diff_lines(out) == [f"-{old}", f"+{new}"]
    assert lines[-3:] == [
        "local: site 'harbor': added shop.harbor.localhost",
        "the next deploy of local serves it (ansible-playbook -i inventories/local "
        "ansible/site.yml)",
        "wrote inventories/local/group_vars/all/sites.yml",
    ]
    expected = catalogue.before.decode().replace(old + "\n", new + "\n")
    assert catalogue.text == expected
    assert main(["--project", str(checkout), "check", "local"]) == 0


def test_domain_add_keeps_an_odd_file_byte_for_byte(checkout, capsys):
    catalogue = Catalogue(checkout, ODD)
    code, out, _ = run(
        checkout, capsys, "domain", "add", "local", "meadow", "shop.meadow.localhost"
    )
    assert code == 0
    assert diff_lines(out) == ['+      - "shop.meadow.localhost"']
    assert catalogue.text == ODD.replace(
        '      - "www.meadow.localhost"\n',
        '      - "www.meadow.localhost"\n      - "shop.meadow.localhost"\n',
    )


def test_domain_add_dry_run_writes_nothing(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, _ = run(
        checkout, capsys, "domain", "add", "local", "harbor", "x.localhost", "--dry-run"
    )
    assert code == 0
    assert len(diff_lines(out)) == 2
    assert out.splitlines()[-1] == (
        "dry run: nothing written (inventories/local/group_vars/all/sites.yml left as it was)"
    )
    catalogue.assert_untouched()


def test_domain_add_already_there_says_so_and_writes_nothing(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, err = run(
        checkout, capsys, "domain", "add", "local", "harbor", "WWW.harbor.localhost"
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "local: site 'harbor': 'WWW.harbor.localhost' normalised to 'www.harbor.localhost'",
        "local: site 'harbor': 'www.harbor.localhost' is already one of its domains",
        "local: nothing to change; inventories/local/group_vars/all/sites.yml left as it was",
    ]
    catalogue.assert_untouched()


def test_domain_add_given_twice_is_added_once(checkout, capsys):
    Catalogue(checkout)
    code, out, _ = run(
        checkout, capsys, "domain", "add", "local", "harbor", "a.localhost", "A.localhost"
    )
    assert code == 0
    assert "'a.localhost' was given 2 times ('a.localhost', 'A.localhost'); it is added once" in out
    assert diff_lines(out)[1].count("a.localhost") == 1


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["meadow", "www.harbor.localhost"],
            "  local: site 'meadow': field 'domains': 'www.harbor.localhost' already belongs to "
            "site 'harbor' (present); remove it there first: "
            "sitekit domain remove local harbor www.harbor.localhost",
        ),
        (
            ["ember", "new.localhost"],
            "  local: site 'ember': field 'state': site is absent; re-add it with "
            "`sitekit site add local ember` (it keeps its domains), then add domains",
        ),
        (
            ["harbor", "harbor"],
            "  local: site 'harbor': field 'domains': cannot add 'harbor': 'harbor' has a single "
            "label; use a full name such as 'harbor.example.org' or 'harbor.localhost'",
        ),
        (
            ["nosuch", "new.localhost"],
            "  local: site 'nosuch': no such site in local (sites: harbor, meadow, ember); add a "
            "site with: sitekit site add local nosuch DOMAIN...",
        ),
    ],
)
def test_domain_add_refused_exits_one_and_leaves_the_file_untouched(
    checkout, capsys, args, expected
):
    catalogue = Catalogue(checkout, ODD)
    code, out, err = run(checkout, capsys, "domain", "add", "local", *args)
    assert code == 1
    assert "---" not in out
    assert err.splitlines() == ["local: nothing written: 1 problem:", expected]
    catalogue.assert_untouched()


def test_domain_add_reports_every_problem_at_once(checkout, capsys):
    catalogue = Catalogue(checkout, ODD)
    code, _, err = run(
        checkout, capsys, "domain", "add", "local", "harbor", "bad..localhost", "meadow.localhost"
    )
    assert code == 1
    lines = err.splitlines()
    assert lines[0] == "local: nothing written: 2 problems:"
    assert "'bad..localhost' has an empty label" in lines[1]
    assert "'meadow.localhost' already belongs to site 'meadow'" in lines[2]
    catalogue.assert_untouched()


# --- domain remove -------------------------------------------------------------------------


def test_domain_remove_the_canonical_domain(checkout, capsys):
    catalogue = Catalogue(checkout, ODD)
    code, out, _ = run(checkout, capsys, "domain", "remove", "local", "meadow", "meadow.localhost")
    assert code == 0
    assert diff_lines(out) == ['-      - "meadow.localhost"']
    assert (
        "local: site 'meadow': 'www.meadow.localhost' is now its canonical domain (the first; "
        "the next deploy writes it to the Sites table)"
    ) in out.splitlines()
    assert catalogue.text == ODD.replace('      - "meadow.localhost"\n', "")


def test_domain_remove_the_last_domain_is_refused(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, _, err = run(checkout, capsys, "domain", "remove", "local", "ember", "ember.localhost")
    assert code == 1
    assert err.splitlines() == [
        "local: nothing written: 1 problem:",
        "  local: site 'ember': field 'domains': cannot remove the last domain of a present site "
        "(a site needs at least one; the first is its canonical domain); to take the site down "
        "use: sitekit site remove local ember",
    ]
    catalogue.assert_untouched()


def test_domain_remove_a_domain_the_site_lacks_is_refused(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, _, err = run(
        checkout, capsys, "domain", "remove", "local", "harbor", "ww.harbor.localhost"
    )
    assert code == 1
    assert "did you mean 'www.harbor.localhost'?" in err
    catalogue.assert_untouched()


# --- site add ------------------------------------------------------------------------------


def clean_env(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_")
        and key not in {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    }
    env["SITEKIT_SECRET_KEY"] = "sitekit-tests-insecure-secret-key"
    env["SITEKIT_DB_NAME"] = str(tmp_path / "db.sqlite3")
    return env


HOME_PAGE = """\
import json, sys
import django
from django.conf import settings
django.setup()
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
Site.objects.update_or_create(id=settings.SITE_ID, defaults={"domain": sys.argv[1], "name": "x"})
response = Client().get("/", HTTP_HOST=sys.argv[1])
health = Client().get("/healthz", HTTP_HOST=sys.argv[1])
print(json.dumps({"status": response.status_code, "html": response.content.decode(),
                  "health": health.json()}))
"""


def test_site_add_scaffolds_a_site_that_checks_and_renders_its_brand(checkout, capsys, tmp_path):
    catalogue = Catalogue(checkout)
    code, out, err = run(
        checkout,
        capsys,
        "site",
        "add",
        "local",
        "north_shore",
        "North-Shore.localhost",
        "www.north-shore.localhost",
        "--workers",
        "3",
        "--brand",
        "North Shore & Co",
    )
    assert (code, err) == (0, "")
    assert diff_lines(out) == [
        "+  - name: north_shore",
        "+    domains: [north-shore.localhost, www.north-shore.localhost]",
        "+    workers: 3",
        "+    state: present",
    ]
    assert catalogue.text == catalogue.before.decode() + (
        "  - name: north_shore\n"
        "    domains: [north-shore.localhost, www.north-shore.localhost]\n"
        "    workers: 3\n"
        "    state: present\n"
    )
    created = [
        line.removeprefix("created ") for line in out.splitlines() if line.startswith("created ")
    ]
    assert created == [
        "settings/north_shore.py",
        "project/sites/north_shore/__init__.py",
        "project/sites/north_shore/apps.py",
        "project/sites/north_shore/urls.py",
        "project/sites/north_shore/jinja2/north_shore/base.html",
        "project/sites/north_shore/static/north_shore/site.css",
        "project/sites/north_shore/static/north_shore/logo.svg",
    ]
    assert all((checkout / path).is_file() for path in created)
    assert (
        "local: site 'north_shore': new to the codebase: SITE_ID 4, brand 'North Shore & Co'; "
        "commit the new files with the catalogue"
    ) in out.splitlines()

    # sitekit check, as support staff run it
    assert main(["--project", str(checkout), "check", "local"]) == 0
    assert capsys.readouterr().out == "local: OK: 4 sites (4 present), 7 domains\n"

    # Django's checks with the new settings module
    env = clean_env(tmp_path)
    check = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings", "settings.north_shore"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "System check identified no issues" in check.stdout

    # its home page shows its brand, its stylesheet and logo; /healthz names it
    env["DJANGO_SETTINGS_MODULE"] = "settings.north_shore"
    page = subprocess.run(
        [sys.executable, "-c", HOME_PAGE, "north-shore.localhost"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert page.returncode == 0, page.stderr
    result = json.loads(page.stdout)
    assert result["status"] == 200
    html = result["html"]
    assert '<span class="brand-name">North Shore &amp; Co</span>' in html
    assert "/static/north_shore/site.css" in html
    assert "/static/north_shore/logo.svg" in html
    assert '<body class="site site-north_shore">' in html
    assert "Harbor" not in html
    assert result["health"]["site"] == "north_shore"
    assert result["health"]["site_id"] == 4


def test_site_add_dry_run_creates_nothing(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, _ = run(
        checkout, capsys, "site", "add", "local", "acme", "acme.localhost", "--dry-run"
    )
    assert code == 0
    assert "would create settings/acme.py" in out.splitlines()
    assert out.splitlines()[-1].startswith("dry run: nothing written")
    assert not (checkout / "settings" / "acme.py").exists()
    assert not (checkout / "project" / "sites" / "acme").exists()
    catalogue.assert_untouched()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["Acme", "acme.localhost"],
            "  local: site 'Acme': field 'name': 'Acme' is not a valid site name: use 1 to 29 "
            "characters, lower-case letters, digits and '_', starting with a letter (it names a "
            "Python module, a socket and a unix user)",
        ),
        (
            ["acme", "acme.localhost", "harbor.localhost"],
            "  local: site 'acme': field 'domains': 'harbor.localhost' already belongs to site "
            "'harbor' (present); remove it there first: "
            "sitekit domain remove local harbor harbor.localhost",
        ),
        (
            ["acme", "acme.localhost", "--workers", "65"],
            "  local: site 'acme': field 'workers': must be between 1 and 64, got 65 (gunicorn "
            "worker processes)",
        ),
        (
            ["acme"],
            "  local: site 'acme': field 'domains': give at least one domain (the first becomes "
            "the site's canonical domain)",
        ),
    ],
)
def test_site_add_refused_writes_nothing_at_all(checkout, capsys, args, expected):
    catalogue = Catalogue(checkout)
    code, out, err = run(checkout, capsys, "site", "add", "local", *args)
    assert code == 1
    assert err.splitlines() == ["local: nothing written: 1 problem:", expected]
    assert "created" not in out
    catalogue.assert_untouched()
    assert sorted(p.name for p in (checkout / "settings").glob("*.py")) == sorted(
        p.name for p in (REPO / "settings").glob("*.py")
    )
    assert sorted(p.name for p in (checkout / "project" / "sites").iterdir()) == sorted(
        p.name for p in (REPO / "project" / "sites").iterdir() if p.name != "__pycache__"
    )


# --- a domain belongs to one environment ----------------------------------------------------

PRODUCTION = """\
sitekit_sites:
  - name: harbor
    domains: [harbor.example.com, www.harbor.example.com]
  - name: ember
    domains: [ember.example.net]
    state: absent
"""


def with_production(root):
    """Give the checkout a production environment next to local."""
    group_vars = root / "inventories" / "production" / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (group_vars / "sites.yml").write_text(PRODUCTION)
    # production's secrets are unreadable here: only its plaintext catalogue is needed
    (group_vars / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162630a\n")
    return root


@pytest.mark.parametrize(
    ("args", "domain", "owner"),
    [
        (["domain", "add", "local", "harbor", "www.harbor.example.com"],
         "www.harbor.example.com", "'production' (site 'harbor')"),
        (["domain", "add", "local", "meadow", "Ember.Example.Net."],
         "ember.example.net", "'production' (site 'ember', absent)"),
    ],
)
def test_domain_add_of_another_environment_s_domain_is_refused(
    checkout, capsys, args, domain, owner
):
    catalogue = Catalogue(with_production(checkout))
    production = (checkout / "inventories/production/group_vars/all/sites.yml").read_bytes()
    code, out, err = run(checkout, capsys, *args)
    assert code == 1
    assert "---" not in out
    site = args[3]
    assert err.splitlines()[-2:] == [
        "local: nothing written: 1 problem:",
        f"  local: site '{site}': field 'domains': '{domain}' is already configured in "
        f"environment {owner}; a domain belongs to one environment only",
    ]
    catalogue.assert_untouched()
    assert (checkout / "inventories/production/group_vars/all/sites.yml").read_bytes() == (
        production
    )


def test_site_add_with_another_environment_s_domain_creates_nothing(checkout, capsys):
    catalogue = Catalogue(with_production(checkout))
    code, _, err = run(
        checkout, capsys, "site", "add", "local", "acme", "acme.localhost", "harbor.example.com"
    )
    assert code == 1
    assert "'harbor.example.com' is already configured in environment 'production'" in err
    catalogue.assert_untouched()
    assert not (checkout / "settings" / "acme.py").exists()
    assert not (checkout / "project" / "sites" / "acme").exists()


def test_domain_add_next_to_another_environment_with_its_own_domains(checkout, capsys):
    catalogue = Catalogue(with_production(checkout))
    code, out, err = run(checkout, capsys, "domain", "add", "local", "harbor", "shop.localhost")
    assert code == 0, err
    assert out.splitlines()[-1] == f"wrote {CATALOGUE.as_posix()}"
    assert "shop.localhost" in catalogue.text


def test_removing_a_domain_that_another_environment_has_is_allowed(checkout, capsys):
    """The fix for a domain in two environments is to remove it from one of them."""
    with_production(checkout)
    text = Catalogue(checkout).text.replace(
        "[harbor.localhost, www.harbor.localhost]",
        "[harbor.localhost, www.harbor.localhost, www.harbor.example.com]",
    )
    catalogue = Catalogue(checkout, text)
    assert main(["--project", str(checkout), "check", "local"]) == 1
    capsys.readouterr()
    code, _, err = run(
        checkout, capsys, "domain", "remove", "local", "harbor", "www.harbor.example.com"
    )
    assert code == 0, err
    assert "www.harbor.example.com" not in catalogue.text
    assert main(["--project", str(checkout), "check"]) == 0


def test_site_add_brings_an_absent_site_back(checkout, capsys):
    catalogue = Catalogue(checkout, ODD)
    code, out, _ = run(checkout, capsys, "site", "add", "local", "ember")
    assert code == 0
    assert diff_lines(out) == [
        "-    state: absent   # back next season",
        "+    state: present  # back next season",
    ]
    assert "created" not in out
    assert catalogue.text == ODD.replace("state: absent   #", "state: present  #")


def test_site_add_of_a_present_site(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, _ = run(checkout, capsys, "site", "add", "local", "harbor", "harbor.localhost")
    assert code == 0
    assert out.splitlines() == [
        "local: site 'harbor': already present with these domains",
        "local: nothing to change; inventories/local/group_vars/all/sites.yml left as it was",
    ]
    code, _, err = run(checkout, capsys, "site", "add", "local", "harbor", "new.localhost")
    assert code == 1
    assert "sitekit domain add local harbor DOMAIN..." in err
    catalogue.assert_untouched()


#: Settings modules no Python reads: (text, the SITE_ID `site add` gives the next site).
UNPARSEABLE = {
    "nul_byte": (b"SITE_ID = 7\n\x00\n", 8),
    "deep_nesting": (b"SITE_ID = 7\nX = " + b"-" * 200_000 + b"1\n", 8),
    "huge_site_id": (b"SITE_ID = 99999999999\n", 4),
}


def sitekit(root, *args):
    """The real command, in its own process."""
    return subprocess.run([str(SITEKIT), "--project", str(root), *args],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("body", UNPARSEABLE.values(), ids=UNPARSEABLE)
def test_check_names_a_site_s_module_that_cannot_be_parsed(checkout, body):
    (checkout / "settings" / "harbor.py").write_bytes(body[0])
    check = sitekit(checkout, "check", "local")
    assert check.returncode == 1
    assert "Traceback" not in check.stderr
    lines = check.stderr.splitlines()
    assert lines[0] == "local: 1 problem:"
    assert lines[1].startswith("  local: site 'harbor': field 'name': settings/harbor.py ")


@pytest.mark.parametrize("body", UNPARSEABLE.values(), ids=UNPARSEABLE)
def test_site_add_does_not_depend_on_unrelated_modules(checkout, body):
    text, site_id = body
    (checkout / "settings" / "old.py").write_bytes(text)  # in no catalogue
    add = sitekit(checkout, "site", "add", "local", "acme", "acme.localhost")
    assert add.returncode == 0, add.stderr
    assert f"local: site 'acme': new to the codebase: SITE_ID {site_id}," in add.stdout
    check = sitekit(checkout, "check", "local")
    assert check.returncode == 0, check.stderr
    assert check.stderr.startswith("warning: site 'old' is in no environment's catalogue")


# --- site remove ---------------------------------------------------------------------------


def test_site_remove_marks_it_absent_and_says_what_the_deploy_will_do(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, out, err = run(checkout, capsys, "site", "remove", "local", "meadow")
    assert (code, err) == (0, "")
    assert diff_lines(out) == ["+    state: absent"]
    lines = out.splitlines()
    assert lines[lines.index("+    state: absent") + 1 :][3:] == [
        "local: site 'meadow': now absent (its domains and fields stay in "
        "inventories/local/group_vars/all/sites.yml)",
        "the next deploy of local (ansible-playbook -i inventories/local ansible/site.yml), on "
        "every host:",
        "  - stops its gunicorn master and removes its supervisor program",
        "  - removes its nginx server block (no longer served: meadow.localhost, "
        "www.meadow.localhost)",
        "  - removes its env file, gunicorn configuration, socket (run directory) and logs",
        "  - in system mode, removes its unix user and group sk-meadow",
        "kept: its rows in the database (its Site row and content), its code "
        "(settings/meadow.py, project/sites/meadow/)",
        "bring it back with: sitekit site add local meadow",
        "wrote inventories/local/group_vars/all/sites.yml",
    ]
    assert (checkout / "settings" / "meadow.py").is_file()
    assert (checkout / "project" / "sites" / "meadow").is_dir()
    assert main(["--project", str(checkout), "check", "local"]) == 0
    assert capsys.readouterr().out == "local: OK: 3 sites (2 present), 3 domains\n"

    again = Catalogue(checkout)
    code, out, _ = run(checkout, capsys, "site", "remove", "local", "meadow")
    assert code == 0
    assert out.splitlines()[0] == "local: site 'meadow': already absent"
    again.assert_untouched()

    code, out, _ = run(checkout, capsys, "site", "add", "local", "meadow")
    assert code == 0
    assert diff_lines(out) == ["-    state: absent", "+    state: present"]
    assert catalogue.text == catalogue.before.decode().replace(
        "    domains: [meadow.localhost, www.meadow.localhost]\n    workers: 2\n",
        "    domains: [meadow.localhost, www.meadow.localhost]\n    workers: 2\n"
        "    state: present\n",
    )


def test_site_remove_unknown_site(checkout, capsys):
    catalogue = Catalogue(checkout)
    code, _, err = run(checkout, capsys, "site", "remove", "local", "meadw")
    assert code == 1
    assert err.splitlines()[1] == (
        "  local: site 'meadw': no such site in local (did you mean 'meadow'? sites: harbor, "
        "meadow, ember); nothing to remove"
    )
    catalogue.assert_untouched()


# --- every command -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["domain", "add", "local", "harbor", "x.localhost"],
        ["domain", "remove", "local", "harbor", "www.harbor.localhost"],
        ["site", "add", "local", "acme", "acme.localhost"],
        ["site", "remove", "local", "harbor"],
    ],
)
def test_a_broken_catalogue_file_is_reported_without_a_traceback(checkout, capsys, args):
    catalogue = Catalogue(checkout, "sitekit_sites:\n  - name: harbor\n   domains: [\n")
    code, _, err = run(checkout, capsys, *args)
    assert code == 1
    assert err.startswith("local: nothing written: 1 problem:\n  local: ")
    assert "inventories/local/group_vars/all/sites.yml is not valid YAML" in err
    catalogue.assert_untouched()
    assert not (checkout / "settings" / "acme.py").exists()


def test_an_unknown_environment(checkout, capsys):
    code, _, err = run(checkout, capsys, "domain", "add", "prod", "harbor", "x.example.org")
    assert code == 1
    assert err == "sitekit: no environment 'prod' (known: local)\n"


def test_a_file_that_would_be_reformatted_is_left_alone(checkout, capsys):
    text = (
        "sitekit_sites:\n  - name: harbor\n    domains: [harbor.localhost,\n"
        "      www.harbor.localhost]\n"
    )
    catalogue = Catalogue(checkout, text)
    code, _, err = run(checkout, capsys, "domain", "add", "local", "harbor", "x.localhost")
    assert code == 1
    assert "without also reformatting line 3" in err
    catalogue.assert_untouched()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["domain"], "usage: sitekit domain"),
        (["domain", "add"], "usage: sitekit domain add"),
        (["domain", "remove"], "usage: sitekit domain remove"),
        (["site"], "usage: sitekit site"),
        (["site", "add"], "usage: sitekit site add"),
        (["site", "remove"], "usage: sitekit site remove"),
        (["site", "move"], "usage: sitekit site move"),
    ],
)
def test_help_of_each_edit_command(capsys, args, fragment):
    with pytest.raises(SystemExit) as exited:
        main([*args, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(fragment)
    if len(args) == 2:
        assert "--dry-run" in out
        assert "Exit status: 0 when the change was made" in " ".join(out.split())


@pytest.mark.parametrize(
    "args",
    [
        ["domain"],
        ["domain", "add", "local", "harbor"],
        ["domain", "remove", "local"],
        ["site", "add", "local"],
        ["site", "add", "local", "acme", "a.localhost", "--workers", "two"],
        ["site", "remove"],
    ],
)
def test_edit_usage_errors_exit_two(capsys, args):
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert "usage: sitekit" in capsys.readouterr().err


def test_domain_add_as_a_real_command(checkout):
    catalogue = Catalogue(checkout)
    proc = subprocess.run(
        [
            str(SITEKIT),
            "domain",
            "add",
            "local",
            "harbor",
            "Café.localhost",
            "--project",
            str(checkout),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (
        "'Café.localhost' normalised to 'xn--caf-dma.localhost' (internationalised names are "
        "stored as punycode)" in proc.stdout
    )
    assert "xn--caf-dma.localhost" in catalogue.text
    proc = subprocess.run(
        [
            str(SITEKIT),
            "--project",
            str(checkout),
            "domain",
            "remove",
            "local",
            "harbor",
            "harbor.localhost",
            "www.harbor.localhost",
            "xn--caf-dma.localhost",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "cannot remove the last domain" in proc.stderr


def test_a_failed_write_is_reported_and_leaves_nothing_behind(checkout, capsys, monkeypatch):
    catalogue = Catalogue(checkout)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr("sitekit.runtime.files.os.replace", refuse)
    code, _, err = run(checkout, capsys, "domain", "add", "local", "harbor", "x.localhost")
    assert code == 1
    assert err.startswith("sitekit: local: writing failed: [Errno 13] Permission denied")
    assert err.endswith("; nothing was written\n")
    catalogue.assert_untouched()
    # no temporary file; the lock file stays for the next edit
    assert sorted(os.listdir(catalogue.path.parent)) == [".sites.yml.lock", "main.yml", "sites.yml"]


def test_a_new_site_whose_catalogue_cannot_be_written_leaves_no_code(checkout, capsys, monkeypatch):
    catalogue = Catalogue(checkout)
    real_replace = os.replace

    def refuse_catalogue(src, dst):
        if Path(dst).name == "sites.yml":
            raise PermissionError(13, "Permission denied", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr("sitekit.runtime.files.os.replace", refuse_catalogue)
    code, out, err = run(checkout, capsys, "site", "add", "local", "acme", "acme.localhost")
    assert code == 1
    assert "nothing was written" in err
    assert "created" not in out
    catalogue.assert_untouched()
    assert not (checkout / "settings" / "acme.py").exists()
    assert not (checkout / "project" / "sites" / "acme").exists()
    assert not list(checkout.glob(".sitekit-new-*"))


def test_commands_find_the_checkout_from_a_subdirectory(checkout, capsys, monkeypatch):
    Catalogue(checkout)
    monkeypatch.chdir(checkout / "settings")
    assert main(["domain", "add", "local", "harbor", "x.localhost", "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
