"""A real browser (Debian's chromium, driven by Playwright) on the shared local stack.

Harbor's editor logs in through the admin's form over https, adds an announcement with an
image, and Harbor's home page (through nginx) shows it with the image loaded from the site's
own domain; a file that is not an image is refused by the form and creates nothing; Meadow
neither shows Harbor's announcement nor lets Harbor's editor into its admin.

Chromium trusts the stack's CA for real: it is added to an NSS database in a temporary HOME
(where chromium on Linux reads its trust store), and TLS errors are never ignored; a browser
without that database is shown to refuse the stack's certificate.

Each step is saved as a screenshot in ``build/test-output/browser/`` (the path is printed).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect, sync_playwright

from tests.e2e.stack import BIN, ROOT, brand
from tests.harness import unavailable

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")  # Debian's chromium package (its launcher script)
CERTUTIL = Path("/usr/bin/certutil")  # libnss3-tools
SCREENSHOTS = ROOT / "build" / "test-output" / "browser"
REFUSAL = "This account cannot edit this site."  # project/core/admin_site.py


def _missing_tools() -> list[str]:
    return [package for package, path in (("chromium", CHROMIUM), ("libnss3-tools", CERTUTIL))
            if not path.exists()]


@pytest.fixture(scope="module")
def terminal(request):
    """Print to the terminal even while pytest captures output."""
    capture = request.config.pluginmanager.getplugin("capturemanager")

    def say(text: str) -> None:
        with capture.global_and_fixture_disabled():
            print(text)

    return say


@pytest.fixture(scope="module")
def screenshots(terminal):
    """The screenshots directory, emptied for this run; its path is printed at the end."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    yield SCREENSHOTS
    saved = sorted(p.name for p in SCREENSHOTS.glob("*.png"))
    terminal(f"\nbrowser screenshots ({len(saved)}): {SCREENSHOTS}")


class Steps:
    """Screenshots of one test's steps: ``<test>-<nn>-<step>.png``."""

    def __init__(self, directory: Path, prefix: str, page):
        self.directory, self.prefix, self.page, self.count = directory, prefix, page, 0

    def shot(self, step: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.prefix}-{self.count:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser):
    """A page in a new browser context (no cookies)."""
    context = browser.new_context()
    yield context.new_page()
    context.close()


@pytest.fixture
def steps(screenshots, page, request):
    """The test's screenshots; one more, ``failed``, of the page as a failed test left it."""
    failed_before = request.session.testsfailed
    steps = Steps(screenshots, re.sub(r"^test_", "", request.node.name)[:60], page)
    yield steps
    if request.session.testsfailed > failed_before:
        steps.shot("failed")


def nss_home(home: Path, ca: Path) -> Path:
    """A HOME whose NSS database (~/.pki/nssdb, chromium's trust store on Linux) trusts *ca*
    to identify web sites."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for argv in (["-N", "--empty-password"],
                 ["-A", "-n", "sitekit local stack CA", "-t", "C,,", "-i", str(ca)]):
        subprocess.run([str(CERTUTIL), "-d", f"sql:{db}", *argv], check=True,
                       capture_output=True, timeout=30)
    return home


@pytest.fixture(scope="module")
def playwright():
    missing = _missing_tools()
    if missing:
        reason = (f"not installed: {', '.join(missing)} (make test-deps as root, or "
                  f"apt-get install --no-install-recommends {' '.join(missing)})")
        # root can install them (make test-deps does): a failure; in CI too (unavailable);
        # only a user who cannot install packages gets a skip, with the reason
        if os.geteuid() == 0:
            pytest.fail(reason, pytrace=False)
        unavailable(reason)
    with sync_playwright() as p:
        yield p


def launch(playwright, home: Path):
    """Headless chromium with *home* as HOME, sandboxed unless this is root."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        # chromium refuses to start as root with its sandbox ("Running as root without
        # --no-sandbox is not supported"), and CI (.ci/run) runs the suite as root: there,
        # and only there, Playwright passes --no-sandbox
        chromium_sandbox=os.geteuid() != 0,
        env={"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        # chromium resolves *.localhost to the loopback itself; say so in case a resolver or
        # proxy setting would send it elsewhere
        args=["--host-resolver-rules=MAP *.localhost 127.0.0.1", "--no-proxy-server"])


