"""A pooled master (settings.pool): several sites in one process, each request by its Host.

The deploy's commands run in fresh processes against one SQLite file, as in
test_django_deploy; requests go through project.wsgi (from many threads at once) and through a
real gunicorn with threaded workers.
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SITE_NAMES = ("harbor", "meadow", "ember")
BRAND_RE = re.compile(r'<span class="brand-name">([^<]*)</span>')

# The real site modules, as the deploy hands them to a pool.
REAL_POOL = [
    {"name": "harbor", "domains": ["harbor.localhost", "www.harbor.localhost"]},
    {"name": "meadow", "domains": ["meadow.localhost", "*.meadow.localhost"], "hsts": "host"},
    {"name": "ember", "domains": ["ember.localhost"], "hsts": "preload"},
]
# The same sites through tests.django.poolsites (extra pages: /visit everywhere, /tides on
# harbor), for the traffic of tests/django/pool_probe.py.
PROBE_POOL = [
    {**site, "settings_module": f"tests.django.poolsites.{site['name']}"} for site in REAL_POOL
]

WSGI_PROBE = """
import json, sys
from wsgiref.util import setup_testing_defaults
from project.wsgi import application

results = []
for host, path, *extra in json.loads(sys.argv[1]):
    environ = {"PATH_INFO": path, "HTTP_HOST": host}
    environ.update(extra[0] if extra else {})
    setup_testing_defaults(environ)
    seen = {}
    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
    body = b"".join(application(environ, start_response)).decode()
    results.append({"status": int(seen["status"].split()[0]), "headers": seen["headers"],
                    "body": body})
