"""Local development: manage.py picks the settings from SITEKIT_SITE (a site's name or its
SITE_ID), or else serves every local site by Host (settings.dev)."""

import http.client
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BRAND_RE = re.compile(r'<span class="brand-name">([^<]*)</span>')


@pytest.fixture
def dev_env(tmp_path):
    """A developer's shell: no DJANGO_SETTINGS_MODULE, no SITEKIT_* but a scratch database."""
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_") and key not in dropped
    }
    env["SITEKIT_DB_NAME"] = str(tmp_path / "dev.sqlite3")
    return env


def manage(env, *args, **extra):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env={**env, **extra},
        capture_output=True, text=True, timeout=120, check=False,
    )


SHOW = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.SITE_ID)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("harbor", "settings.harbor 1"), ("meadow", "settings.meadow 2"), ("1", "settings.harbor 1"),
     ("3", "settings.ember 3")],
)
def test_sitekit_site_picks_the_settings_by_name_or_site_id(dev_env, value, expected):
    result = manage(dev_env, "shell", "-c", SHOW, SITEKIT_SITE=value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


def test_an_unknown_sitekit_site_is_refused_naming_the_sites(dev_env):
    result = manage(dev_env, "shell", "-c", SHOW, SITEKIT_SITE="nowhere")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "SITEKIT_SITE='nowhere': no site of that name or SITE_ID in settings/ "
        "(sites: ember (3), harbor (1), meadow (2))"
    )
    result = manage(dev_env, "shell", "-c", SHOW, SITEKIT_SITE="9")
    assert result.returncode == 1
    assert "SITEKIT_SITE='9': no site of that name or SITE_ID" in result.stderr


def test_django_settings_module_wins_over_sitekit_site(dev_env):
    result = manage(
        dev_env, "shell", "-c", SHOW, SITEKIT_SITE="harbor",
        DJANGO_SETTINGS_MODULE="settings.ember", SITEKIT_SECRET_KEY="explicit-secret",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "settings.ember 3"


def test_without_either_every_local_site_is_served_by_host(dev_env):
    result = manage(
        dev_env, "shell", "-c",
        "from django.conf import settings; "
        "print(settings.SETTINGS_MODULE, [s['name'] for s in settings.SITEKIT_POOL_SITES], "
        "hasattr(settings, 'SITE_ID'), settings.DEBUG)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "settings.dev ['harbor', 'meadow', 'ember'] False True"
    )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port, host, path="/"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def runserver(env, port, **extra):
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise AssertionError(server.stderr.read().decode()) from None
            if time.monotonic() > deadline:
                server.kill()
                raise AssertionError("runserver did not start") from None
            time.sleep(0.2)


def stop(server):
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture
def dev_database(dev_env):
    """migrate, sync_sites and seed_demo as a developer runs them (no --catalogue needed)."""
    for args in (["migrate", "--noinput"], ["sync_sites"], ["seed_demo"]):
        result = manage(dev_env, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    return dev_env


def test_runserver_serves_every_site_by_host(dev_database):
    port = free_port()
    server = runserver(dev_database, port)
    try:
        pages = {
            host: get(port, host)
            for host in ("harbor.localhost", "www.meadow.localhost", "ember.localhost")
        }
        missing = get(port, "meadow.localhost", "/no-such-page")
        unknown = get(port, "localhost")
    finally:
        stop(server)
    for host, brand in (("harbor.localhost", "Harbor"), ("www.meadow.localhost", "Meadow"),
                        ("ember.localhost", "Ember")):
        status, body = pages[host]
        assert status == 200, body[:500]
        assert BRAND_RE.findall(body) == [brand]
        assert f"Welcome to {brand}" in body
    assert missing[0] == 404
    assert unknown[0] == 400


def test_runserver_with_sitekit_site_serves_that_site(dev_database):
    port = free_port()
    server = runserver(dev_database, port, SITEKIT_SITE="meadow")
    try:
        status, body = get(port, "localhost")
    finally:
        stop(server)
    assert status == 200
    assert BRAND_RE.findall(body) == ["Meadow"]
    assert "Welcome to Meadow" in body
