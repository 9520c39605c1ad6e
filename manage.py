#!/usr/bin/env python
"""Django's command-line utility for the sitekit sites.

Every site runs with its own settings module, chosen with DJANGO_SETTINGS_MODULE
(or ``--settings``): ``settings.harbor``, ``settings.meadow``, ``settings.ember``.
When neither is given, ``settings.harbor`` is used as a convenience for local
development; deploy tooling always sets DJANGO_SETTINGS_MODULE explicitly.

Environment-specific values come from SITEKIT_* environment variables, usually
through a per-site env file named by SITEKIT_ENV_FILE (see settings/base.py).
"""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.harbor")
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
