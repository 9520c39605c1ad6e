from django.conf import settings

from .pool import current


class ReleaseHeaderMiddleware:
    """Tag every response with the release and the site that produced it.

    Installed first in MIDDLEWARE, so it also sees the responses Django builds
    for exceptions raised further in (404, 500, 400 for bad hosts). A pooled master
    (settings.pool) names the request's site, and itself in ``X-Sitekit-Pool``; a
    request no site of the pool claims gets no ``X-Sitekit-Site``.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.pool = getattr(settings, "SITEKIT_POOL", "")

    def __call__(self, request):
        response = self.get_response(request)
        response.headers["X-Sitekit-Release"] = settings.SITEKIT_RELEASE_ID
        if self.pool:
            response.headers["X-Sitekit-Pool"] = self.pool
            pooled = current(request)
            if pooled:
                response.headers["X-Sitekit-Site"] = pooled["name"]
        else:
            response.headers["X-Sitekit-Site"] = settings.SITEKIT_SITE
        return response
