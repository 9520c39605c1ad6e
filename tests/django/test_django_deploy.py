"""The deploy sequence, run the way the deploy runs it: manage.py commands in fresh
processes against one shared SQLite file, then requests through project.wsgi."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE_NAMES = ("harbor", "meadow", "ember")

WSGI_PROBE = """
import json, sys
from wsgiref.util import setup_testing_defaults
from project.wsgi import application

results = {}
for path in sys.argv[2:]:
    environ = {"PATH_INFO": path, "HTTP_HOST": sys.argv[1]}
    setup_testing_defaults(environ)
    seen = {}
    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, dict(headers)
    body = b"".join(application(environ, start_response)).decode()
    results[path] = {"status": seen["status"], "headers": seen["headers"], "body": body}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """Run migrate, sync_sites, seed_demo and collectstatic once for the module."""
    root = tmp_path_factory.mktemp("deploy")
    env_file = root / "site.env"
    env_file.write_text(
        textwrap.dedent(f"""\
            SITEKIT_SECRET_KEY=deploy-test-secret
            SITEKIT_DB_NAME={root}/sitekit.sqlite3
            SITEKIT_STATIC_ROOT={root}/static
            SITEKIT_RELEASE_ID=20260101-deadbee
            SITEKIT_LOG_LEVEL=WARNING
        """)
    )
    catalogue = root / "catalogue.json"
    catalogue.write_text(
        json.dumps(
            {"sites": [{"name": n, "domain": f"{n}.localhost", "state": "present"}
                       for n in SITE_NAMES]}
        )
    )
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_") and key not in dropped
    }
    env.update(SITEKIT_ENV_FILE=str(env_file), DJANGO_SETTINGS_MODULE="settings.harbor")

    def manage(*args):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout.strip().splitlines()

    outputs = {
        "migrate": manage("migrate", "--noinput"),
        "sync_sites": manage("sync_sites", "--catalogue", str(catalogue)),
        "sync_sites_again": manage("sync_sites", "--catalogue", str(catalogue)),
        "seed_demo": manage("seed_demo", "--catalogue", str(catalogue)),
        "seed_demo_again": manage("seed_demo", "--catalogue", str(catalogue)),
        "collectstatic": manage("collectstatic", "--noinput"),
    }
    return {"root": root, "env": env, "outputs": outputs}


def test_commands_report_changes_then_none(deployed):
    outputs = deployed["outputs"]
    assert outputs["sync_sites"][-1] == "sites: 2 created, 1 updated, 0 unchanged"
    assert outputs["sync_sites_again"][-1] == "sites: 0 created, 0 updated, 3 unchanged"
    assert outputs["seed_demo"][-1] == "announcements: 3 created"
    assert outputs["seed_demo_again"][-1] == "announcements: 0 created"


def test_collectstatic_collects_every_site(deployed):
    static = deployed["root"] / "static"
    for name in SITE_NAMES:
        assert (static / name / "site.css").is_file()
        assert (static / name / "logo.svg").is_file()
    assert (static / "core" / "base.css").is_file()


@pytest.mark.parametrize("name", SITE_NAMES)
def test_wsgi_application_serves_each_site(deployed, name):
    env = {**deployed["env"], "DJANGO_SETTINGS_MODULE": f"settings.{name}"}
    result = subprocess.run(
        [sys.executable, "-c", WSGI_PROBE, f"{name}.localhost", "/", "/healthz", "/missing"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    pages = json.loads(result.stdout)
    brand = name.capitalize()

    home = pages["/"]
    assert home["status"] == "200 OK"
    assert f'<span class="brand-name">{brand}</span>' in home["body"]
    assert f"Welcome to {brand}" in home["body"]

    assert json.loads(pages["/healthz"]["body"]) == {
        "site": name,
        "settings_module": f"settings.{name}",
        "release": "20260101-deadbee",
        "site_id": SITE_NAMES.index(name) + 1,
        "domain": f"{name}.localhost",
    }

    missing = pages["/missing"]
    assert missing["status"] == "404 Not Found"
    assert "Page not found" in missing["body"]
    assert f'<span class="brand-name">{brand}</span>' in missing["body"]

    for page in pages.values():
        assert page["headers"]["X-Sitekit-Release"] == "20260101-deadbee"
        assert page["headers"]["X-Sitekit-Site"] == name


def test_wsgi_requires_settings_module(deployed):
    env = {k: v for k, v in deployed["env"].items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", "import project.wsgi"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SETTINGS_MODULE is not set" in result.stderr


def test_a_wildcard_domain_serves_its_subdomains_only_as_nginx_routes_them(deployed):
    """A site of ``www.harbor.example`` and ``*.harbor.example`` (its master's environment as the
    deploy resolves it): Django's ALLOWED_HOSTS has ".harbor.example", which admits the apex
    too; the apex, which nginx does not route to the site, is refused all the same."""
    from sitekit import model
    from sitekit.catalogue import validate

    checked = validate([{"name": "harbor", "domains": ["www.harbor.example", "*.harbor.example"]}],
                       env="local", project_root=REPO)
    assert checked.ok, [str(p) for p in checked.problems]
    master = model.resolve(checked, model.Layout(env="local", tls="off")).master_of("harbor")
    env = {**deployed["env"], **master["env"]}
    assert env["SITEKIT_ALLOWED_HOSTS"] == "www.harbor.example,.harbor.example"

    def get(host):
        result = subprocess.run([sys.executable, "-c", WSGI_PROBE, host, "/healthz"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["/healthz"]

    for host in ("www.harbor.example", "a.harbor.example", "b.a.harbor.example",
                 "A.Harbor.Example.", "a.harbor.example:80"):
        page = get(host)
        assert (page["status"], page["headers"]["X-Sitekit-Site"]) == ("200 OK", "harbor"), host
    for host in ("harbor.example", "HARBOR.example.", "harbor.example:80", ".harbor.example",
                 "evil.example"):
        page = get(host)
        assert page["status"] == "400 Bad Request", host
        assert page["headers"]["X-Sitekit-Site"] == "harbor"  # the site said so, not nginx
        assert "Bad Request" in page["body"]
