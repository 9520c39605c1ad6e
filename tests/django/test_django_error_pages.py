"""render_error_pages: the static pages nginx serves itself (a master cannot answer; too large)."""

import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

BRANDS = {"harbor": "Harbor", "meadow": "Meadow", "ember": "Ember"}
ALL = {name: f"{name}.localhost" for name in BRANDS}


def render(path, out):
    stdout = StringIO()
    call_command("render_error_pages", catalogue=path, out=str(out), stdout=stdout)
    return stdout.getvalue().splitlines()


def test_every_present_site_gets_its_own_branded_pages(catalogue, tmp_path, settings):
    out = tmp_path / "errors"
    lines = render(catalogue(ALL), out)
    assert lines[-1] == "error pages: 9 written, 0 unchanged, 0 removed"
    assert sorted(p.name for p in out.iterdir()) == ["ember", "harbor", "meadow"]
    for name, brand in BRANDS.items():
        for status in (413, 503, 504):
            page = out / name / f"{status}.html"
            assert page.stat().st_mode & 0o777 == 0o644
            html = page.read_text()
            assert f'<span class="brand-name">{brand}</span>' in html
            assert f"/static/{name}/site.css" in html
            assert f"/static/{name}/logo.svg" in html
            assert f"{name}.localhost" in html  # the footer names the canonical domain
            assert settings.SITEKIT_RELEASE_ID in html
            for other in set(BRANDS.values()) - {brand}:
                assert f'<span class="brand-name">{other}</span>' not in html
            # complete and self-contained: no template left over, only /static/ links
            assert "{{" not in html and "{%" not in html
            assert html.rstrip().endswith("</html>")
            links = re.findall(r'(?:href|src)="([^"]*)"', html)
            assert links
            assert [u for u in links if u != "/" and not u.startswith("/static/")] == []


def test_wording_follows_the_status(catalogue, tmp_path):
    out = tmp_path / "errors"
    render(catalogue(ALL), out)
    unavailable = (out / "meadow" / "503.html").read_text()
    slow = (out / "meadow" / "504.html").read_text()
    assert "<title>Temporarily unavailable &middot; Meadow</title>" in unavailable
    assert "Meadow is briefly unavailable" in unavailable
    assert "<title>Taking too long &middot; Meadow</title>" in slow
    assert "Meadow did not answer in time" in slow
    assert "did not answer" not in unavailable


def test_the_too_large_page_names_the_upload_limit(catalogue, tmp_path, settings):
    settings.SITEKIT_MEDIA_MAX_BYTES = 3 * 1024 * 1024
    out = tmp_path / "errors"
    render(catalogue(ALL), out)
    page = (out / "harbor" / "413.html").read_text()
    assert "<title>Too large &middot; Harbor</title>" in page
    assert "larger than Harbor accepts: images up to 3 MB" in page


def test_a_second_run_writes_nothing(catalogue, tmp_path):
    out = tmp_path / "errors"
    path = catalogue(ALL)
    render(path, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.html")}
    assert render(path, out) == ["error pages: 0 written, 9 unchanged, 0 removed"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.html")} == before


def test_absent_and_removed_sites_have_no_pages(catalogue, tmp_path):
    out = tmp_path / "errors"
    render(catalogue(ALL), out)
    lines = render(catalogue({**ALL, "ember": {"domain": "ember.localhost", "state": "absent"}}),
                   out)
    assert lines[-1] == "error pages: 0 written, 6 unchanged, 1 removed"
    assert f"removed {out / 'ember'}" in lines
    assert sorted(p.name for p in out.iterdir()) == ["harbor", "meadow"]


def test_a_changed_domain_rewrites_only_that_sites_pages(catalogue, tmp_path):
    out = tmp_path / "errors"
    render(catalogue(ALL), out)
    lines = render(catalogue({**ALL, "harbor": "harbor.example.org"}), out)
    assert lines == [
        f"harbor: wrote {out / 'harbor' / '413.html'}",
        f"harbor: wrote {out / 'harbor' / '503.html'}",
        f"harbor: wrote {out / 'harbor' / '504.html'}",
        "error pages: 3 written, 6 unchanged, 0 removed",
    ]
    assert "harbor.example.org" in (out / "harbor" / "503.html").read_text()


def test_a_site_without_settings_writes_nothing(catalogue, tmp_path):
    out = tmp_path / "errors"
    with pytest.raises(CommandError, match=r"nosuch: cannot import settings module"):
        render(catalogue({**ALL, "nosuch": "nosuch.localhost"}), out)
    assert not out.exists()
