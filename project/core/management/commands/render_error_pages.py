"""Render the pages nginx serves itself for each present site to static HTML.

nginx serves them, with the status of the failure, when a site's master cannot answer (it is
down, restarting, or too slow): ``<out>/<site>/503.html`` and ``<out>/<site>/504.html``; and
when a request is larger than it accepts: ``<out>/<site>/413.html``, naming the upload limit.
They are rendered from the site's own templates and brand (``unavailable.html``, extending the
site's base template) without a request or the database, and link only to ``/static/``, which
nginx also serves itself.

One process renders every site: a site's settings module is imported only to read its
SITEKIT_SITE, SITEKIT_BRAND and SITE_ID. Files are written atomically and only when they
differ; directories of sites that are no longer present are removed. The last line reports
``error pages: W written, U unchanged, R removed``.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings
from django.core.management.base import CommandError
from django.template.loader import render_to_string

from project.core.catalogue import CatalogueCommand
from project.core.context_processors import site_base
from project.core.uploads import human_size
from sitekit.runtime.files import write_atomic
from sitekit.runtime.rules import ERROR_STATUSES

#: the statuses nginx answers with a site's own page (the page's name; nginx's map of them)
STATUSES = tuple(int(status) for status in ERROR_STATUSES)
TEMPLATE = "unavailable.html"


def _write(path, text):
    """Write *text* to *path* atomically (mode 0644) unless it already holds it; True when
    written."""
    data = text.encode("utf-8")
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data, 0o644)
    return True


class Command(CatalogueCommand):
    help = "Render the static pages nginx serves itself: a master cannot answer, too large."
    database = False

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--out", required=True, help="directory of the pages, one per site")

    def handle(self, *args, catalogue, out, **options):
        out = Path(out)
        pages = {}  # site name -> {file name: html}; everything renders before anything is written
        for entry in self.sites(catalogue):
            site_id, brand_name = entry.load_settings()
            module = entry.load_module()
            site_name = getattr(module, "SITEKIT_SITE", entry.name)
            context = {
                "site_base": site_base(site_name),
                "sitekit_site": site_name,
                "brand": module.SITEKIT_BRAND,
                "site": SimpleNamespace(id=site_id, domain=entry.domain, name=brand_name),
                "release": settings.SITEKIT_RELEASE_ID,
                "upload_limit": human_size(settings.SITEKIT_MEDIA_MAX_BYTES),
            }
            try:
                pages[entry.name] = {
                    f"{status}.html": render_to_string(TEMPLATE, {**context, "status": status})
                    for status in STATUSES
                }
            except Exception as exc:
                raise CommandError(f"{entry.name}: cannot render {TEMPLATE}: {exc}") from exc

        written = unchanged = removed = 0
        out.mkdir(mode=0o755, parents=True, exist_ok=True)
        for name, files in pages.items():
            directory = out / name
            directory.mkdir(mode=0o755, exist_ok=True)
            for filename, html in files.items():
                if _write(directory / filename, html):
                    written += 1
                    self.stdout.write(f"{name}: wrote {directory / filename}")
                else:
                    unchanged += 1
        for stale in sorted(p for p in out.iterdir() if p.name not in pages):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
            removed += 1
            self.stdout.write(f"removed {stale}")
        self.stdout.write(
            f"error pages: {written} written, {unchanged} unchanged, {removed} removed"
        )
