"""System checks of what every site's settings must keep: its own, host-only cookies."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security)
def check_site_cookies(app_configs, **kwargs):
    """sitekit.E001: session and CSRF cookies are named after the site and host-only.

    Sites share one database and may share a parent domain (harbor.example.com and
    meadow.example.com): a cookie with a Domain attribute, or a name another site also uses,
    would let one site's cookie be sent to and read by another.
    """
    site = getattr(settings, "SITEKIT_SITE", "")
    errors = []
    for kind, default in (("SESSION", "sessionid"), ("CSRF", "csrftoken")):
        name = getattr(settings, f"{kind}_COOKIE_NAME")
        if not site or name != f"{site}_{default}":
            errors.append(
                Error(
                    f"{kind}_COOKIE_NAME is {name!r}: each site names its cookies after itself",
                    hint=f'Set {kind}_COOKIE_NAME = f"{{SITEKIT_SITE}}_{default}" in the '
                    "site's settings module.",
                    id="sitekit.E001",
                )
            )
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
