"""Serving several sites from one process (``settings.pool``): the site is picked per request.

Everything a request needs of its site is on the request, never in module globals or
settings: ``request.sitekit_site`` (the site's entry of SITEKIT_POOL_SITES), ``request.urlconf``
(Django resolves, reverses and picks handler404/handler500 from it, in a thread-local it resets
after each request) and ``request.site`` (its Site row). What differs per site in the
middleware Django configures from settings (cookie names, CSRF origins) is held in one
middleware instance per site, built once at start-up and chosen per request; the HSTS header
is the site's (PoolHstsMiddleware).
"""

import time
from importlib import import_module

from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.middleware import SessionMiddleware
from django.contrib.sites.models import SITE_CACHE, Site
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http.request import split_domain_port
from django.middleware.csrf import (
    CSRF_TOKEN_LENGTH,
    CsrfViewMiddleware,
    _check_token_format,
    _unmask_cipher_token,
)
from django.urls import set_urlconf
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import cached_property
from django.utils.http import http_date

from sitekit.runtime.rules import ServerNames, hsts_header


def current(request):
    """The request's site in a pooled master (its SITEKIT_POOL_SITES entry), else None."""
    return getattr(request, "sitekit_site", None)


class SiteTable:
    """Host -> site for the pool's sites, as nginx routes the host (exact names first, then the
    longest wildcard: :class:`sitekit.runtime.rules.ServerNames`). Built once per process:
    a request costs a dict lookup (and one per label of its Host for a wildcard)."""

    def __init__(self, sites):
        self.by_domain = {domain.lower(): site for site in sites for domain in site["domains"]}
        self.names = ServerNames(self.by_domain)

    def find(self, domain):
        """(site, whether by an exact name), or (None, False) when no site serves ``domain``."""
        matched = self.names.match(domain)
        if matched is None:
            return None, False
        return self.by_domain[matched], not matched.startswith("*.")


def site_row(site, domain, exact, site_ids=()):
    """The site's Site row, through Django's own cache.

    SITE_ID is unset in a pooled master, so ``get_current_site(request)`` looks the Site up by
    Host; the Sites table holds each site's canonical domain only. Caching the row under each
    of the catalogue's concrete domains (a bounded set) makes that lookup return the request's
    site for every domain of it. Names matched by a wildcard are not cached (unbounded):
    ``request.site`` has their site.

    The first row missing loads the rows of every site of the pool (``site_ids``) in one query:
    in the master, its warm-up request does, and every worker it forks has them all.
    """
    row = SITE_CACHE.get(site["site_id"])
    if row is None:
        SITE_CACHE.update(Site.objects.in_bulk([i for i in site_ids if i not in SITE_CACHE]))
        row = SITE_CACHE.get(site["site_id"])
    if row is None:
        row = Site.objects.get(pk=site["site_id"])
        SITE_CACHE[site["site_id"]] = row
    if exact and domain not in SITE_CACHE:
        SITE_CACHE[domain] = row
    return row


class PoolSiteMiddleware:
    """Pick the request's site by Host among the pool's sites; refuse any other Host."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.table = SiteTable(settings.SITEKIT_POOL_SITES)
        self.site_ids = [site["site_id"] for site in settings.SITEKIT_POOL_SITES]

    def __call__(self, request):
        # DisallowedHost (400) for a malformed Host; ALLOWED_HOSTS is "*" (settings.pool): the
        # pool's sites are looked up here, once
        host = request.get_host()
        domain, _port = split_domain_port(host)
        site, exact = self.table.find(domain)
        if site is None:
            raise DisallowedHost(f"Invalid HTTP_HOST header: {host!r}: no site of this pool")
        request.sitekit_site = site
        request.urlconf = site["urlconf"]
        # Django sets this thread's URLconf from request.urlconf when it resolves the path, and
        # resets it when the response is closed; set it now so that a failure before that (the
        # Site row unavailable) still gets the site's own 500 page.
        set_urlconf(site["urlconf"])
        request.site = site_row(site, domain, exact, self.site_ids)
        return self.get_response(request)


class _PerSite(MiddlewareMixin):
    """One instance of a Django middleware per site, chosen by the request's site."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.by_site = {
            site["name"]: self.build(get_response, site) for site in settings.SITEKIT_POOL_SITES
        }

    def build(self, get_response, site):
        raise NotImplementedError

    def _for(self, request):
        site = current(request)
        return self.by_site[site["name"]] if site is not None else None

    def process_request(self, request):
        middleware = self._for(request)
        return middleware.process_request(request) if middleware else None

    def process_response(self, request, response):
        middleware = self._for(request)
        return middleware.process_response(request, response) if middleware else response


class PoolHstsMiddleware(MiddlewareMixin):
    """The site's own HSTS policy (catalogue field hsts) over https.

    Installed just inside Django's SecurityMiddleware, which adds its header only when the
    response has none: the header is Django's, with the site's includeSubDomains and preload.
    """

    def __init__(self, get_response):
        super().__init__(get_response)
        self.seconds = settings.SECURE_HSTS_SECONDS

    def process_response(self, request, response):
        site = current(request)
        if (
            site is not None
            and self.seconds
            and request.is_secure()
            and "Strict-Transport-Security" not in response
        ):
            response.headers["Strict-Transport-Security"] = hsts_header(site["hsts"], self.seconds)
        return response


