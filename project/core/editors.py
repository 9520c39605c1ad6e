"""Who may edit which site, and the session of a login bound to its site.

All sites share one database, one user table and one session table. A staff user edits the
sites granted to them (:class:`project.core.models.SiteEditor`) and no other; a superuser
edits every site; a staff user with no grant edits none. The request's site is
``request.site``: the SITE_ID of a dedicated master, the site a pooled master picked by Host.
"""

import importlib

from django.conf import settings
from django.contrib.auth import SESSION_KEY, user_logged_in
from django.contrib.auth.models import AnonymousUser
from django.contrib.sites.models import Site
from django.dispatch import receiver

from sitekit.runtime.rules import valid_name

from .models import SiteEditor

#: The session key holding the id of the site the session's login happened on.
SITE_SESSION_KEY = "_sitekit_site_id"


def can_edit(user, site):
    """Whether ``user`` may use ``site``'s admin: active staff granted the site, or a
    superuser. No site (None) is never editable."""
    if site is None or not (user.is_active and user.is_staff):
        return False
    if user.is_superuser:
        return True
    return SiteEditor.objects.filter(user=user, site=site).exists()


def request_site(request):
    return getattr(request, "site", None)


def site_names():
    """Every site of the codebase (``project/sites/<name>``) -> its SITE_ID, read from its
    settings module (``settings.<name>``), as sync_sites maps a catalogue name to its row."""
    names = {}
    for app in settings.SITEKIT_SITE_APPS:
        name = app.rsplit(".", 1)[1]
        try:
            module = importlib.import_module(f"settings.{name}")
        except ImportError:
            continue
        site_id = getattr(module, "SITE_ID", None)
        if site_id is not None:
            names[name] = site_id
    return names


class UnknownSite(LookupError):
    pass


def site_by_name(name):
    """The Site row of the site called ``name``; UnknownSite (with a message) otherwise."""
    names = site_names()
    if not valid_name(name) or name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise UnknownSite(f"unknown site {name!r} (sites: {known})")
    try:
        return Site.objects.get(pk=names[name])
    except Site.DoesNotExist:
        raise UnknownSite(
            f"site {name!r} (SITE_ID {names[name]}) has no row in the Sites table: "
            "deploy it (sync_sites) first"
        ) from None


@receiver(user_logged_in, dispatch_uid="sitekit_bind_session_to_site")
def bind_session_to_site(sender, request, user, **kwargs):
    """At login, the session records its site. A login without a site (none on the request,
    no SITE_ID) records none, and its session is then refused on every site."""
    if request is None or not hasattr(request, "session"):
        return
    site = request_site(request)
    site_id = site.pk if site is not None else getattr(settings, "SITE_ID", None)
    if site_id is not None:
        request.session[SITE_SESSION_KEY] = site_id


class SiteSessionBindingMiddleware:
    """A logged-in session presented on a site other than its login's is anonymous here.

    The session table is shared: a session key from site A sent to site B (under B's cookie
    name) would otherwise log its user in on B. Such a request gets a fresh, empty session
    (B's cookie is then deleted) and an anonymous user; the session itself is left alone, so
    it stays valid on A. After AuthenticationMiddleware and after the request's site is known
    (CurrentSiteMiddleware, or the pool's PoolSiteMiddleware).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.session_store = importlib.import_module(settings.SESSION_ENGINE).SessionStore

    def __call__(self, request):
        session = getattr(request, "session", None)
        # No session cookie, no login: the session is not read (no Vary: Cookie for it).
        if session is not None and session.session_key and session.get(SESSION_KEY) is not None:
            site = request_site(request)
            bound = session.get(SITE_SESSION_KEY)
            if site is None or bound != site.pk:
                request.session = self.session_store()
                request.user = AnonymousUser()

                async def auser():
                    return AnonymousUser()

                request.auser = auser
        return self.get_response(request)
