"""Local development: every site of the local catalogue in one process, each by its Host.

What ``python manage.py runserver`` uses when neither DJANGO_SETTINGS_MODULE nor SITEKIT_SITE
is set: the present sites of ``inventories/local`` (their domains, e.g. harbor.localhost,
which browsers resolve to loopback), served the way a pooled master serves them
(settings.pool, its sites file written to ``.pool-sites.json`` in the checkout unless
SITEKIT_POOL_SITES_FILE names one), with DEBUG on unless SITEKIT_DEBUG says otherwise. It reads
the catalogue from the checkout, so it is for a checkout with the tooling virtualenv, never for
a release.
"""

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("SITEKIT_DEBUG", "1")
os.environ.setdefault("SITEKIT_POOL", "dev")


def _local_sites():
    from sitekit import inventory

    root = Path(__file__).resolve().parent.parent
    try:
        result = inventory.check(inventory.find("local", root))
    except inventory.InventoryError as exc:
        raise ImproperlyConfigured(
            f"settings.dev serves the sites of inventories/local: {exc}; "
            "set SITEKIT_SITE=<site> for one site instead"
        ) from None
    if not result.ok:
        raise ImproperlyConfigured(
            "inventories/local: " + "; ".join(str(p) for p in result.problems)
        )
    return [
        {"name": site.name, "domains": site.domains, "hsts": site.hsts}
        for site in result.sites
        if site.present
    ]


def _write_sites_file():
    """The local sites as a pool's sites file, ``<checkout>/.pool-sites.json`` (rewritten when
    the catalogue changed; replaced whole, so that a process reading it never sees half)."""
    path = Path(__file__).resolve().parent.parent / ".pool-sites.json"
    text = json.dumps(_local_sites(), indent=1) + "\n"
    try:
        if path.read_text(encoding="utf-8") == text:
            return path
    except OSError:
        pass
    partial = path.with_name(f"{path.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


if not os.environ.get("SITEKIT_POOL_SITES_FILE"):
    os.environ["SITEKIT_POOL_SITES_FILE"] = str(_write_sites_file())

from .pool import *  # noqa: E402