class SiteSessionMiddleware(SessionMiddleware):
    """Django's SessionMiddleware reading and writing the site's own session cookie."""

    def __init__(self, get_response, cookie_name):
        super().__init__(get_response)
        self.cookie_name = cookie_name

    def process_request(self, request):
        request.session = self.SessionStore(request.COOKIES.get(self.cookie_name))

    # Django's process_response with the site's cookie name in place of SESSION_COOKIE_NAME.
    def process_response(self, request, response):
        try:
            accessed = request.session.accessed
            modified = request.session.modified
            empty = request.session.is_empty()
        except AttributeError:
            return response
        if self.cookie_name in request.COOKIES and empty:
            response.delete_cookie(
                self.cookie_name,
                path=settings.SESSION_COOKIE_PATH,
                domain=settings.SESSION_COOKIE_DOMAIN,
                samesite=settings.SESSION_COOKIE_SAMESITE,
            )
            need_vary_cookie = True
        else:
            need_vary_cookie = accessed
            if (modified or settings.SESSION_SAVE_EVERY_REQUEST) and not empty:
                if request.session.get_expire_at_browser_close():
                    max_age = None
                    expires = None
                else:
                    max_age = request.session.get_expiry_age()
                    expires = http_date(time.time() + max_age)
                if response.status_code < 500:
                    try:
                        request.session.save()
                    except UpdateError:
                        raise SessionInterrupted(
                            "The request's session was deleted before the request completed."
                        ) from None
                    response.set_cookie(
                        self.cookie_name,
                        request.session.session_key,
                        max_age=max_age,
                        expires=expires,
                        domain=settings.SESSION_COOKIE_DOMAIN,
                        path=settings.SESSION_COOKIE_PATH,
                        secure=settings.SESSION_COOKIE_SECURE or None,
                        httponly=settings.SESSION_COOKIE_HTTPONLY or None,
                        samesite=settings.SESSION_COOKIE_SAMESITE,
                    )
                    need_vary_cookie = True
        if need_vary_cookie:
            patch_vary_headers(response, ("Cookie",))
        return response


class PoolSessionMiddleware(_PerSite):
    """Sessions under the site's own cookie name (``<site>_sessionid``)."""

    def __init__(self, get_response):
        import_module(settings.SESSION_ENGINE)  # fail at start-up, as Django's does
        super().__init__(get_response)

    def build(self, get_response, site):
        return SiteSessionMiddleware(get_response, site["session_cookie_name"])


class SiteCsrfViewMiddleware(CsrfViewMiddleware):
    """Django's CsrfViewMiddleware with the site's cookie name and trusted origins."""

    def __init__(self, get_response, cookie_name, trusted_origins):
        if settings.CSRF_USE_SESSIONS:
            raise ImproperlyConfigured("a pooled master keeps each site's CSRF secret in its "
                                       "own cookie: CSRF_USE_SESSIONS must be False")
        super().__init__(get_response)
        self.cookie_name = cookie_name
        self.trusted_origins = tuple(trusted_origins)

    @cached_property
    def csrf_trusted_origins_hosts(self):
        from urllib.parse import urlsplit

        return [urlsplit(origin).netloc.lstrip("*") for origin in self.trusted_origins]

    @cached_property
    def allowed_origins_exact(self):
        return {origin for origin in self.trusted_origins if "*" not in origin}

    @cached_property
    def allowed_origin_subdomains(self):
        from collections import defaultdict
        from urllib.parse import urlsplit

        allowed = defaultdict(list)
        for parsed in (urlsplit(o) for o in self.trusted_origins if "*" in o):
            allowed[parsed.scheme].append(parsed.netloc.lstrip("*"))
        return allowed

    # CSRF_USE_SESSIONS is off in sitekit: the secret is in the site's own cookie.
    def _get_secret(self, request):
        csrf_secret = request.COOKIES.get(self.cookie_name)
        if csrf_secret is None:
            return None
        _check_token_format(csrf_secret)  # may raise InvalidTokenFormat, as Django's does
        if len(csrf_secret) == CSRF_TOKEN_LENGTH:
            csrf_secret = _unmask_cipher_token(csrf_secret)
        return csrf_secret

    def _set_csrf_cookie(self, request, response):
        response.set_cookie(
            self.cookie_name,
            request.META["CSRF_COOKIE"],
            max_age=settings.CSRF_COOKIE_AGE,
            domain=settings.CSRF_COOKIE_DOMAIN,
            path=settings.CSRF_COOKIE_PATH,
            secure=settings.CSRF_COOKIE_SECURE,
            httponly=settings.CSRF_COOKIE_HTTPONLY,
            samesite=settings.CSRF_COOKIE_SAMESITE,
        )
        patch_vary_headers(response, ("Cookie",))


class PoolCsrfViewMiddleware(_PerSite):
    """CSRF protection with the site's own cookie (``<site>_csrftoken``) and origins."""

    def build(self, get_response, site):
        return SiteCsrfViewMiddleware(
            get_response, site["csrf_cookie_name"], site["csrf_trusted_origins"]
        )

    def process_view(self, request, callback, callback_args, callback_kwargs):
        middleware = self._for(request)
        if middleware is None:
            return None
        return middleware.process_view(request, callback, callback_args, callback_kwargs)