print(json.dumps(results))
"""


def with_sites(env, sites):
    """*env* with a pool's sites file holding *sites* (a list, or the file's text as written),
    next to its env file."""
    text = sites if isinstance(sites, str) else json.dumps(sites)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    path = Path(env["SITEKIT_ENV_FILE"]).parent / f"pool-{digest}.sites.json"
    path.write_text(text, encoding="utf-8")
    return {**env, "SITEKIT_POOL_SITES_FILE": str(path)}


@pytest.fixture(scope="module")
def pool_env(tmp_path_factory):
    """A database set up by the deploy's commands run with settings.pool; the pool's env."""
    root = tmp_path_factory.mktemp("pool")
    env_file = root / "pool.env"
    env_file.write_text(
        textwrap.dedent(f"""\
            SITEKIT_SECRET_KEY=pool-test-secret
            SITEKIT_DB_NAME={root}/sitekit.sqlite3
            SITEKIT_RELEASE_ID=20260101-pool
            SITEKIT_LOG_LEVEL=ERROR
            SITEKIT_POOL=shared
        """)
    )
    catalogue = root / "catalogue.json"
    catalogue.write_text(
        json.dumps({"sites": [{"name": n, "domain": f"{n}.localhost"} for n in SITE_NAMES]})
    )
    dropped = {"DJANGO_SETTINGS_MODULE", "PYTEST_VERSION"}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SITEKIT_") and key not in dropped
    }
    env.update(SITEKIT_ENV_FILE=str(env_file), DJANGO_SETTINGS_MODULE="settings.pool")
    env = with_sites(env, REAL_POOL)
    for args in (
        ["migrate", "--noinput"],
        ["sync_sites", "--catalogue", str(catalogue)],
        ["seed_demo", "--catalogue", str(catalogue)],
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return env


def wsgi(env, requests, **extra_env):
    result = subprocess.run(
        [sys.executable, "-c", WSGI_PROBE, json.dumps(requests)],
        cwd=REPO, env={**env, **extra_env}, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    responses = json.loads(result.stdout)
    for response in responses:
        response["header"] = {}
        for key, value in response["headers"]:
            response["header"].setdefault(key, []).append(value)
    return responses


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("harbor.localhost", "harbor"),
        ("www.harbor.localhost", "harbor"),
        ("meadow.localhost", "meadow"),
        ("any.meadow.localhost", "meadow"),
        ("ember.localhost", "ember"),
    ],
)
def test_each_pooled_site_serves_its_own_brand_content_and_404(pool_env, host, name):
    home, health, missing = wsgi(pool_env, [[host, "/"], [host, "/healthz"], [host, "/nope"]])
    brand = name.capitalize()

    assert home["status"] == 200
    assert BRAND_RE.findall(home["body"]) == [brand]
    assert f"Welcome to {brand}" in home["body"]
    assert home["body"].count("Welcome to ") == 1
    assert f'class="site site-{name}"' in home["body"]
    assert f"/static/{name}/site.css" in home["body"]

    assert json.loads(health["body"]) == {
        "site": name,
        "settings_module": "settings.pool",
        "release": "20260101-pool",
        "site_id": SITE_NAMES.index(name) + 1,
        "domain": f"{name}.localhost",
        "pool": "shared",
    }

    assert missing["status"] == 404
    assert "Page not found" in missing["body"]
    assert BRAND_RE.findall(missing["body"]) == [brand]

    for response in (home, health, missing):
        assert response["header"]["X-Sitekit-Site"] == [name]
        assert response["header"]["X-Sitekit-Pool"] == ["shared"]
        assert response["header"]["X-Sitekit-Release"] == ["20260101-pool"]


@pytest.mark.parametrize(
    "host",
    ["other.localhost", "harbor.localhost.evil.example", "meadowlocalhost", "localhost",
     "ember.localhost@evil.example"],
)
def test_a_host_no_pooled_site_claims_gets_400_and_no_page(pool_env, host):
    [response] = wsgi(pool_env, [[host, "/"]])
    assert response["status"] == 400
    assert "Bad Request" in response["body"]
    assert "X-Sitekit-Site" not in response["header"]
    assert BRAND_RE.findall(response["body"]) == []


def test_a_site_outside_the_pool_is_refused_by_it(pool_env):
    """A pool of harbor alone does not answer for meadow, though meadow is in the database."""
    harbor, meadow = wsgi(
        with_sites(pool_env, REAL_POOL[:1]), [["harbor.localhost", "/"], ["meadow.localhost", "/"]],
    )
    assert harbor["status"] == 200
    assert meadow["status"] == 400


def test_a_wildcard_domain_serves_its_subdomains_only_as_nginx_routes_them(pool_env):
    """meadow's domains are ``www.meadow.localhost`` and ``*.meadow.localhost``: Django's
    ALLOWED_HOSTS has ".meadow.localhost", which admits the apex too; the pool refuses it as
    nginx does."""
    pool = [REAL_POOL[0],
            {**REAL_POOL[1], "domains": ["www.meadow.localhost", "*.meadow.localhost"]}]
    hosts = ["news.meadow.localhost", "a.b.meadow.localhost", "NEWS.meadow.localhost.",
             "meadow.localhost", "MEADOW.localhost.", ".meadow.localhost", "harbor.localhost"]
    responses = wsgi(with_sites(pool_env, pool), [[host, "/healthz"] for host in hosts])
    answers = {host: (r["status"], r["header"].get("X-Sitekit-Site"))
               for host, r in zip(hosts, responses, strict=True)}
    assert answers == {
        "news.meadow.localhost": (200, ["meadow"]),
        "a.b.meadow.localhost": (200, ["meadow"]),
        "NEWS.meadow.localhost.": (200, ["meadow"]),
        "meadow.localhost": (400, None),
        "MEADOW.localhost.": (400, None),
        ".meadow.localhost": (400, None),
        "harbor.localhost": (200, ["harbor"]),
    }


def test_get_current_site_returns_the_requests_site_for_every_domain(pool_env):
    script = textwrap.dedent("""
        import json, django
        django.setup()
        from django.contrib.sites.shortcuts import get_current_site
        from django.test import RequestFactory
        from project.core.pool import PoolSiteMiddleware
        seen = {}
        def view(request):
            seen[request.get_host()] = [get_current_site(request).domain, request.site.domain]
        middleware = PoolSiteMiddleware(view)
        for host in ["www.harbor.localhost", "meadow.localhost", "ember.localhost",
                     "www.harbor.localhost"]:
            middleware(RequestFactory().get("/", HTTP_HOST=host))
        print(json.dumps(seen))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=pool_env, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "www.harbor.localhost": ["harbor.localhost", "harbor.localhost"],
        "meadow.localhost": ["meadow.localhost", "meadow.localhost"],
        "ember.localhost": ["ember.localhost", "ember.localhost"],
    }


def test_each_pooled_site_sends_its_own_hsts_policy_over_https(pool_env):
    https = {"wsgi.url_scheme": "https"}
    responses = wsgi(
        pool_env,
        [["harbor.localhost", "/healthz", https], ["meadow.localhost", "/healthz", https],
         ["ember.localhost", "/healthz", https], ["harbor.localhost", "/healthz"]],
        SITEKIT_PUBLIC_SCHEME="https",
    )
    sts = [r["header"].get("Strict-Transport-Security") for r in responses[:3]]
    assert sts == [
        ["max-age=31536000; includeSubDomains"],
        ["max-age=31536000"],
        ["max-age=31536000; includeSubDomains; preload"],
    ]
    # Plain http is redirected to the same host over https.
    assert responses[3]["status"] == 301
    assert responses[3]["header"]["Location"] == ["https://harbor.localhost/healthz"]


