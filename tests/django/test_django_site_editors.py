"""``manage.py site_editors`` as an operator runs it: a fresh process on a migrated database
with the catalogue's Site rows; what it prints, its exit status, the rows it leaves."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("editors")
    catalogue = root / "catalogue.json"
    catalogue.write_text(json.dumps(
        {"sites": [{"name": n, "domain": f"{n}.localhost"} for n in ("harbor", "meadow", "ember")]}
    ))
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SITEKIT_") and k not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="settings.meadow",
        SITEKIT_SECRET_KEY="editors-test-secret",
        SITEKIT_DB_NAME=str(root / "db.sqlite3"),
        SITEKIT_LOG_LEVEL="ERROR",
    )
    for args in (["migrate", "--noinput", "-v0"], ["sync_sites", "--catalogue", str(catalogue)]):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        assert result.returncode == 0, result.stderr
    return env


def run(env, *args, password=None, stdin=None):
    extra = {} if password is None else {"SITEKIT_USER_PASSWORD": password}
    return subprocess.run(
        [sys.executable, "manage.py", "site_editors", *args], cwd=REPO, env={**env, **extra},
        capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL if stdin is None else stdin,
    )


def rows(env, sql, *params):
    with sqlite3.connect(env["SITEKIT_DB_NAME"]) as db:
        return db.execute(sql, params).fetchall()


def grants(env, username):
    return sorted(name for (name,) in rows(
        env,
        "SELECT s.domain FROM core_siteeditor g JOIN auth_user u ON u.id = g.user_id "
        "JOIN django_site s ON s.id = g.site_id WHERE u.username = ?", username))


def test_grant_create_list_and_revoke(env):
    created = run(env, "grant", "erin", "harbor", "ember", "--create", password="s3cret-pass")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "erin: created (staff)",
        "erin edits harbor: granted",
        "erin edits ember: granted",
    ]
    assert rows(env, "SELECT is_staff, is_superuser FROM auth_user WHERE username = 'erin'") == [
        (1, 0)]
    assert grants(env, "erin") == ["ember.localhost", "harbor.localhost"]

    # The password is the one given: Django's own check accepts it.
    check = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v0", "-c",
         "from django.contrib.auth import authenticate;"
         "print(bool(authenticate(username='erin', password='s3cret-pass')),"
         " bool(authenticate(username='erin', password='other')))"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert check.stdout.split() == ["True", "False"], check.stderr

    again = run(env, "grant", "erin", "harbor", "meadow")
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        "erin edits harbor: already granted", "erin edits meadow: granted"]

    listing = run(env, "list")
    assert listing.returncode == 0
    assert "harbor: erin" in listing.stdout.splitlines()
    assert "meadow: erin" in listing.stdout.splitlines()
    assert listing.stdout.splitlines()[-1] == "superusers (every site): (none)"
    assert run(env, "list", "ember").stdout.splitlines() == [
        "ember: erin", "superusers (every site): (none)"]

    revoked = run(env, "revoke", "erin", "harbor", "meadow")
    assert revoked.returncode == 0
    assert revoked.stdout.splitlines() == ["erin edits harbor: revoked",
                                           "erin edits meadow: revoked"]
    assert grants(env, "erin") == ["ember.localhost"]
    assert run(env, "revoke", "erin", "harbor").stdout.splitlines() == [
        "erin edits harbor: was not granted"]
    assert run(env, "list", "harbor").stdout.splitlines()[0] == "harbor: (none)"


def test_grant_makes_an_existing_user_staff(env):
    assert run(env, "grant", "frank", "meadow", "--create", password="pw-frank-1").returncode == 0
    subprocess.run([sys.executable, "manage.py", "shell", "-v0", "-c",
                    "from django.contrib.auth.models import User;"
                    "User.objects.filter(username='frank').update(is_staff=False)"],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=120)
    result = run(env, "grant", "frank", "ember")
    assert result.stdout.splitlines() == ["frank: now staff", "frank edits ember: granted"]
    assert rows(env, "SELECT is_staff FROM auth_user WHERE username = 'frank'") == [(1,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["grant", "nobody", "harbor"],
         "unknown user 'nobody' (grant --create makes it a staff user)"),
        (["revoke", "nobody", "harbor"],
         "unknown user 'nobody' (grant --create makes it a staff user)"),
        (["grant", "nobody", "atlantis", "--create"],
         "unknown site 'atlantis' (sites: ember, harbor, meadow)"),
        (["list", "atlantis"], "unknown site 'atlantis' (sites: ember, harbor, meadow)"),
        (["grant", "newcomer", "harbor", "--create"],
         "no password: set SITEKIT_USER_PASSWORD or run on a terminal to be asked"),
    ],
)
def test_errors_are_one_clear_line_and_exit_status_1(env, args, message):
    result = run(env, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == f"CommandError: {message}"
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert rows(env, "SELECT username FROM auth_user WHERE username IN ('nobody', 'newcomer')") \
        == []


def test_an_empty_password_creates_nobody(env):
    result = run(env, "grant", "gina", "harbor", "--create", password="")
    assert result.returncode == 1
    assert result.stderr.strip() == "CommandError: the password is empty"
    assert rows(env, "SELECT username FROM auth_user WHERE username = 'gina'") == []


def test_a_site_without_its_row_is_named(env):
    rows(env, "DELETE FROM django_site WHERE domain = 'ember.localhost'")
    try:
        result = run(env, "list", "ember")
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "CommandError: site 'ember' (SITE_ID 3) has no row in the Sites table: "
            "deploy it (sync_sites) first")
    finally:
        rows(env, "INSERT INTO django_site (id, domain, name) VALUES (3, 'ember.localhost', "
                  "'Ember')")