@pytest.fixture(scope="module")
def browser(playwright, stack, tmp_path_factory):
    home = nss_home(tmp_path_factory.mktemp("chromium-home"), stack.ca)
    browser = launch(playwright, home)
    yield browser
    browser.close()


def sitekit_manage(stack, *argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`sitekit manage local harbor ... -- *argv` on the stack, as a person runs it."""
    return subprocess.run(
        [str(BIN / "sitekit"), "--project", str(ROOT), "manage", "local", "harbor",
         "--root", str(stack.root), *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL, check=False)


@pytest.fixture(scope="module")
def editor(stack):
    """A staff user granted Harbor only (a new name every run), created with
    `sitekit manage local harbor -- site_editors grant NAME harbor --create`; the grant is
    revoked afterwards (the stack is shared: other tests list Harbor's editors)."""
    name, password = f"browser-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    granted = sitekit_manage(stack, "--env", "SITEKIT_USER_PASSWORD", "--", "site_editors",
                             "grant", name, "harbor", "--create",
                             env=dict(os.environ, SITEKIT_USER_PASSWORD=password))
    assert granted.returncode == 0, granted.stdout + granted.stderr
    assert f"{name} edits harbor: granted" in granted.stdout
    yield name, password
    revoked = sitekit_manage(stack, "--", "site_editors", "revoke", name, "harbor")
    assert f"{name} edits harbor: revoked" in revoked.stdout, revoked.stdout + revoked.stderr


def url(stack, site: str, path: str = "/") -> str:
    return f"https://{site}.localhost:{stack.tls_port}{path}"


def log_in(page, stack, site: str, editor) -> None:
    """Open *site*'s admin, be sent to its login form, and submit it."""
    page.goto(url(stack, site, "/admin/"))
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.fill("#id_username", editor[0])
    page.fill("#id_password", editor[1])
    page.click("input[type=submit]")


def png(width: int, height: int) -> bytes:
    """A real RGB PNG of *width* x *height*: stripes of colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    colours = ((0x1F, 0x6F, 0xB2), (0xF2, 0xA9, 0x00), (0x2E, 0x8B, 0x57))
    rows = b"".join(
        b"\x00" + b"".join(bytes(colours[(x // 8) % 3]) for x in range(width))
        for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def test_chromium_refuses_the_stack_certificate_without_the_ca(playwright, stack, tmp_path):
    """The trust the other tests rely on comes from the NSS database, nothing else."""
    home = tmp_path / "home"
    home.mkdir()
    bare = launch(playwright, home)
    try:
        page = bare.new_page()
        with pytest.raises(PlaywrightError, match="ERR_CERT_AUTHORITY_INVALID"):
            page.goto(url(stack, "harbor", "/"))
    finally:
        bare.close()


def test_harbors_editor_logs_in_to_harbors_admin(page, stack, editor, steps):
    page.goto(url(stack, "harbor", "/admin/"))
    steps.shot("harbor-login-form")
    log_in(page, stack, "harbor", editor)
    expect(page).to_have_url(url(stack, "harbor", "/admin/"))
    expect(page.locator("#site-name")).to_have_text(f"{brand('harbor')} administration")
    expect(page.locator("#content h1")).to_have_text("Site administration")
    expect(page.get_by_role("link", name="Announcements", exact=True)).to_be_visible()
    steps.shot("harbor-admin-index")


IMAGE_SIZE = (48, 24)


def add_announcement(page, stack, title: str, upload: Path, alt: str = "") -> None:
    """Fill Harbor's form to add an announcement with *upload* as its image (not saved)."""
    page.goto(url(stack, "harbor", "/admin/core/announcement/add/"))
    page.fill("#id_title", title)
    page.fill("#id_body", f"{title}, added in a browser.")
    page.set_input_files("input[name=image]", str(upload))
    if alt:
        page.fill("#id_image_alt", alt)


def media_files(stack) -> list[Path]:
    return sorted(p for p in (stack.root / "media").rglob("*") if p.is_file())


def test_harbors_editor_adds_an_announcement_whose_image_harbors_home_page_shows(
    page, stack, editor, steps, tmp_path
):
    title, alt = f"Harbor lights {secrets.token_hex(3)}", "Three stripes of colour"
    picture = tmp_path / "harbor lights.png"
    picture.write_bytes(data := png(*IMAGE_SIZE))
    log_in(page, stack, "harbor", editor)
    expect(page).to_have_url(url(stack, "harbor", "/admin/"))
    add_announcement(page, stack, title, picture, alt)
    steps.shot("add-form-with-image")
    page.click("input[name=_save]")
    expect(page).to_have_url(url(stack, "harbor", "/admin/core/announcement/"))
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")
    expect(page.locator("#result_list")).to_contain_text(title)
    steps.shot("announcement-added")

    gunicorn_log = stack.root / "log" / "sites" / "harbor" / "access.log"
    before = gunicorn_log.read_text()
    responses = []
    page.on("response", lambda response: responses.append(response))
    page.goto(url(stack, "harbor", "/"))
    article = page.locator("article.announcement", has_text=title)
    expect(article).to_have_count(1)
    image = article.locator("img.announcement-image")
    expect(image).to_have_attribute("alt", alt)
    src = image.get_attribute("src")
    assert re.fullmatch(r"/media/harbor/announcements/[0-9a-f]{24}\.png", src), src
    image.scroll_into_view_if_needed()  # loading="lazy": loaded once in view
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    loaded = image.evaluate("img => [img.currentSrc, img.naturalWidth, img.naturalHeight]")
    assert loaded == [url(stack, "harbor", src), *IMAGE_SIZE]
    steps.shot("harbor-home-with-image")
    served = [r for r in responses if r.url == loaded[0]]
    assert len(served) == 1, [r.url for r in responses]
    response = served[0]
    assert response.status == 200
    assert response.header_value("content-type") == "image/png"
    assert response.header_value("x-content-type-options") == "nosniff"
    assert response.body() == data
    # nginx served it from the stack's media directory: the application never saw the request
    assert (stack.root / "media" / src.removeprefix("/media/")).read_bytes() == data
    assert src not in gunicorn_log.read_text()[len(before):]

    page.goto(url(stack, "meadow", "/"))
    expect(page.locator(".brand-name")).to_have_text(brand("meadow"))
    expect(page.get_by_text(title)).to_have_count(0)
    expect(page.locator(f'img[src="{src}"]')).to_have_count(0)
    steps.shot("meadow-home-without-it")
    # Meadow's domain does not serve Harbor's file either
    assert page.goto(url(stack, "meadow", src)).status == 404


def test_a_file_that_is_not_an_image_is_refused_and_creates_nothing(
    page, stack, editor, steps, tmp_path
):
    title = f"Not a picture {secrets.token_hex(3)}"
    fake = tmp_path / "page.png"
    fake.write_bytes(b"<!doctype html><html><script>alert(1)</script><p>hello</p></html>")
    files_before = media_files(stack)
    log_in(page, stack, "harbor", editor)
    expect(page).to_have_url(url(stack, "harbor", "/admin/"))
    add_announcement(page, stack, title, fake)
    page.click("input[name=_save]")
    expect(page).to_have_url(url(stack, "harbor", "/admin/core/announcement/add/"))
    expect(page.locator(".errornote")).to_be_visible()
    expect(page.locator(".field-image .errorlist")).to_contain_text("Upload a valid image")
    steps.shot("form-refuses-html-as-png")
    page.goto(url(stack, "harbor", "/admin/core/announcement/"))
    expect(page.locator("#changelist")).to_be_visible()
    expect(page.get_by_text(title)).to_have_count(0)
    steps.shot("announcements-without-it")
    page.goto(url(stack, "harbor", "/"))
    expect(page.get_by_text(title)).to_have_count(0)
    assert media_files(stack) == files_before


def test_meadow_refuses_harbors_editor(page, stack, editor, steps):
    log_in(page, stack, "meadow", editor)
    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.locator(".errornote")).to_contain_text(REFUSAL)
    steps.shot("meadow-refuses-harbor-editor")
    # no admin page is reachable: each one sends back to the login form
    for path in ("/admin/", "/admin/core/announcement/", "/admin/core/announcement/add/"):
        page.goto(url(stack, "meadow", path))
        expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
        expect(page.locator("#login-form")).to_be_visible()
        expect(page.get_by_text("Site administration")).to_have_count(0)
        expect(page.get_by_role("link", name="Announcements")).to_have_count(0)
    steps.shot("meadow-admin-still-login")
