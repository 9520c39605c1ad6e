import functools
import logging

from django.conf import settings
from django.contrib.sites.models import Site
from django.contrib.sites.shortcuts import get_current_site
from django.db import DatabaseError
from django.template import TemplateDoesNotExist, engines

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
def site_base(name):
    """The template a site's pages extend: its own app's ``<name>/base.html``
    (``project/sites/<name>/jinja2/``), else the shared ``base.html``, in the site's brand all
    the same. Looked up once per site and process."""
    try:
        engines["jinja2"].get_template(f"{name}/base.html")
    except TemplateDoesNotExist:
        return "base.html"
    return f"{name}/base.html"


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
