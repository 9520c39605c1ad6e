import logging

from django.conf import settings
from django.contrib.sites.shortcuts import get_current_site
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .models import Announcement
from .pool import current

logger = logging.getLogger(__name__)

HOME_ANNOUNCEMENTS = 20

FALLBACK_500 = (
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Server error</title></head><body><h1>Server error</h1>"
    "<p>Something went wrong on our side. Please try again later.</p></body></html>\n"
)


@require_safe
def home(request):
    # request.site: the site of this request, in a dedicated master (SITE_ID) as in a pooled one.
    announcements = Announcement.objects.filter(site=request.site)[:HOME_ANNOUNCEMENTS]
    return render(request, "home.html", {"announcements": announcements})


@never_cache
@require_safe
def healthz(request):
    """Which site, settings and release this process serves. Read-only.

    A pooled master reports the request's site, its SITE_ID and the pool.
    """
    site = getattr(request, "site", None) or get_current_site(request)
    pooled = current(request)
    report = {
        "site": pooled["name"] if pooled else settings.SITEKIT_SITE,
        "settings_module": getattr(settings, "SETTINGS_MODULE", None),
        "release": settings.SITEKIT_RELEASE_ID,
        "site_id": pooled["site_id"] if pooled else settings.SITE_ID,
        "domain": site.domain,
    }
    if pooled:
        report["pool"] = settings.SITEKIT_POOL
    return JsonResponse(report)


def page_not_found(request, exception):
    return render(request, "404.html", {"request_path": request.path}, status=404)


def server_error(request):
    try:
        return render(request, "500.html", status=500)
    except Exception:
        # The branded page depends on templates, settings and possibly the
        # database; whatever broke the request may break it too.
        logger.exception("Rendering the branded 500 page failed")
        return HttpResponseServerError(FALLBACK_500)
