"""Host and X-Forwarded-* headers on the local stack: what reaches Django is what nginx says.

Unknown or malformed hosts never reach a master (nothing in any gunicorn access log); a site's
host, however written, is that site; what a client claims in X-Forwarded-* never counts. What
Django makes of them over https is tested at the end of test_local_stack.py (it re-deploys).
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.stack import SPOOFED_FORWARDING

pytestmark = pytest.mark.e2e


def access_logs(stack, sites) -> dict[str, list[str]]:
    """Every site's gunicorn access log, line by line."""
    return {
        s["name"]: (stack.root / "log" / "sites" / s["name"] / "access.log")
        .read_text().splitlines()
        for s in sites
    }


def logged_after(stack, sites, before: dict[str, list[str]]) -> dict[str, list[str]]:
    """The lines each site's access log gained since *before*, once every site that gained
    one has written it (a worker logs a request just after it has answered it)."""
    deadline = time.monotonic() + 5
    while True:
        now = access_logs(stack, sites)
        if all(len(now[s["name"]]) > len(before[s["name"]]) for s in sites) or (
            time.monotonic() > deadline
        ):
            return {name: lines[len(before[name]):] for name, lines in now.items()}
        time.sleep(0.1)


def misdirected(answer) -> bool:
    """nginx's own 421 Misdirected Request (its https default server), not a site's answer."""
    return answer is not None and answer[0] == 421 and "X-Sitekit-Site" not in answer[1]


def test_unknown_and_malformed_hosts_never_reach_a_site(stack, sites):
    site = sites[0]["domains"][0]
    before = access_logs(stack, sites)
    closed = [
        "unknown.example.org",
        "127.0.0.1",
        f"127.0.0.1:{stack.port}",
        "[::1]",
        f"evil.{site}",
        f"{site}.evil.example",
        f"{site}@evil.example",
    ]
    for host in closed:
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert stack.raw(request) is None, host
    # An absolute request line names the host; the Host header does not count.
    for target in ("http://evil.example/", "https://evil.example/", "http://evil.example:80/"):
        request = f"GET {target} HTTP/1.1\r\nHost: {site}\r\nConnection: close\r\n\r\n"
        assert stack.raw(request) is None, target
        assert misdirected(stack.raw(request, server_name=site)), target  # over https: 421
    for host in closed:  # over https, with the site's name in SNI: 421 Misdirected Request
        request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        assert misdirected(stack.raw(request, server_name=site)), host
    assert stack.raw("GET / HTTP/1.0\r\n\r\n") is None  # no Host at all
    # Requests nginx refuses itself (400), without asking any site.
    refused = [
        "GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: {site}\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: {site}..\r\nConnection: close\r\n\r\n",
        f"GET / HTTP/1.1\r\nHost: evil.example/{site}\r\nConnection: close\r\n\r\n",
    ]
    for request in refused:
        for server_name in (None, site):
            status, headers = stack.raw(request, server_name=server_name)
            assert status == 400 and "X-Sitekit-Site" not in headers, request
    assert access_logs(stack, sites) == before

    # The same check sees a request that does reach a site (and the one line it logs).
    for s in sites:
        assert stack.request(s["domains"][0])[0] == 200
    assert [len(lines) for lines in logged_after(stack, sites, before).values()] == [1] * len(sites)


def test_a_sites_host_written_any_way_is_that_site(stack, sites):
    for s in sites:
        domain = s["domains"][0]
        for host in (domain.upper(), f"{domain}.", f"{domain}:{stack.tls_port}", f"{domain}.:443"):
            status, headers, _ = stack.request(host, "/healthz")
            assert (status, headers.get("X-Sitekit-Site")) == (200, s["name"]), host
    # The request line names one site and the Host header another (or none of ours): the
    # request line wins.
    first, second = sites[0], sites[1]
    for host in ("evil.example", second["domains"][0]):
        request = (f"GET http://{first['domains'][0]}/healthz HTTP/1.1\r\nHost: {host}\r\n"
                   "Connection: close\r\n\r\n")
        status, headers = stack.raw(request, server_name=first["domains"][0])
        assert (status, headers.get("X-Sitekit-Site")) == (200, first["name"]), host


def test_a_clients_forwarded_headers_never_reach_gunicorn(stack, sites):
    site = sites[0]
    before = access_logs(stack, [site])
    status, headers, _ = stack.request(site["domains"][0], "/", headers=SPOOFED_FORWARDING)
    assert (status, headers["X-Sitekit-Site"]) == (200, site["name"])
    logged = logged_after(stack, [site], before)[site["name"]]
    assert len(logged) == 1, logged
    # the master logs the client address nginx saw, not the one the client claimed
    assert logged[0].startswith("127.0.0.1 "), logged[0]
    assert "203.0.113.9" not in logged[0]
