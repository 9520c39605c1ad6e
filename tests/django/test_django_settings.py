"""Settings modules: per-site differences, environment handling, manage.py."""

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings import base
from settings.base import load_env_file, read_release_id

REPO = Path(__file__).resolve().parents[2]
SITE_NAMES = ("harbor", "meadow", "ember")
PER_SITE_SETTINGS = {
    "SITE_ID", "SITEKIT_SITE", "ROOT_URLCONF", "SITEKIT_BRAND",
    "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME",
}


def clean_env(tmp_path, **extra):
    """An environment with no SITEKIT_* variables and a throw-away database."""
    # PYTEST_VERSION would let the settings fall back to the test secret key.
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_") and key not in dropped
    }
    env["SITEKIT_DB_NAME"] = str(tmp_path / "db.sqlite3")
    env.update(extra)
    return env


def python(env, code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def settings_values(env, module="settings.harbor"):
    """Import a settings module in a fresh interpreter and return some of its values."""
    result = python(
        env,
        f"""
        import json, importlib
        m = importlib.import_module({module!r})
        db = m.DATABASES["default"]
        print(json.dumps({{
            "SECRET_KEY": m.SECRET_KEY, "FALLBACKS": m.SECRET_KEY_FALLBACKS, "DEBUG": m.DEBUG,
            "ALLOWED_HOSTS": m.ALLOWED_HOSTS, "DOMAINS": m.SITEKIT_DOMAINS,
            "CSRF_TRUSTED_ORIGINS": m.CSRF_TRUSTED_ORIGINS, "ENGINE": db["ENGINE"],
            "NAME": str(db["NAME"]), "HOST": db.get("HOST"), "PORT": db.get("PORT"),
            "USER": db.get("USER"), "PASSWORD": db.get("PASSWORD"),
            "CONN_MAX_AGE": db["CONN_MAX_AGE"], "OPTIONS": db.get("OPTIONS", {{}}),
            "STATIC_ROOT": str(m.STATIC_ROOT), "RELEASE": m.SITEKIT_RELEASE_ID,
            "LOG_LEVEL": m.LOGGING["root"]["level"],
        }}))
        """,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- Site modules -------------------------------------------------------------------


@pytest.mark.parametrize("name", SITE_NAMES)
def test_site_module_differs_from_base_only_in_per_site_settings(name):
    module = importlib.import_module(f"settings.{name}")
    names = {key for key in dir(module) if key.isupper()}
    differing = {key for key in names if getattr(module, key) is not getattr(base, key, None)}
    assert differing == PER_SITE_SETTINGS
    site, urlconf, brand = module.SITEKIT_SITE, module.ROOT_URLCONF, module.SITEKIT_BRAND
    assert site == name
    assert urlconf == f"project.sites.{name}.urls"
    assert brand["name"] == name.capitalize()
    cookies = module.SESSION_COOKIE_NAME, module.CSRF_COOKIE_NAME
    assert cookies == (f"{name}_sessionid", f"{name}_csrftoken")


def test_site_ids_are_unique_and_fixed():
    ids = {name: importlib.import_module(f"settings.{name}").SITE_ID for name in SITE_NAMES}
    assert ids == {"harbor": 1, "meadow": 2, "ember": 3}


def test_every_site_app_is_installed():
    apps = base.INSTALLED_APPS
    site_apps = [app for app in apps if app.startswith("project.sites.")]
    assert site_apps == sorted(f"project.sites.{name}" for name in SITE_NAMES)
    assert "django.contrib.sites" in apps
    assert "project.core" in apps


def test_release_middleware_is_outermost():
    assert base.MIDDLEWARE[0] == "project.core.middleware.ReleaseHeaderMiddleware"
    # then the Host, before anything reads it
    assert base.MIDDLEWARE[1] == "project.core.middleware.HostMiddleware"
    assert "django.contrib.sites.middleware.CurrentSiteMiddleware" in base.MIDDLEWARE


# --- Env file loader ----------------------------------------------------------------


def test_load_env_file(tmp_path):
    env_file = tmp_path / "site.env"
    env_file.write_text(
        "# comment\n"
        "\n"
        "SITEKIT_A=one\n"
        "  SITEKIT_B = two words  \n"
        "SITEKIT_C=x=y=z\n"
        "SITEKIT_D='quoted'\n"
        "   # indented comment\n"
        "SITEKIT_E=\n"
        "SITEKIT_KEPT=from-file\n"
    )
    environ = {"SITEKIT_KEPT": "from-environment"}
    loaded = load_env_file(env_file, environ)
    assert environ == {
        "SITEKIT_A": "one",
        "SITEKIT_B": "two words",
        "SITEKIT_C": "x=y=z",
        "SITEKIT_D": "'quoted'",
        "SITEKIT_E": "",
        "SITEKIT_KEPT": "from-environment",
    }
    assert loaded == ["SITEKIT_A", "SITEKIT_B", "SITEKIT_C", "SITEKIT_D", "SITEKIT_E"]


def render_env_file(shared):
    """A master's env file as roles/gunicorn_site/templates/site.env.j2 renders it (Jinja's
    options as Ansible's template module sets them), and the environment it is made from."""
    import jinja2

    from sitekit import model
    from sitekit.catalogue import validate

    checked = validate([{"name": "harbor", "domains": ["harbor.example", "*.harbor.example"]}],
                       env="local", project_root=REPO)
    master = model.resolve(checked, model.Layout(env="local")).master_of("harbor")
    environment = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True,
                                     undefined=jinja2.StrictUndefined)
    environment.filters["sitekit.deploy.master_env"] = (
        lambda site, base, shared: model.master_env(site, secret_key_base=base, shared=shared))
    template = environment.from_string(
        (REPO / "roles/gunicorn_site/templates/site.env.j2").read_text())
    text = template.render(site=master, sitekit_secret_key_base="k" * 40,
                           sitekit_shared_env=shared)
    return text, model.master_env(master, secret_key_base="k" * 40, shared=shared)


def test_an_env_file_reads_back_exactly_the_environment_it_was_rendered_from(tmp_path):
    """Every value the deploy accepts is one line of the env file, read back as it is."""
    shared = {
        "SITEKIT_DB_PASSWORD": "p=a#s s'w\"o\\rd $HOME ${X} `id` é 🙂 \\n",
        "SITEKIT_DB_USER": "#not-a-comment",
        "SITEKIT_DB_NAME": "",
        "SITEKIT_LOG_LEVEL": "INFO",
    }
    text, environ = render_env_file(shared)
    (tmp_path / "harbor.env").write_text(text)
    read = {}
    load_env_file(tmp_path / "harbor.env", read)
    assert read == environ
    assert {key: read[key] for key in shared} == shared


@pytest.mark.parametrize("value", ["pw\nEVIL=1", "pw\rEVIL=1", "pw\u2028EVIL=1", "pw\x85EVIL=1",
                                   "pw\x0bEVIL=1", "pw\x00", " pw", "pw\t"])
def test_a_value_an_env_file_cannot_hold_is_never_rendered(value):
    """A value with a line break would add a variable (EVIL); it is refused, not written, and
    the message names the variable without showing the value."""
    with pytest.raises(ValueError, match="cannot hold SITEKIT_DB_PASSWORD") as refused:
        render_env_file({"SITEKIT_DB_PASSWORD": value})
    assert "pw" not in str(refused.value) and "EVIL" not in str(refused.value)


@pytest.mark.parametrize("line", ["NO_EQUALS_SIGN", "=value"])
def test_load_env_file_rejects_malformed_lines(tmp_path, line):
    env_file = tmp_path / "site.env"
    env_file.write_text(f"OK=1\n{line}\n")
    with pytest.raises(ImproperlyConfigured, match=":2:"):
        load_env_file(env_file, {})


def test_load_env_file_missing(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        load_env_file(tmp_path / "missing.env", {})


def test_env_file_configures_settings(tmp_path):
    env_file = tmp_path / "harbor.env"
    env_file.write_text(
        textwrap.dedent(f"""\
            # written by the deploy
            SITEKIT_SECRET_KEY=file-secret
            SITEKIT_ALLOWED_HOSTS=harbor.example.com, .harbor.test
            SITEKIT_DOMAINS=harbor.example.com, *.harbor.test
            SITEKIT_CSRF_TRUSTED_ORIGINS=https://harbor.example.com
            SITEKIT_DB_NAME={tmp_path}/shared.sqlite3
            SITEKIT_STATIC_ROOT={tmp_path}/static
            SITEKIT_LOG_LEVEL=warning
            SITEKIT_RELEASE_ID=from-file
        """)
    )
    env = clean_env(tmp_path, SITEKIT_ENV_FILE=str(env_file), SITEKIT_RELEASE_ID="from-env")
    del env["SITEKIT_DB_NAME"]
    values = settings_values(env)
    assert values["SECRET_KEY"] == "file-secret"
    assert values["ALLOWED_HOSTS"] == ["harbor.example.com", ".harbor.test"]
    assert values["DOMAINS"] == ["harbor.example.com", "*.harbor.test"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://harbor.example.com"]
    assert values["NAME"] == f"{tmp_path}/shared.sqlite3"
    assert values["STATIC_ROOT"] == f"{tmp_path}/static"
    assert values["LOG_LEVEL"] == "WARNING"
    assert values["RELEASE"] == "from-env"  # the process environment wins over the file


# --- Environment variables ----------------------------------------------------------


def test_defaults(tmp_path):
    env = clean_env(tmp_path, SITEKIT_SECRET_KEY="s")
    del env["SITEKIT_DB_NAME"]
    values = settings_values(env)
    assert values["DEBUG"] is False
    assert values["ALLOWED_HOSTS"] == [".localhost", "localhost", "127.0.0.1", "[::1]"]
    assert values["DOMAINS"] == []  # development: ALLOWED_HOSTS alone
    assert values["CSRF_TRUSTED_ORIGINS"] == []
    assert values["ENGINE"] == "django.db.backends.sqlite3"
    assert values["NAME"] == str(REPO / "db.sqlite3")
    assert values["OPTIONS"]["timeout"] == 20
    assert values["CONN_MAX_AGE"] == 0
    assert values["STATIC_ROOT"] == str(REPO / "static")
    assert values["LOG_LEVEL"] == "INFO"


def test_secret_key_fallbacks_accept_what_the_other_master_signed(tmp_path):
    """A site moved between its pool and its own master: the deploy lists the other master's
    key in SITEKIT_SECRET_KEY_FALLBACKS, and what that master signed stays valid."""
    assert settings_values(clean_env(tmp_path, SITEKIT_SECRET_KEY="s"))["FALLBACKS"] == []
    env = clean_env(tmp_path, SITEKIT_SECRET_KEY="own", SITEKIT_SECRET_KEY_FALLBACKS="pool,old")
    assert settings_values(env)["FALLBACKS"] == ["pool", "old"]
    result = python(env, """
        import django, os
        os.environ["DJANGO_SETTINGS_MODULE"] = "settings.harbor"
        django.setup()
        from django.core import signing
        token = signing.dumps({"user": 7}, key="pool", salt="session")
        print(signing.loads(token, salt="session"))
        try:
            signing.loads(signing.dumps({"user": 7}, key="other", salt="session"), salt="session")
        except signing.BadSignature:
            print("refused")
        """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["{'user':", "7}", "refused"]


def test_postgresql(tmp_path):
    env = clean_env(
        tmp_path,
        SITEKIT_SECRET_KEY="s",
        SITEKIT_DB_ENGINE="postgresql",
        SITEKIT_DB_NAME="sites",
        SITEKIT_DB_HOST="db.internal",
        SITEKIT_DB_PORT="5433",
        SITEKIT_DB_USER="sitekit",
        SITEKIT_DB_PASSWORD="pw",
    )
    values = settings_values(env, "settings.ember")
    assert values["ENGINE"] == "django.db.backends.postgresql"
    assert (values["NAME"], values["HOST"], values["PORT"]) == ("sites", "db.internal", "5433")
    assert (values["USER"], values["PASSWORD"]) == ("sitekit", "pw")
    assert values["CONN_MAX_AGE"] == 60
    env["SITEKIT_DB_CONN_MAX_AGE"] = "0"
    assert settings_values(env, "settings.ember")["CONN_MAX_AGE"] == 0


def test_missing_secret_key_is_an_error(tmp_path):
    result = python(clean_env(tmp_path), "import settings.harbor")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SITEKIT_SECRET_KEY" in result.stderr


def test_debug_allows_missing_secret_key(tmp_path):
    values = settings_values(clean_env(tmp_path, SITEKIT_DEBUG="1"))
    assert values["DEBUG"] is True
    assert values["SECRET_KEY"].startswith("django-insecure-")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SITEKIT_DEBUG", "maybe", "SITEKIT_DEBUG must be 1 or 0, got 'maybe'"),
        ("SITEKIT_DEBUG", "Maybe", "SITEKIT_DEBUG must be 1 or 0, got 'maybe'"),
        ("SITEKIT_DEBUG", "2", "SITEKIT_DEBUG must be 1 or 0, got '2'"),
        ("SITEKIT_DB_ENGINE", "oracle",
         "SITEKIT_DB_ENGINE must be 'sqlite' or 'postgresql', got 'oracle'"),
        ("SITEKIT_DB_CONN_MAX_AGE", "soon",
         "SITEKIT_DB_CONN_MAX_AGE must be an integer, got 'soon'"),
        ("SITEKIT_PUBLIC_SCHEME", "ftp",
         "SITEKIT_PUBLIC_SCHEME must be one of http, https, got 'ftp'"),
        ("SITEKIT_HSTS", "all", "SITEKIT_HSTS must be one of subdomains, preload, host, got 'all'"),
    ],
)
def test_a_bad_value_stops_the_site_naming_the_variable(tmp_path, name, value, message):
    env = clean_env(tmp_path, SITEKIT_SECRET_KEY="s", **{name: value})
    result = python(env, "import settings.harbor")
    assert result.returncode != 0
    assert message in result.stderr


def test_values_are_read_as_written(tmp_path):
    """Spaces around a value or a list item do not count, a blank value means the default, and
    a value starting with $ is that value (never the name of another variable)."""
    env = clean_env(
        tmp_path,
        SITEKIT_SECRET_KEY="$ecret",
        ecret="another variable",
        SITEKIT_DEBUG=" Yes ",
        SITEKIT_ALLOWED_HOSTS=" a.example , ,b.example ",
        SITEKIT_CSRF_TRUSTED_ORIGINS=" ",
        SITEKIT_DB_CONN_MAX_AGE="",
    )
    values = settings_values(env)
    assert values["SECRET_KEY"] == "$ecret"
    assert values["DEBUG"] is True
    assert values["ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert values["CSRF_TRUSTED_ORIGINS"] == []
    assert values["CONN_MAX_AGE"] == 0
    env.update(SITEKIT_ALLOWED_HOSTS="", SITEKIT_DEBUG="off")
    values = settings_values(env)
    assert values["ALLOWED_HOSTS"] == [".localhost", "localhost", "127.0.0.1", "[::1]"]
    assert values["DEBUG"] is False


# --- Release id ---------------------------------------------------------------------


def test_release_id_prefers_release_file(tmp_path):
    (tmp_path / "RELEASE").write_text("20260315-0a1b2c3\n")
    assert read_release_id(tmp_path, {"SITEKIT_RELEASE_ID": "env"}) == "20260315-0a1b2c3"


def test_release_id_from_environment_then_dev(tmp_path):
    assert read_release_id(tmp_path, {"SITEKIT_RELEASE_ID": " r42 "}) == "r42"
    assert read_release_id(tmp_path, {}) == "dev"
    (tmp_path / "RELEASE").write_text("\n")
    assert read_release_id(tmp_path, {}) == "dev"


def test_release_id_must_fit_in_a_header(tmp_path):
    with pytest.raises(ImproperlyConfigured):
        read_release_id(tmp_path, {"SITEKIT_RELEASE_ID": "two words"})


# --- manage.py ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SITE_NAMES)
def test_manage_py_check(tmp_path, name):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings", f"settings.{name}"],
        cwd=REPO,
        env=clean_env(tmp_path, SITEKIT_SECRET_KEY="check-secret"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_migrations_are_complete(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=REPO,
        env=clean_env(tmp_path, SITEKIT_SECRET_KEY="check-secret"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
