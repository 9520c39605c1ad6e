"""System checks of what every site's settings must keep: its own, host-only cookies."""

from django.conf import settings
from django.core.checks import Error, Tags, register

#: Django's middleware that a pooled master must replace by its per-site version.
POOLED_MIDDLEWARE = {
    "django.contrib.sessions.middleware.SessionMiddleware":
        "project.core.pool.PoolSessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware": "project.core.pool.PoolCsrfViewMiddleware",
}
#: What refuses, in a pooled master, every Host none of its sites serves (ALLOWED_HOSTS is "*").
POOL_HOST_MIDDLEWARE = "project.core.pool.PoolSiteMiddleware"


def _cookie_errors(site, names, where):
    errors = []
    for kind, default in (("SESSION", "sessionid"), ("CSRF", "csrftoken")):
        name = names[kind]
        if not site or name != f"{site}_{default}":
            errors.append(
                Error(
                    f"{where}{kind}_COOKIE_NAME is {name!r}: each site names its cookies after "
                    "itself",
                    hint=f'Set {kind}_COOKIE_NAME = f"{{SITEKIT_SITE}}_{default}" in the '
                    "site's settings module.",
                    id="sitekit.E001",
                )
            )
    return errors


@register(Tags.security)
def check_site_cookies(app_configs, **kwargs):
    """sitekit.E001: session and CSRF cookies are named after the site and host-only.

    Sites share one database and may share a parent domain (harbor.example.com and
    meadow.example.com): a cookie with a Domain attribute, or a name another site also uses,
    would let one site's cookie be sent to and read by another.

    A pooled master (settings.pool) checks every site of the pool (its own settings module's
    cookie names), that its middleware uses each site's names (sitekit.E003), and that it
    refuses the Hosts none of its sites serves (sitekit.E004: its ALLOWED_HOSTS is "*").
    """
    errors = []
    pool_sites = getattr(settings, "SITEKIT_POOL_SITES", None)
    if pool_sites:
        for site in pool_sites:
            names = {"SESSION": site["session_cookie_name"], "CSRF": site["csrf_cookie_name"]}
            errors += _cookie_errors(site["name"], names, f"{site['settings_module']}: ")
        for django_name, pooled_name in POOLED_MIDDLEWARE.items():
            if django_name in settings.MIDDLEWARE or pooled_name not in settings.MIDDLEWARE:
                errors.append(
                    Error(
                        f"a pooled master must use {pooled_name}, not {django_name}: Django's "
                        "reads one cookie name for every site",
                        hint=f"Replace {django_name} by {pooled_name} in MIDDLEWARE.",
                        id="sitekit.E003",
                    )
                )
        if POOL_HOST_MIDDLEWARE not in settings.MIDDLEWARE:
            errors.append(
                Error(
                    f"a pooled master must use {POOL_HOST_MIDDLEWARE}: it picks the request's "
                    "site by Host and refuses any Host none of the pool's sites serves",
                    hint=f"Put {POOL_HOST_MIDDLEWARE} in MIDDLEWARE, right after "
                    "project.core.middleware.ReleaseHeaderMiddleware.",
                    id="sitekit.E004",
                )
            )
    else:
        site = getattr(settings, "SITEKIT_SITE", "")
        names = {kind: getattr(settings, f"{kind}_COOKIE_NAME") for kind in ("SESSION", "CSRF")}
        errors += _cookie_errors(site, names, "")
    for kind in ("SESSION", "CSRF"):
        domain = getattr(settings, f"{kind}_COOKIE_DOMAIN")
        if domain is not None:
            errors.append(
                Error(
                    f"{kind}_COOKIE_DOMAIN is {domain!r}: a site's cookies must be host-only",
                    hint=f"Set {kind}_COOKIE_DOMAIN = None, so that no other host receives them.",
                    id="sitekit.E002",
                )
            )
    return errors
