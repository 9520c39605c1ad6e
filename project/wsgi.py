"""WSGI entry point: ``gunicorn project.wsgi:application``.

The process environment must set DJANGO_SETTINGS_MODULE to the site's settings
module (``settings.harbor``, ...); there is deliberately no default, so a
master started without it fails at boot instead of serving the wrong site.
"""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    raise ImproperlyConfigured(
        "DJANGO_SETTINGS_MODULE is not set; expected the site's settings module, "
        "e.g. settings.harbor"
    )

application = get_wsgi_application()
