"""Mixed-host traffic against a pooled master, from many threads at once.

    python -m tests.django.pool_probe inprocess THREADS REQUESTS_PER_THREAD
    python -m tests.django.pool_probe http://127.0.0.1:PORT THREADS REQUESTS_PER_THREAD

``inprocess`` calls project.wsgi.application from the threads (DJANGO_SETTINGS_MODULE must be
settings.pool with the pool of tests.django.poolsites); a URL sends real HTTP requests to a
server of that pool. Every response is checked against what its Host must get; the last line
is JSON: {"requests": N, "by_site": {...}, "mismatches": [first 20 descriptions]}.
"""

import http.client
import json
import random
import re
import sys
import threading
from collections import Counter
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

# Host -> (site, canonical domain, brand); every site of the pool, by each of its domains.
HOSTS = {
    "harbor.localhost": ("harbor", "harbor.localhost", "Harbor"),
    "www.harbor.localhost": ("harbor", "harbor.localhost", "Harbor"),
    "meadow.localhost": ("meadow", "meadow.localhost", "Meadow"),
    "news.meadow.localhost": ("meadow", "meadow.localhost", "Meadow"),  # by *.meadow.localhost
    "ember.localhost": ("ember", "ember.localhost", "Ember"),
}
SITE_IDS = {"harbor": 1, "meadow": 2, "ember": 3}
PATHS = ("/", "/healthz", "/missing-page", "/tides", "/visit")
BRAND_RE = re.compile(r'<span class="brand-name">([^<]*)</span>')


def wsgi_client():
    from wsgiref.util import setup_testing_defaults

    from project.wsgi import application

    def request(host, path, cookie):
        environ = {"PATH_INFO": path, "HTTP_HOST": host, "HTTP_COOKIE": cookie}
        setup_testing_defaults(environ)
        seen = {}

        def start_response(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            seen["headers"] = headers

        chunks = application(environ, start_response)
        try:
            body = b"".join(chunks).decode()
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return seen["status"], seen["headers"], body

    return request


def http_client(url):
    parts = urlsplit(url)
    local = threading.local()

    def request(host, path, cookie):
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            local.conn.request("GET", path, headers={"Host": host, "Cookie": cookie})
            response = local.conn.getresponse()
            body = response.read().decode()
        except (OSError, http.client.HTTPException):
            local.conn.close()
            local.conn = None
            raise
        if response.getheader("Connection", "").lower() == "close":
            local.conn.close()
            local.conn = None
        return response.status, response.getheaders(), body

    return request


def expected_problems(host, path, status, headers, body, visits):
    """What is wrong with one response (empty when it is what ``host`` must get)."""
    site, canonical, brand = HOSTS[host]
    header = {}
    for key, value in headers:
        header.setdefault(key.lower(), []).append(value)
    problems = []
    if header.get("x-sitekit-site") != [site]:
        problems.append(f"X-Sitekit-Site {header.get('x-sitekit-site')}")
    if (path == "/tides" and site != "harbor") or path == "/missing-page":
        if status != 404 or BRAND_RE.findall(body) != [brand]:
            problems.append(f"404 expected with brand {brand}: {status} {BRAND_RE.findall(body)}")
    elif path == "/":
        if status != 200 or BRAND_RE.findall(body) != [brand]:
            problems.append(f"brand {BRAND_RE.findall(body)} status {status}")
        if f"Welcome to {brand}" not in body or body.count("Welcome to ") != 1:
            problems.append("another site's announcements")
        if f"site-{site}" not in body or f"/static/{site}/site.css" not in body:
            problems.append("another site's templates")
    elif path == "/healthz":
        data = json.loads(body)
        want = {"site": site, "site_id": SITE_IDS[site], "domain": canonical}
        got = {key: data.get(key) for key in want}
        if status != 200 or got != want:
            problems.append(f"healthz {got}")
    elif path == "/tides":
        if status != 200 or json.loads(body) != {"tides": "high at noon", "url": "/tides"}:
            problems.append(f"tides {status}")
    elif path == "/visit":
        data = json.loads(body)
        if status != 200 or data != {
            "visits": visits, "visit_url": "/visit", "site_domain": canonical
        }:
            problems.append(f"visit {data} (expected visit {visits})")
        cookies = SimpleCookie()
        for value in header.get("set-cookie", []):
            cookies.load(value)
        if sorted(cookies) != sorted([f"{site}_sessionid", f"{site}_csrftoken"]):
            problems.append(f"cookies {sorted(cookies)}")
        for morsel in cookies.values():
            if morsel["domain"]:
                problems.append(f"cookie {morsel.key} has Domain={morsel['domain']}")
    return problems


def worker(request, count, seed, results, lock):
    rng = random.Random(seed)
    jar = {}  # this client's cookies, every site's: each site must read only its own
    visits = Counter()
    by_site = Counter()
    mismatches = []
    for _ in range(count):
        host = rng.choice(list(HOSTS))
        path = rng.choice(PATHS)
        site = HOSTS[host][0]
        cookie = "; ".join(f"{k}={v}" for k, v in sorted(jar.items()))
        try:
            status, headers, body = request(host, path, cookie)
        except Exception as exc:
            mismatches.append(f"{host}{path}: {type(exc).__name__}: {exc}")
            continue
        if path == "/visit":
            visits[site] += 1
        problems = expected_problems(host, path, status, headers, body, visits[site])
        if problems:
            mismatches.append(f"{host}{path}: {'; '.join(problems)}")
        by_site[site] += 1
        for key, value in headers:
            if key.lower() == "set-cookie":
                parsed = SimpleCookie()
                parsed.load(value)
                jar.update({name: morsel.value for name, morsel in parsed.items()})
    with lock:
        results["requests"] += count
        results["by_site"].update(by_site)
        results["mismatches"].extend(mismatches)


def main(target, threads, per_thread):
    request = wsgi_client() if target == "inprocess" else http_client(target)
    results = {"requests": 0, "by_site": Counter(), "mismatches": []}
    lock = threading.Lock()
    pool = [
        threading.Thread(target=worker, args=(request, per_thread, seed, results, lock))
        for seed in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results["mismatch_count"] = len(results["mismatches"])
    results["mismatches"] = results["mismatches"][:20]
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
