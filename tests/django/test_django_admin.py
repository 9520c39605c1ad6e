"""The admin of every site: its editors only, its announcements only, in its brand; sessions
bound to their site; the Sites table read-only; the same through a pooled master.

Requests go through Django's test client (the whole middleware stack of the settings in
force): dedicated sites with their own settings (use_site), a pooled master with settings.pool's
middleware and one client, so both sites are served by the same handler in this process.
"""

import importlib
import json

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.contrib.sites.models import Site
from django.test import Client

from project.core.models import Announcement, SiteEditor

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
REFUSED = "This account cannot edit this site."


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def people(sites):
    """alice edits harbor; bob edits harbor and meadow; carol is staff with no site; root is a
    superuser; dave is not staff."""
    def user(name, *site_names, **flags):
        account = User.objects.create_user(name, password=PASSWORD, **flags)
        for site in site_names:
            SiteEditor.objects.create(user=account, site=sites[site])
        return account

    return {
        "alice": user("alice", "harbor", is_staff=True),
        "bob": user("bob", "harbor", "meadow", is_staff=True),
        "carol": user("carol", is_staff=True),
        "root": user("root", is_staff=True, is_superuser=True),
        "dave": user("dave", "harbor"),
    }


def login(client, username, host, password=PASSWORD):
    client.get("/admin/login/", HTTP_HOST=host)
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        HTTP_HOST=host,
    )


def logged_in(response):
    return response.status_code == 302 and response["Location"] == "/admin/"


# --- dedicated sites ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "editable"),
    [
        ("alice", {"harbor"}),
        ("bob", {"harbor", "meadow"}),
        ("carol", set()),
        ("root", {"harbor", "meadow", "ember"}),
    ],
)
def test_a_staff_user_logs_in_to_the_admin_of_the_sites_granted_only(
    use_site, people, username, editable
):
    for name in ("harbor", "meadow", "ember"):
        use_site(name)
        client = Client()
        response = login(client, username, f"{name}.localhost")
        if name in editable:
            assert logged_in(response), (name, response.status_code)
            index = client.get("/admin/", HTTP_HOST=f"{name}.localhost")
            assert index.status_code == 200
            brand = name.capitalize()
            assert f"{brand} administration" in index.text
            assert f"<title>Site administration | {brand} admin</title>" in index.text
            assert "Announcements" in index.text
        else:
            assert response.status_code == 200, name
            assert REFUSED in response.text, name
            assert client.get("/admin/", HTTP_HOST=f"{name}.localhost").status_code == 302
            assert "_auth_user_id" not in client.session


def test_a_revoked_grant_ends_the_editors_access_at_the_next_request(use_site, people):
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "alice", "harbor.localhost"))
    assert client.get("/admin/", HTTP_HOST="harbor.localhost").status_code == 200
    SiteEditor.objects.filter(user=people["alice"]).delete()
    response = client.get("/admin/core/announcement/", HTTP_HOST="harbor.localhost")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    login_page = client.get("/admin/login/", HTTP_HOST="harbor.localhost")
    assert login_page.status_code == 200
    assert "not authorized to access this page" in login_page.text


def test_wrong_password_and_non_staff_get_djangos_own_refusal(use_site, people):
    use_site("harbor")
    for username, password in (("alice", "wrong"), ("dave", PASSWORD)):
        response = login(Client(), username, "harbor.localhost", password)
        assert response.status_code == 200
        assert "Please enter the correct username and password for a staff account" in (
            response.text)
        assert REFUSED not in response.text


def test_a_refused_editor_already_logged_in_elsewhere_gets_the_login_form_not_a_loop(
    use_site, people
):
    """Anonymous on meadow (the harbor session does not count there): the login page, 200."""
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "alice", "harbor.localhost"))
    use_site("meadow")
    index = client.get("/admin/", HTTP_HOST="meadow.localhost", follow=True)
    assert index.status_code == 200
    assert index.redirect_chain == [("/admin/login/?next=/admin/", 302)]
    assert "Meadow administration" in index.text


def test_editors_see_and_create_the_current_sites_announcements_only(use_site, sites, people):
    mine = Announcement.objects.create(site=sites["harbor"], title="Harbor regatta")
    theirs = Announcement.objects.create(site=sites["meadow"], title="Meadow fair")
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "bob", "harbor.localhost"))
    host = {"HTTP_HOST": "harbor.localhost"}

    listing = client.get("/admin/core/announcement/", **host)
    assert listing.status_code == 200
    assert "Harbor regatta" in listing.text
    assert "Meadow fair" not in listing.text

    form = client.get("/admin/core/announcement/add/", **host)
    assert form.status_code == 200
    assert 'name="site"' not in form.text  # not editable
    created = client.post(
        "/admin/core/announcement/add/",
        {"title": "Tall ships", "body": "", "published_at_0": "2026-01-01",
         "published_at_1": "12:00:00"},
        **host,
    )
    assert created.status_code == 302
    assert Announcement.objects.get(title="Tall ships").site == sites["harbor"]

    assert client.get(f"/admin/core/announcement/{mine.pk}/change/", **host).status_code == 200
    for path in ("change", "delete", "history"):
        response = client.get(f"/admin/core/announcement/{theirs.pk}/{path}/", **host)
        assert response.status_code == 404, path
    response = client.post(
        f"/admin/core/announcement/{theirs.pk}/change/", {"title": "Taken over"}, **host)
    assert response.status_code == 404
    response = client.post(f"/admin/core/announcement/{theirs.pk}/delete/", {"post": "yes"},
                           **host)
    assert response.status_code == 404
    assert Announcement.objects.get(pk=theirs.pk).title == "Meadow fair"


