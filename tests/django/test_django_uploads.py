"""Uploads: an announcement's image, through the site's admin, into the site's own prefix of the
storage; images only, within the size limit, stored under a name and extension nobody chose."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from project.core.models import Announcement, SiteEditor

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def image(fmt="PNG", size=(40, 30), name="photo.png"):
    """A real image of random pixels (which do not compress)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue())


@pytest.fixture
def editor(use_site, sites, django_user_model):
    """A client logged in to ``site``'s admin as its editor: ``editor("harbor")``."""
    def login(site):
        use_site(site)
        user = django_user_model.objects.create_user(f"ed-{site}", password=PASSWORD,
                                                     is_staff=True)
        SiteEditor.objects.create(user=user, site=sites[site])
        client = Client()
        host = f"{site}.localhost"
        client.get("/admin/login/", HTTP_HOST=host)
        response = client.post("/admin/login/", {"username": user.username, "password": PASSWORD,
                                                 "next": "/admin/"}, HTTP_HOST=host)
        assert response.status_code == 302, response.text
        return client
    return login


def add(client, site, title, upload):
    return client.post(
        "/admin/core/announcement/add/",
        {"title": title, "body": "", "image": upload, "image_alt": "a red square",
         "published_at_0": "2026-01-01", "published_at_1": "12:00:00"},
        HTTP_HOST=f"{site}.localhost",
    )


def test_an_image_goes_into_the_sites_own_prefix_and_shows_on_its_home_page(editor, media):
    client = editor("harbor")
    response = add(client, "harbor", "Regatta", image())
    assert response.status_code == 302, response.text
    stored = Announcement.objects.get(title="Regatta")
    name = stored.image.name
    assert name.startswith("harbor/announcements/") and name.endswith(".png")
    assert "photo" not in name  # the uploader's name plays no part
    path = media / name
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o640
    assert stored.image.url == f"/media/{name}"
    home = client.get("/", HTTP_HOST="harbor.localhost")
    assert f'<img class="announcement-image" src="/media/{name}" alt="a red square"' in home.text


def test_each_site_writes_under_its_own_name(editor, media):
    client = editor("meadow")
    assert add(client, "meadow", "Hay", image("JPEG", name="hay.jpg")).status_code == 302
    name = Announcement.objects.get(title="Hay").image.name
    assert name.startswith("meadow/announcements/") and name.endswith(".jpg")
    assert sorted(p.name for p in media.iterdir()) == ["meadow"]


def test_the_extension_is_the_format_found_not_the_one_claimed(editor):
    client = editor("harbor")
    assert add(client, "harbor", "Gif", image("GIF", name="fake.png")).status_code == 302
    assert Announcement.objects.get(title="Gif").image.name.endswith(".gif")


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("page.png", b"<html><script>alert(1)</script></html>"),
        ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script>'
                        b"</svg>"),
        ("empty.png", b""),
    ],
)
def test_what_is_not_an_image_is_refused_and_nothing_is_kept(editor, media, filename, content):
    client = editor("harbor")
    response = add(client, "harbor", "Not an image", SimpleUploadedFile(filename, content))
    assert response.status_code == 200  # the form again, with its error
    assert not Announcement.objects.filter(title="Not an image").exists()
    assert ("Upload a valid image" in response.text
            or "The submitted file is empty" in response.text)
    assert not media.exists() or not any(media.rglob("*.*"))


def test_an_image_of_another_format_is_refused_by_name(editor):
    client = editor("harbor")
    response = add(client, "harbor", "Tiff", image("TIFF", name="scan.tif"))
    assert response.status_code == 200
    assert "Upload a PNG, JPEG, GIF or WebP image: this file is a TIFF image." in response.text
    assert not Announcement.objects.filter(title="Tiff").exists()


def test_an_image_over_the_limit_is_refused_with_both_sizes(editor, settings, media):
    settings.SITEKIT_MEDIA_MAX_BYTES = 2048
    big = image(size=(60, 60))
    big_size = big.size
    assert big_size > 2048
    client = editor("harbor")
    response = add(client, "harbor", "Huge", big)
    assert response.status_code == 200
    kib = f"{big_size / 1024:.1f}"
    assert f"The image is {kib} KB; the limit is 2 KB." in response.text
    assert not Announcement.objects.filter(title="Huge").exists()
    assert not media.exists() or not any(media.rglob("*.*"))


def test_without_an_image_an_announcement_shows_none(editor):
    client = editor("harbor")
    assert add(client, "harbor", "Plain", "").status_code == 302
    assert not Announcement.objects.get(title="Plain").image
    assert "announcement-image" not in client.get("/", HTTP_HOST="harbor.localhost").text


def settings_in_subprocess(env, code):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SITEKIT_")}
    environ.update(env, DJANGO_SETTINGS_MODULE="settings.harbor", SITEKIT_DEBUG="1")
    environ.pop("PYTEST_VERSION", None)
    return subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


#: A complete S3 configuration (nothing is sent to the store by these tests).
S3_SETTINGS = {"SITEKIT_MEDIA_STORAGE": "s3", "SITEKIT_S3_ENDPOINT_URL": "http://10.0.0.1:8333",
               "SITEKIT_S3_BUCKET": "sitekit-media", "SITEKIT_S3_ACCESS_KEY": "key",
               "SITEKIT_S3_SECRET_KEY": "secret"}


def test_s3_storage_without_its_settings_stops_the_site_naming_them():
    proc = settings_in_subprocess(
        {"SITEKIT_MEDIA_STORAGE": "s3", "SITEKIT_S3_ENDPOINT_URL": "http://10.0.0.1:8333"},
        "import django; django.setup()")
    assert proc.returncode != 0
    assert ("SITEKIT_MEDIA_STORAGE=s3 needs SITEKIT_S3_BUCKET, SITEKIT_S3_ACCESS_KEY, "
            "SITEKIT_S3_SECRET_KEY") in proc.stderr


def test_s3_storage_links_files_on_the_sites_own_domain():
    proc = settings_in_subprocess(
        S3_SETTINGS,
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['default']\n"
        "print(type(s).__name__, s.bucket_name, s.endpoint_url,"
        " s.url('harbor/announcements/x.png'))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["MediaS3Storage", "sitekit-media", "http://10.0.0.1:8333",
                                   "/media/harbor/announcements/x.png"]


def test_s3_storage_stores_an_image_with_the_type_of_its_format_not_the_one_declared():
    """What the browser declared (here text/html for a PNG) is not what the store keeps, so
    not what nginx serves the file with."""
    proc = settings_in_subprocess(
        S3_SETTINGS,
        "import django; django.setup()\n"
        "from django.core.files.storage import storages\n"
        "from django.core.files.uploadedfile import SimpleUploadedFile\n"
        "s = storages['default']\n"
        "declared = SimpleUploadedFile('x.html', b'<html>', content_type='text/html')\n"
        "for name in ('harbor/announcements/a.png', 'harbor/announcements/b.jpg',\n"
        "             'meadow/announcements/c.webp', 'meadow/announcements/d.bin'):\n"
        "    print(s._get_write_parameters(name, declared)['ContentType'])\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["image/png", "image/jpeg", "image/webp",
                                   "application/octet-stream"]
