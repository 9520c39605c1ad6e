from django.conf import settings


class ReleaseHeaderMiddleware:
    """Tag every response with the release and the site that produced it.

    Installed first in MIDDLEWARE, so it also sees the responses Django builds
    for exceptions raised further in (404, 500, 400 for bad hosts).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers["X-Sitekit-Release"] = settings.SITEKIT_RELEASE_ID
        response.headers["X-Sitekit-Site"] = settings.SITEKIT_SITE
        return response
