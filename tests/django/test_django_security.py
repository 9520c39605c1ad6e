"""Production settings pass Django's deployment checks; sites never share a login."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from sitekit import model
from sitekit.inventory import check, find
from sitekit.runtime import rules
from sitekit.runtime.rules import RESERVED_NAMES

REPO = Path(__file__).resolve().parents[2]

# Every site module under settings/, so that a new site is covered without editing this file.
# The shared modules (base, pool, dev) are not sites.
SITE_MODULES = sorted(
    path.stem
    for path in (REPO / "settings").glob("*.py")
    if path.stem != "__init__" and path.stem not in RESERVED_NAMES
)


def catalogue_sites():
    """Each site of the catalogues by name, production's first, then the other environments'."""
    found = {}
    for env in ("production", "staging", "vagrant", "rehearsal", "local"):
        result = check(find(env, REPO))
        assert result.ok, [str(p) for p in result.problems]
        for site in result.sites:
            if site.domains:
                found.setdefault(site.name, site)
    return found


def production_env(tmp_path, name, **extra):
    """The environment the deploy gives site `name` over https: what its env file holds."""
    site = catalogue_sites()[name]
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_") and key not in dropped
    }
    env.update(
        SITEKIT_PUBLIC_SCHEME="https",
        SITEKIT_SECRET_KEY=model.site_secret(secrets.token_urlsafe(48), name),
        SITEKIT_ALLOWED_HOSTS=",".join(rules.allowed_hosts(site.domains)),
        SITEKIT_CSRF_TRUSTED_ORIGINS=",".join(rules.origins(site.domains, "https", 443)),
        SITEKIT_HSTS=site.hsts,
        SITEKIT_HSTS_SECONDS="31536000",
        SITEKIT_DEBUG="0",
        SITEKIT_DB_NAME=str(tmp_path / "db.sqlite3"),
    )
    env.update(extra)
    return env


def check_deploy(env, module):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING",
         "--settings", f"settings.{module}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_deploy_check_passes_for_a_pool_of_every_sites_production_settings(tmp_path):
    """settings.pool over https, serving every production site, as a pool's env file sets it."""
    sites = [catalogue_sites()[name].as_dict() for name in SITE_MODULES]
    env = production_env(tmp_path, SITE_MODULES[0])
    for key in ("SITEKIT_ALLOWED_HOSTS", "SITEKIT_CSRF_TRUSTED_ORIGINS", "SITEKIT_HSTS"):
        env.pop(key)
    sites_file = tmp_path / "shared.sites.json"
    sites_file.write_text(model.pool_sites_json(sites, "https", 443))
    env.update(
        SITEKIT_POOL="shared",
        SITEKIT_POOL_SITES_FILE=str(sites_file),
        SITEKIT_SECRET_KEY=model.site_secret(secrets.token_urlsafe(48), "shared"),
    )
    result = check_deploy(env, "pool")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_site_module_is_in_a_catalogue():
    assert len(SITE_MODULES) >= 3
    assert set(SITE_MODULES) <= set(catalogue_sites())


# --- manage.py check --deploy --------------------------------------------------------------


@pytest.mark.parametrize("module", SITE_MODULES)
def test_deploy_check_passes_for_every_sites_production_settings(tmp_path, module):
    result = check_deploy(production_env(tmp_path, module), module)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.parametrize("hsts", ["subdomains", "preload", "host"])
def test_deploy_check_passes_with_each_hsts_policy(tmp_path, hsts):
    result = check_deploy(production_env(tmp_path, "harbor", SITEKIT_HSTS=hsts), "harbor")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("weakness", "extra", "expected"),
    [
        ("a short secret key", {"SITEKIT_SECRET_KEY": "too-short"}, ["security.W009"]),
        (
            "the development key",
            {"SITEKIT_SECRET_KEY": "django-insecure-" + secrets.token_hex(32)},
            ["security.W009"],
        ),
        ("DEBUG on", {"SITEKIT_DEBUG": "1"}, ["security.W018"]),
        (
            "plain HTTP",
            {"SITEKIT_PUBLIC_SCHEME": "http"},
            ["security.W004", "security.W008", "security.W012", "security.W016"],
        ),
        ("HSTS turned off", {"SITEKIT_HSTS_SECONDS": "0"}, ["security.W004"]),
    ],
)
def test_deploy_check_fails_for_a_weak_setup(tmp_path, weakness, extra, expected):
    result = check_deploy(production_env(tmp_path, "harbor", **extra), "harbor")
    assert result.returncode != 0, weakness
    for check_id in expected:
        assert check_id in result.stderr, (weakness, result.stderr)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([], ["SESSION_COOKIE_NAME is 'sessionid'", "CSRF_COOKIE_NAME is 'csrftoken'"]),
        (
            ['SESSION_COOKIE_NAME = "harbor_sessionid"', 'CSRF_COOKIE_NAME = "harbor_csrftoken"'],
            ["SESSION_COOKIE_NAME is 'harbor_sessionid'"],
        ),
        (
            ['SESSION_COOKIE_NAME = "acme_sessionid"', 'CSRF_COOKIE_NAME = "acme_csrftoken"',
             'SESSION_COOKIE_DOMAIN = ".example.com"'],
            ["SESSION_COOKIE_DOMAIN is '.example.com'"],
        ),
    ],
)
def test_a_site_module_without_its_own_host_only_cookies_fails_the_checks(
    tmp_path, lines, expected
):
    """A site module written by hand without its cookie lines never passes `manage.py check`."""
    package = tmp_path / "handwritten"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "acme.py").write_text(
        "from settings.base import *\n"
        "SITE_ID = 99\n"
        'SITEKIT_SITE = "acme"\n'
        'ROOT_URLCONF = "project.sites.harbor.urls"\n'
        'SITEKIT_BRAND = {"name": "Acme"}\n' + "".join(f"{line}\n" for line in lines)
    )
    env = production_env(tmp_path, "harbor", PYTHONPATH=f"{REPO}:{tmp_path}")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings", "handwritten.acme"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0, result.stdout
    for message in expected:
        assert message in result.stderr, result.stderr
    assert "sitekit.E00" in result.stderr


# --- one login per site ----------------------------------------------------------------------


def _signed_in(client, host):
    response = client.get("/", HTTP_HOST=host)
    assert response.status_code == 200
    return response.wsgi_request.user.is_authenticated


@pytest.mark.django_db
def test_a_login_on_one_site_is_no_login_on_another(client, settings, sites, use_site):
    """The same browser, one shared database: signed in on harbor is signed in on harbor only."""
    user = get_user_model().objects.create_user("ann", password=secrets.token_urlsafe())
    base_secret_key = settings.SECRET_KEY

    use_site("harbor")
    client.force_login(user)
    assert set(client.cookies) == {"harbor_sessionid"}
    assert _signed_in(client, "harbor.localhost")
    harbor_session = client.cookies["harbor_sessionid"].value

    # The browser sends harbor's cookie along (as it would a cookie set for a parent domain
    # both share): meadow does not read it, whatever the keys (here both sites have the same).
    use_site("meadow")
    assert not _signed_in(client, "meadow.localhost")

    # harbor's session id presented under meadow's cookie name: the session row is in the
    # shared database, but its content is signed with harbor's key, and the deploy gives each
    # site its own key.
    settings.SECRET_KEY = secrets.token_hex(32)
    client.cookies["meadow_sessionid"] = harbor_session
    assert not _signed_in(client, "meadow.localhost")

    use_site("harbor")
    settings.SECRET_KEY = base_secret_key
    assert _signed_in(client, "harbor.localhost")  # still signed in where it happened
