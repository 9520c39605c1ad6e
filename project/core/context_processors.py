import logging

from django.conf import settings
from django.contrib.sites.models import Site
from django.contrib.sites.shortcuts import get_current_site
from django.db import DatabaseError

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


def sitekit(request):
    """Branding for every template: ``site_base`` is the template that pages extend.

    A dedicated master takes it from its settings; a pooled master (settings.pool) from the
    request's site.
    """
    pooled = current(request)
    name = pooled["name"] if pooled else settings.SITEKIT_SITE
    return {
        "site_base": f"{name}/base.html",
        "sitekit_site": name,
        "brand": pooled["brand"] if pooled else settings.SITEKIT_BRAND,
        "site": _current_site(request),
        "release": settings.SITEKIT_RELEASE_ID,
    }
