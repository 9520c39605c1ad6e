"""The catalogue's basic vocabulary, with no dependencies.

Imported by the validator (:mod:`sitekit.catalogue`) and by the Django management commands
that read the catalogue the deploy hands them, which run inside a release's virtualenv.
"""

import re

#: A site name: it names a Python module (settings/<name>.py), a socket, a supervisor program
#: and, in system mode, a unix user ``sk-<name>`` (at most 32 characters).
SITE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,28}\Z")

#: What ``state`` may be.
STATES = ("present", "absent")

#: What ``hsts`` may be: the HTTP Strict Transport Security policy a site sends when its
#: environment is served over https. The first is the default.
HSTS_POLICIES = ("subdomains", "preload", "host")

#: What ``tls`` may be (a site's field, overriding its environment's ``sitekit_tls``): how
#: nginx gets the site's certificate. YAML reads a bare ``off`` as false, which means "off" too.
TLS_MODES = ("self-signed", "provided", "acme", "off")


def tls_mode(value):
    """A TLS mode as written in YAML (``off`` may arrive as false), or None when invalid."""
    if value is False:
        return "off"
    return value if isinstance(value, str) and value in TLS_MODES else None

#: Names no site may take: settings modules every site, or a pooled master, uses.
RESERVED_NAMES = frozenset({"base", "pool", "dev"})

#: The settings module of a pooled master (several sites, each request by its Host).
POOL_SETTINGS_MODULE = "settings.pool"