def test_a_superuser_creates_announcements_for_the_site_whose_admin_it_uses(use_site, sites,
                                                                            people):
    use_site("ember")
    client = Client()
    assert logged_in(login(client, "root", "ember.localhost"))
    response = client.post(
        "/admin/core/announcement/add/",
        {"title": "Sparks", "site": sites["harbor"].pk, "published_at_0": "2026-01-01",
         "published_at_1": "12:00:00"},
        HTTP_HOST="ember.localhost",
    )
    assert response.status_code == 302
    assert Announcement.objects.get(title="Sparks").site == sites["ember"]


def test_editors_cannot_reach_users_grants_or_sites(use_site, people):
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "alice", "harbor.localhost"))
    index = client.get("/admin/", HTTP_HOST="harbor.localhost")
    assert "Users" not in index.text
    assert "Site editors" not in index.text
    for path in ("/admin/auth/user/", f"/admin/auth/user/{people['alice'].pk}/change/",
                 "/admin/core/siteeditor/", "/admin/core/siteeditor/add/",
                 "/admin/sites/site/", "/admin/auth/group/"):
        assert client.get(path, HTTP_HOST="harbor.localhost").status_code == 403, path


def test_superusers_grant_sites_on_the_users_page(use_site, sites, people):
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "root", "harbor.localhost"))
    page = client.get(f"/admin/auth/user/{people['carol'].pk}/change/",
                      HTTP_HOST="harbor.localhost")
    assert page.status_code == 200
    assert "sites this user edits" in page.text.lower()
    grants = client.get("/admin/core/siteeditor/", HTTP_HOST="harbor.localhost")
    assert grants.status_code == 200
    assert "bob" in grants.text


# --- the Sites table belongs to the catalogue ---------------------------------------------------


def test_the_sites_table_is_read_only_even_for_superusers(use_site, sites, people):
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "root", "harbor.localhost"))
    host = {"HTTP_HOST": "harbor.localhost"}
    listing = client.get("/admin/sites/site/", **host)
    assert listing.status_code == 200
    assert "meadow.localhost" in listing.text
    assert "overwritten at the next deployment" in listing.text
    assert "/admin/sites/site/add/" not in listing.text
    assert 'name="action"' not in listing.text  # no "delete selected"

    meadow = sites["meadow"].pk
    view = client.get(f"/admin/sites/site/{meadow}/change/", **host)
    assert view.status_code == 200
    assert "overwritten at the next deployment" in view.text
    assert 'name="domain"' not in view.text
    assert client.get("/admin/sites/site/add/", **host).status_code == 403
    assert client.post(f"/admin/sites/site/{meadow}/change/",
                       {"domain": "evil.example", "name": "x"}, **host).status_code == 403
    assert client.post(f"/admin/sites/site/{meadow}/delete/", {"post": "yes"},
                       **host).status_code == 403
    assert Site.objects.get(pk=meadow).domain == "meadow.localhost"


# --- sessions bound to their site -------------------------------------------------------------


def test_a_session_from_one_site_is_anonymous_under_another_sites_cookie(use_site, people):
    use_site("harbor")
    harbor = Client()
    assert logged_in(login(harbor, "bob", "harbor.localhost"))
    key = harbor.cookies["harbor_sessionid"].value

    use_site("meadow")
    meadow = Client()
    meadow.cookies["meadow_sessionid"] = key
    response = meadow.get("/admin/", HTTP_HOST="meadow.localhost")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    # Refused, not destroyed: meadow drops its cookie, harbor's session still works there.
    assert response.cookies["meadow_sessionid"].value == ""
    assert Session.objects.filter(session_key=key).exists()
    use_site("harbor")
    assert harbor.get("/admin/", HTTP_HOST="harbor.localhost").status_code == 200


def test_a_session_without_its_site_counts_nowhere(use_site, people):
    """A login session that records no site (made before sessions were bound) is anonymous."""
    use_site("harbor")
    client = Client()
    assert logged_in(login(client, "root", "harbor.localhost"))
    session = client.session
    del session["_sitekit_site_id"]
    session.save()
    assert client.get("/admin/", HTTP_HOST="harbor.localhost").status_code == 302


# --- a pooled master ----------------------------------------------------------------------------

POOL = [
    {"name": "harbor", "domains": ["harbor.localhost", "www.harbor.localhost"]},
    {"name": "meadow", "domains": ["meadow.localhost"]},
]