def test_csrf_uses_the_sites_own_cookie_and_origins(pool_env):
    """A POST passes only with the site's own CSRF cookie, from one of its own origins."""
    probe = textwrap.dedent("""
        import json, django
        django.setup()
        from django.test import Client
        out = {}
        client = Client(enforce_csrf_checks=True)
        client.get("/visit", HTTP_HOST="www.harbor.localhost")
        out["cookies"] = sorted(client.cookies)
        token = client.cookies["harbor_csrftoken"].value
        def post(host, origin, cookie_name="harbor_csrftoken"):
            c = Client(enforce_csrf_checks=True)
            c.cookies[cookie_name] = token
            return c.post("/visit", HTTP_HOST=host, HTTP_ORIGIN=origin,
                          HTTP_X_CSRFTOKEN=token).status_code
        out["own"] = post("harbor.localhost", "http://harbor.localhost")
        out["own_alias_origin"] = post("harbor.localhost", "http://www.harbor.localhost")
        out["other_site_origin"] = post("harbor.localhost", "http://meadow.localhost")
        out["other_site_cookie"] = post("harbor.localhost", "http://harbor.localhost",
                                        "meadow_csrftoken")
        print(json.dumps(out))
    """)
    env = with_sites(pool_env, PROBE_POOL)
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "cookies": ["harbor_csrftoken", "harbor_sessionid"],
        "own": 200,
        "own_alias_origin": 200,
        "other_site_origin": 403,
        "other_site_cookie": 403,
    }


def test_pool_checks_pass_and_refuse_djangos_cookie_middleware(pool_env, tmp_path):
    ok = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=pool_env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "System check identified no issues" in ok.stdout

    (tmp_path / "naive_pool.py").write_text(
        "from settings.pool import *\n"
        "MIDDLEWARE = [m.replace('project.core.pool.PoolSessionMiddleware',"
        " 'django.contrib.sessions.middleware.SessionMiddleware') for m in MIDDLEWARE]\n"
    )
    env = {**pool_env, "PYTHONPATH": str(tmp_path), "DJANGO_SETTINGS_MODULE": "naive_pool"}
    bad = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert bad.returncode == 1
    assert (
        "sitekit.E003) a pooled master must use project.core.pool.PoolSessionMiddleware, "
        "not django.contrib.sessions.middleware.SessionMiddleware" in bad.stderr
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "{path} is not valid JSON"),
        ("[]", "{path} must be a non-empty JSON list of sites"),
        ('[{"name": "nowhere", "domains": ["n.localhost"]}]',
         "{path}[0] (nowhere): cannot import settings.nowhere"),
        ('[{"name": "harbor", "domains": ["a.localhost"]},'
         ' {"name": "meadow", "domains": ["a.localhost"]}]',
         "{path}[1] (meadow): domain 'a.localhost' already belongs to 'harbor'"),
        (None, "SITEKIT_POOL_SITES_FILE {path} cannot be read: "),
    ],
)
def test_a_bad_pool_stops_the_master_at_start(pool_env, spec, message):
    env = with_sites(pool_env, spec or "")
    path = env["SITEKIT_POOL_SITES_FILE"]
    if spec is None:
        os.unlink(path)
    result = subprocess.run(
        [sys.executable, "-c", "import project.wsgi"], cwd=REPO,
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode != 0
    assert message.format(path=path) in result.stderr


def probe(target, env, threads, per_thread):
    result = subprocess.run(
        [sys.executable, "-m", "tests.django.pool_probe", target, str(threads), str(per_thread)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_concurrent_mixed_hosts_through_the_wsgi_app_never_mix_sites(pool_env):
    """16 threads, 4,000 requests over five hosts of three sites and five pages: each response
    has its Host's brand, content, Site, URLconf (/tides on harbor only), session and cookies."""
    env = with_sites(pool_env, PROBE_POOL)
    report = probe("inprocess", env, threads=16, per_thread=250)
    assert report["requests"] == 4000
    assert report["mismatch_count"] == 0, report["mismatches"]
    assert set(report["by_site"]) == set(SITE_NAMES)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_concurrent_mixed_hosts_on_threaded_gunicorn_workers_never_mix_sites(pool_env):
    """The same traffic over HTTP to gunicorn: 2 gthread workers with 8 threads each."""
    env = with_sites(pool_env, PROBE_POOL)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--threads", "8", "--worker-class", "gthread", "--log-level", "warning",
         "project.wsgi:application"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        report = probe(f"http://127.0.0.1:{port}", env, threads=16, per_thread=125)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert report["requests"] == 2000
    assert report["mismatch_count"] == 0, report["mismatches"]
    assert set(report["by_site"]) == set(SITE_NAMES)
