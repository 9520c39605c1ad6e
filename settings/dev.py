"""Local development: every site of the local catalogue in one process, each by its Host.

What ``python manage.py runserver`` uses when neither DJANGO_SETTINGS_MODULE nor SITEKIT_SITE
is set: the present sites of ``inventories/local`` (their domains, e.g. harbor.localhost,
which browsers resolve to loopback), served the way a pooled master serves them
(settings.pool), with DEBUG on unless SITEKIT_DEBUG says otherwise. It reads the catalogue
from the checkout, so it is for a checkout with the tooling virtualenv, never for a release.
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


if not os.environ.get("SITEKIT_POOL_SITES"):
    os.environ["SITEKIT_POOL_SITES"] = json.dumps(_local_sites())

from .pool import *  # noqa: E402
