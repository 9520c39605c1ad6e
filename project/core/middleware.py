from django.conf import settings
from django.core.exceptions import DisallowedHost, MiddlewareNotUsed
from django.http.request import split_domain_port

from sitekit.runtime.rules import ServerNames

from .pool import current


class HostMiddleware:
    """Refuse (400, Django's DisallowedHost) any Host that none of the site's domains serves as
    nginx routes it (``SITEKIT_DOMAINS``, matched by :class:`sitekit.runtime.rules.ServerNames`).

    ALLOWED_HOSTS cannot say it alone: Django has no pattern for "subdomains only", and the
    ``.example.org`` it gets for the domain ``*.example.org`` lets ``example.org`` in too. Right
    after ReleaseHeaderMiddleware, before anything reads the Host. Not used without
    SITEKIT_DOMAINS (development: ALLOWED_HOSTS only). A pooled master has PoolSiteMiddleware
    in its place, which picks the request's site by the same rule.
    """

    def __init__(self, get_response):
        domains = getattr(settings, "SITEKIT_DOMAINS", ())
        if not domains:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.names = ServerNames(domains)

    def __call__(self, request):
        host = request.get_host()  # DisallowedHost (400) unless one of ALLOWED_HOSTS
        domain, _port = split_domain_port(host)
        if self.names.match(domain) is None:
            raise DisallowedHost(
                f"Invalid HTTP_HOST header: {host!r}: none of this site's domains serves it")
        return self.get_response(request)


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