@pytest.fixture
def pooled(settings, monkeypatch, sites, tmp_path):
    """The settings of a pooled master of harbor and meadow (settings.pool's middleware)."""
    sites_file = tmp_path / "shared.sites.json"
    sites_file.write_text(json.dumps(POOL))
    monkeypatch.setenv("SITEKIT_POOL", "shared")
    monkeypatch.setenv("SITEKIT_POOL_SITES_FILE", str(sites_file))
    import settings.pool as pool_module

    pool_module = importlib.reload(pool_module)
    for key in ("SITEKIT_POOL", "SITEKIT_POOL_SITES", "SITEKIT_SITE", "SITEKIT_BRAND",
                "ROOT_URLCONF", "SITEKIT_DOMAINS", "ALLOWED_HOSTS", "SESSION_COOKIE_NAME",
                "CSRF_COOKIE_NAME", "MIDDLEWARE", "SILENCED_SYSTEM_CHECKS"):
        setattr(settings, key, getattr(pool_module, key))
    del settings.SITE_ID
    Site.objects.clear_cache()
    yield
    Site.objects.clear_cache()


def test_a_pooled_master_refuses_an_editor_of_one_site_on_the_other(pooled, people):
    client = Client()  # one handler: the same middleware instances serve both sites
    assert logged_in(login(client, "alice", "harbor.localhost"))
    index = client.get("/admin/", HTTP_HOST="www.harbor.localhost")
    assert index.status_code == 200
    assert "Harbor administration" in index.text
    assert index["X-Sitekit-Site"] == "harbor"

    refused = login(client, "alice", "meadow.localhost")
    assert refused.status_code == 200
    assert REFUSED in refused.text
    assert "Meadow administration" in refused.text
    # Still logged in on harbor, never on meadow.
    assert client.get("/admin/", HTTP_HOST="meadow.localhost").status_code == 302
    assert client.get("/admin/", HTTP_HOST="harbor.localhost").status_code == 200


def test_a_pooled_master_lets_an_editor_of_both_sites_and_superusers_in_each(pooled, people):
    for username in ("bob", "root"):
        client = Client()
        for name in ("harbor", "meadow"):
            assert logged_in(login(client, username, f"{name}.localhost")), (username, name)
            index = client.get("/admin/", HTTP_HOST=f"{name}.localhost")
            assert f"{name.capitalize()} administration" in index.text
    refused = login(Client(), "carol", "harbor.localhost")
    assert REFUSED in refused.text


def test_a_pooled_master_binds_sessions_to_their_site(pooled, people):
    harbor = Client()
    assert logged_in(login(harbor, "bob", "harbor.localhost"))
    key = harbor.cookies["harbor_sessionid"].value
    meadow = Client()
    meadow.cookies["meadow_sessionid"] = key
    response = meadow.get("/admin/", HTTP_HOST="meadow.localhost")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/"
    assert harbor.get("/admin/", HTTP_HOST="harbor.localhost").status_code == 200


def test_a_pooled_master_shows_each_site_its_own_announcements(pooled, sites, people):
    Announcement.objects.create(site=sites["harbor"], title="Harbor regatta")
    theirs = Announcement.objects.create(site=sites["meadow"], title="Meadow fair")
    client = Client()
    assert logged_in(login(client, "bob", "harbor.localhost"))
    listing = client.get("/admin/core/announcement/", HTTP_HOST="harbor.localhost")
    assert "Harbor regatta" in listing.text
    assert "Meadow fair" not in listing.text
    response = client.get(f"/admin/core/announcement/{theirs.pk}/change/",
                          HTTP_HOST="harbor.localhost")
    assert response.status_code == 404


def test_a_pooled_master_files_each_upload_under_the_requests_site(pooled, sites, people,
                                                                     settings, tmp_path):
    import io
    import os

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    settings.MEDIA_ROOT = str(tmp_path)
    client = Client()  # one handler serves both sites
    for name in ("harbor", "meadow"):
        assert logged_in(login(client, "bob", f"{name}.localhost"))
        buffer = io.BytesIO()
        Image.frombytes("RGB", (8, 8), os.urandom(192)).save(buffer, "PNG")
        response = client.post(
            "/admin/core/announcement/add/",
            {"title": f"From {name}", "image": SimpleUploadedFile("x.png", buffer.getvalue()),
             "published_at_0": "2026-01-01", "published_at_1": "12:00:00"},
            HTTP_HOST=f"{name}.localhost")
        assert response.status_code == 302, response.text[-2000:]
        stored = Announcement.objects.get(title=f"From {name}")
        assert stored.site == sites[name]
        assert stored.image.name.startswith(f"{name}/announcements/")
        assert (tmp_path / stored.image.name).is_file()


def test_pages_without_a_session_cookie_stay_cookie_free(use_site, sites):
    """The session check reads no session a request does not send: the public pages carry no
    ``Vary: Cookie`` and set no cookie."""
    use_site("harbor")
    response = Client().get("/", HTTP_HOST="harbor.localhost")
    assert response.status_code == 200
    assert "Vary" not in response.headers
    assert not response.cookies
