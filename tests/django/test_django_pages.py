"""Pages of every site rendered through the full middleware stack."""

import json
from datetime import timedelta

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from project.core import views
from project.core.models import Announcement

pytestmark = pytest.mark.django_db

SITE_NAMES = ("harbor", "meadow", "ember")
BRANDS = {"harbor": "Harbor", "meadow": "Meadow", "ember": "Ember"}


def domain(name):
    return f"{name}.localhost"


def brand_span(name):
    return f'<span class="brand-name">{BRANDS[name]}</span>'


@pytest.fixture
def announcements(sites):
    """Two announcements per site, titled after the site."""
    created = {}
    for name, site in sites.items():
        created[name] = [
            Announcement.objects.create(site=site, title=f"{name} news {n}", body=f"{name} body")
            for n in (1, 2)
        ]
    return created


@pytest.mark.parametrize("name", SITE_NAMES)
def test_home_shows_only_own_brand_and_announcements(client, use_site, announcements, name):
    use_site(name)
    response = client.get("/", HTTP_HOST=domain(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert brand_span(name) in html
    assert f"/static/{name}/site.css" in html
    assert f"{name} news 1" in html
    assert f"{name} news 2" in html
    for other in SITE_NAMES:
        if other != name:
            assert f"{other} news" not in html
            assert brand_span(other) not in html
            assert f"/static/{other}/site.css" not in html


def test_home_lists_newest_first(client, use_site, sites):
    use_site("meadow")
    now = timezone.now()
    meadow = sites["meadow"]
    Announcement.objects.create(site=meadow, title="older", published_at=now - timedelta(days=1))
    Announcement.objects.create(site=meadow, title="newer", published_at=now)
    html = client.get("/", HTTP_HOST=domain("meadow")).content.decode()
    assert html.index("newer") < html.index("older")


def test_home_without_announcements(client, use_site, sites):
    use_site("ember")
    response = client.get("/", HTTP_HOST=domain("ember"))
    assert response.status_code == 200
    assert "Nothing has been announced on Ember yet" in response.content.decode()


def test_announcement_text_is_escaped(client, use_site, sites):
    use_site("harbor")
    Announcement.objects.create(site=sites["harbor"], title="<script>alert(1)</script>")
    html = client.get("/", HTTP_HOST=domain("harbor")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("name", SITE_NAMES)
def test_branded_404(client, use_site, sites, settings, name):
    use_site(name)
    response = client.get("/no/such/page", HTTP_HOST=domain(name))
    assert response.status_code == 404
    html = response.content.decode()
    assert brand_span(name) in html
    assert "Page not found" in html
    assert f"/static/{name}/site.css" in html
    assert response["X-Sitekit-Release"] == settings.SITEKIT_RELEASE_ID
    assert response["X-Sitekit-Site"] == name


def test_404_escapes_the_path(client, use_site, sites):
    use_site("harbor")
    response = client.get("/<b>bold</b>", HTTP_HOST=domain("harbor"))
    assert response.status_code == 404
    assert "<b>bold</b>" not in response.content.decode()


class BrokenManager:
    def all(self):
        raise RuntimeError("boom")

    def filter(self, **lookups):
        raise RuntimeError("boom")


class BrokenAnnouncement:
    objects = on_site = BrokenManager()


@pytest.mark.parametrize("name", SITE_NAMES)
def test_branded_500(client, use_site, sites, settings, monkeypatch, name):
    use_site(name)
    monkeypatch.setattr(views, "Announcement", BrokenAnnouncement)
    client.raise_request_exception = False
    response = client.get("/", HTTP_HOST=domain(name))
    assert response.status_code == 500
    html = response.content.decode()
    assert brand_span(name) in html
    assert "Server error" in html
    assert f"/static/{name}/site.css" in html
    assert response["X-Sitekit-Release"] == settings.SITEKIT_RELEASE_ID
    assert response["X-Sitekit-Site"] == name


def test_branded_500_when_site_row_is_missing(client, use_site, db):
    # Before sync_sites has run for a site, CurrentSiteMiddleware fails; the error
    # page must still render with the brand.
    use_site("ember")
    client.raise_request_exception = False
    response = client.get("/", HTTP_HOST=domain("ember"))
    assert response.status_code == 500
    assert brand_span("ember") in response.content.decode()
    assert response["X-Sitekit-Site"] == "ember"


def test_server_error_renders_branded_page(use_site, sites):
    use_site("meadow")
    request = RequestFactory().get("/", HTTP_HOST=domain("meadow"))
    response = views.server_error(request)
    assert response.status_code == 500
    assert brand_span("meadow") in response.content.decode()


def test_server_error_falls_back_to_plain_page(use_site, sites, monkeypatch):
    use_site("meadow")

    def broken_render(*args, **kwargs):
        raise RuntimeError("template engine down")

    monkeypatch.setattr(views, "render", broken_render)
    request = RequestFactory().get("/", HTTP_HOST=domain("meadow"))
    response = views.server_error(request)
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"Server error" in response.content


@pytest.mark.parametrize("name", SITE_NAMES)
def test_healthz(client, use_site, sites, settings, name):
    module = use_site(name)
    response = client.get("/healthz", HTTP_HOST=domain(name))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {
        "site": name,
        "settings_module": f"settings.{name}",
        "release": settings.SITEKIT_RELEASE_ID,
        "site_id": module.SITE_ID,
        "domain": domain(name),
    }
    assert "no-cache" in response["Cache-Control"]


def test_healthz_is_read_only(client, use_site, sites):
    use_site("harbor")
    response = client.post("/healthz", HTTP_HOST=domain("harbor"))
    assert response.status_code == 405


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("get", "/", "harbor.localhost", 200),
        ("get", "/healthz", "harbor.localhost", 200),
        ("head", "/healthz", "harbor.localhost", 200),
        ("get", "/missing", "harbor.localhost", 404),
        ("get", "/healthz/", "harbor.localhost", 404),
        ("post", "/", "harbor.localhost", 405),
        ("get", "/", "evil.example.com", 400),  # not in ALLOWED_HOSTS
    ],
)
def test_release_header_on_every_response(
    client, use_site, sites, settings, method, path, host, status
):
    use_site("harbor")
    response = getattr(client, method)(path, HTTP_HOST=host)
    assert response.status_code == status
    assert response["X-Sitekit-Release"] == settings.SITEKIT_RELEASE_ID
    assert response["X-Sitekit-Site"] == "harbor"


def test_release_header_follows_release_id(client, use_site, sites, settings):
    use_site("meadow")
    settings.SITEKIT_RELEASE_ID = "20260101-abc123"
    response = client.get("/", HTTP_HOST=domain("meadow"))
    assert response["X-Sitekit-Release"] == "20260101-abc123"
    assert "20260101-abc123" in response.content.decode()


def test_csrf_failure_carries_release_header(use_site, sites, settings):
    use_site("harbor")
    response = Client(enforce_csrf_checks=True).post("/", HTTP_HOST=domain("harbor"))
    assert response.status_code == 403
    assert response["X-Sitekit-Release"] == settings.SITEKIT_RELEASE_ID


def test_security_headers(client, use_site, sites):
    use_site("harbor")
    response = client.get("/", HTTP_HOST=domain("harbor"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_jinja_url_global(use_site):
    from project.core.jinja2 import url

    use_site("ember")
    assert url("core:healthz") == "/healthz"
    assert url("core:home") == "/"
