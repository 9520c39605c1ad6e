import functools
import logging
from pathlib import Path

from django.conf import settings
from django.contrib.sites.models import Site
from django.contrib.sites.shortcuts import get_current_site
from django.db import DatabaseError
from django.template import engines

from .pool import current

logger = logging.getLogger(__name__)


def _current_site(request):
    site = getattr(request, "site", None)
    if site is not None:
        return site
    try:
        return get_current_site(request)
    except (Site.DoesNotExist, DatabaseError):
        # Error pages must still render when the Site row is missing or the
        # database is unavailable.
        logger.warning(
            "Current site (SITE_ID=%s) is unavailable", getattr(settings, "SITE_ID", None)
        )
        return None


@functools.cache
def _own_base_templates():
    """Names of the sites whose app has its own base template (``<name>/base.html`` in a
    Jinja2 template directory): listed once per process."""
    return frozenset(
        path.parent.name
        for directory in engines["jinja2"].template_dirs
        for path in Path(directory).glob("*/base.html")
    )


def site_base(name):
    """The template a site's pages extend: its own app's ``<name>/base.html``
    (``project/sites/<name>/jinja2/``), else the shared ``base.html``, in the site's brand all
    the same."""
    return f"{name}/base.html" if name in _own_base_templates() else "base.html"


def sitekit(request):
    """Branding for every template: ``site_base`` is the template that pages extend.

    A dedicated master takes it from its settings; a pooled master (settings.pool) from the
    request's site.
    """
    pooled = current(request)
    name = pooled["name"] if pooled else settings.SITEKIT_SITE
    return {
        "site_base": site_base(name),
        "sitekit_site": name,
        "brand": pooled["brand"] if pooled else settings.SITEKIT_BRAND,
        "site": _current_site(request),
        "release": settings.SITEKIT_RELEASE_ID,
    }
