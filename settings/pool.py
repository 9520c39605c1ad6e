"""A pooled master: one process serving several sites, each request by its Host.

Run with ``DJANGO_SETTINGS_MODULE=settings.pool`` and, from the pool's env file:

    SITEKIT_POOL          the pool's name (names its cookies-of-last-resort and the
                          X-Sitekit-Pool header)
    SITEKIT_POOL_SITES_FILE  the pool's sites file, written by the deploy next to the env
                          file: a JSON list of its sites, each with its name, domains,
                          csrf_trusted_origins and hsts (see settings.base.pool_sites); a file,
                          not a variable, so that a pool of any size fits (one environment
                          string holds at most 128 KB)

Nothing about a site is written here: its SITE_ID, SITEKIT_SITE, ROOT_URLCONF, SITEKIT_BRAND
and cookie names come from its own module (settings/<site>.py). project.core.pool picks the
site per request: its URLconf (request.urlconf), its Site row (request.site; SITE_ID is
deliberately unset, so get_current_site() finds the site by Host), its templates and brand,
its cookies, CSRF origins and HSTS policy. A Host that is none of the pool's domains is
refused with 400 (DisallowedHost) before any view runs, by that same lookup.
"""

from django.core.exceptions import ImproperlyConfigured

from sitekit.runtime.rules import valid_name

from .base import *
from .base import _env, pool_sites_file

SITEKIT_POOL = _env("SITEKIT_POOL")
if not valid_name(SITEKIT_POOL):
    raise ImproperlyConfigured(f"SITEKIT_POOL must be the pool's name, got {SITEKIT_POOL!r}")

SITEKIT_POOL_SITES = pool_sites_file(_env("SITEKIT_POOL_SITES_FILE"))

# No site of its own: the request's site is picked by Host (project.core.pool).
SITEKIT_SITE = ""
SITEKIT_BRAND = None
ROOT_URLCONF = "project.core.pool_urls"  # only a request no site claims could use it

# Every domain of the pool's sites. The site is chosen per request by the one rule of
# sitekit.runtime.rules.ServerNames (a dict lookup, then a walk over the host's own labels),
# and a Host none of them serves is refused there (PoolSiteMiddleware, DisallowedHost: 400).
# ALLOWED_HOSTS lets every well-formed Host through to it: Django compares the Host with each
# entry of ALLOWED_HOSTS in turn on every request, 5,000 comparisons for a pool of 1,000 sites
# of 5 domains; "*" is matched first. (sitekit.E004 refuses a pool without PoolSiteMiddleware.)
SITEKIT_DOMAINS = [domain for site in SITEKIT_POOL_SITES for domain in site["domains"]]
ALLOWED_HOSTS = ["*"]
# Each site trusts its own origins only (project.core.pool.PoolCsrfViewMiddleware).
CSRF_TRUSTED_ORIGINS = []

# Never sent: the pool's middleware uses the request's site's cookie names. Named after the
# pool, which no site may be named after.
SESSION_COOKIE_NAME = f"{SITEKIT_POOL}_sessionid"
CSRF_COOKIE_NAME = f"{SITEKIT_POOL}_csrftoken"

_POOLED_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware":
        "project.core.pool.PoolSessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware": "project.core.pool.PoolCsrfViewMiddleware",
    # PoolSiteMiddleware sets request.site itself.
    "django.contrib.sites.middleware.CurrentSiteMiddleware": None,
    # In its place (right after the release header, which then names the site on every
    # response, 400 included, and before everything that reads the Host, the URLconf or the
    # site): the request's site by its Host, any other Host refused.
    "project.core.middleware.HostMiddleware": "project.core.pool.PoolSiteMiddleware",
}
MIDDLEWARE = [_POOLED_MIDDLEWARE.get(name, name) for name in MIDDLEWARE]
MIDDLEWARE = [name for name in MIDDLEWARE if name]
# Django's SecurityMiddleware stays (and so do its deployment checks); just inside it, the
# site's own HSTS header, which Django's then leaves as it is.
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "project.core.pool.PoolHstsMiddleware",
)

# security.W003 looks for Django's CsrfViewMiddleware by name; the pool runs it once per site
# (project.core.pool.PoolCsrfViewMiddleware), which sitekit.E003 requires instead.
# admin.E410 looks for Django's SessionMiddleware likewise (PoolSessionMiddleware is in its place).
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "security.W003", "admin.E410"]
