#!/usr/bin/env python
"""Django's command-line utility for the sitekit sites.

Every site runs with its own settings module, chosen with DJANGO_SETTINGS_MODULE
(or ``--settings``): ``settings.harbor``, ``settings.meadow``, ``settings.ember``;
a pooled master runs ``settings.pool``. Deploy tooling always sets
DJANGO_SETTINGS_MODULE explicitly.

For local development, when DJANGO_SETTINGS_MODULE is unset (DEBUG is then on unless
SITEKIT_DEBUG=0):

    SITEKIT_SITE=harbor python manage.py runserver   # one site: settings.harbor
    SITEKIT_SITE=2 python manage.py shell            # the site whose SITE_ID is 2
    python manage.py runserver                       # every site of inventories/local,
                                                     # by Host (settings.dev):
                                                     # http://harbor.localhost:8000/

Environment-specific values come from SITEKIT_* environment variables, usually
through a per-site env file named by SITEKIT_ENV_FILE (see settings/base.py).
"""

import os
import sys
from pathlib import Path


def site_settings_module(value, root):
    """``settings.<name>`` for SITEKIT_SITE, given as a site name or as a SITE_ID."""
    from sitekit.runtime.rules import settings_site_id, site_modules

    modules = site_modules(Path(root) / "settings")
    if value.isdigit():
        for path in modules:
            if settings_site_id(path)[0] == int(value):
                return f"settings.{path.stem}"
    elif value in {path.stem for path in modules}:
        return f"settings.{value}"
    known = ", ".join(f"{p.stem} ({settings_site_id(p)[0]})" for p in modules)
    raise SystemExit(
        f"SITEKIT_SITE={value!r}: no site of that name or SITE_ID in settings/ "
        f"(sites: {known})"
    )


def main():
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        site = os.environ.get("SITEKIT_SITE", "").strip()
        root = Path(__file__).resolve().parent
        module = site_settings_module(site, root) if site else "settings.dev"
        os.environ["DJANGO_SETTINGS_MODULE"] = module
        # Development: DEBUG on (and its public development key) unless the environment
        # says otherwise.
        os.environ.setdefault("SITEKIT_DEBUG", "1")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Is it installed and available on your PYTHONPATH? "
            "Did you forget to activate the release's virtual environment?"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
