"""Reading the site catalogue handed to the management commands.

The deploy writes the catalogue as JSON::

    {"sites": [{"name": "harbor", "domain": "harbor.localhost", "state": "present",
                "settings_module": "settings.harbor"}, ...]}

``settings_module`` defaults to ``settings.<name>``; ``state`` defaults to
``present``. A site's settings module is imported only to read its SITE_ID,
SITEKIT_SITE and SITEKIT_BRAND; Django is not configured with it. The commands that
read it derive from :class:`CatalogueCommand`.
"""

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from sitekit.runtime.rules import STATES, valid_name

MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class CatalogueSite:
    name: str
    domain: str
    state: str
    settings_module: str

    @property
    def present(self):
        return self.state == "present"

    def load_module(self):
        """The site's settings module, imported (Django is not configured with it)."""
        try:
            return importlib.import_module(self.settings_module)
        except ImportError as exc:
            raise CommandError(
                f"{self.name}: cannot import settings module {self.settings_module}: {exc}"
            ) from exc

    def load_settings(self):
        """(SITE_ID, brand name) from the site's settings module."""
        module = self.load_module()
        site_id = getattr(module, "SITE_ID", None)
        brand = getattr(module, "SITEKIT_BRAND", None)
        if not isinstance(site_id, int) or isinstance(site_id, bool) or site_id < 1:
            raise CommandError(f"{self.settings_module}: SITE_ID must be a positive integer")
        if not isinstance(brand, dict) or not isinstance(brand.get("name"), str):
            raise CommandError(f"{self.settings_module}: SITEKIT_BRAND['name'] is missing")
        return site_id, brand["name"]


def pool_catalogue():
    """The sites this process serves as a pooled master (settings.pool, settings.dev), as
    catalogue entries: what the management commands use when no --catalogue is given."""
    from django.conf import settings

    sites = getattr(settings, "SITEKIT_POOL_SITES", None)
    if not sites:
        raise CommandError("--catalogue is required (only a pooled master knows its sites)")
    return [
        CatalogueSite(site["name"], site["domains"][0], "present", site["settings_module"])
        for site in sites
    ]


def load_catalogue(path):
    """Parse and validate the catalogue file; raises CommandError on any problem.

    Without a path, the sites of the pooled master this process is (:func:`pool_catalogue`).
    """
    if path is None:
        return pool_catalogue()
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"cannot read catalogue {path}: {exc}") from exc
    except ValueError as exc:
        raise CommandError(f"catalogue {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("sites"), list):
        raise CommandError(f'catalogue {path}: expected an object with a "sites" list')

    sites = []
    seen = set()
    for index, entry in enumerate(data["sites"]):
        where = f"catalogue {path}: sites[{index}]"
        if not isinstance(entry, dict):
            raise CommandError(f"{where}: expected an object")
        name = entry.get("name")
        if not valid_name(name):
            raise CommandError(f"{where}: invalid name {name!r}")
        if name in seen:
            raise CommandError(f"{where}: duplicate site {name!r}")
        seen.add(name)
        domain = entry.get("domain")
        if not isinstance(domain, str) or not domain.strip():
            raise CommandError(f"{where} ({name}): missing domain")
        state = entry.get("state", "present")
        if state not in STATES:
            raise CommandError(f"{where} ({name}): state must be one of {', '.join(STATES)}")
        module = entry.get("settings_module") or f"settings.{name}"
        if not isinstance(module, str) or not MODULE_RE.match(module):
            raise CommandError(f"{where} ({name}): invalid settings_module {module!r}")
        sites.append(CatalogueSite(name, domain.strip().lower(), state, module))
    return sites


class CatalogueCommand(BaseCommand):
    """A management command over the catalogue's sites: ``--catalogue`` (default, in a pooled
    master, the pool's sites) and, unless ``database`` is False, ``--database``; ``handle``
    gets both, :meth:`sites` reads the catalogue."""

    database = True

    def add_arguments(self, parser):
        parser.add_argument(
            "--catalogue",
            help="catalogue JSON file (default, in a pooled master: the pool's sites)",
        )
        if self.database:
            parser.add_argument(
                "--database", default=DEFAULT_DB_ALIAS, help="database alias (default: default)"
            )

    def sites(self, catalogue, present=True):
        """The catalogue's sites (:func:`load_catalogue`); only the present ones unless
        ``present`` is False."""
        sites = load_catalogue(catalogue)
        return [site for site in sites if site.present] if present else sites
