"""Harbor: navy and brass, nautical."""

from .base import *

SITE_ID = 1
SITEKIT_SITE = "harbor"
ROOT_URLCONF = "project.sites.harbor.urls"
# This site's own cookies (project.core checks it): never read by another site.
SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"
CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"
SITEKIT_BRAND = {
    "name": "Harbor",
    "tagline": "News from the waterfront",
    "colors": {
        "primary": "#0b2545",
        "accent": "#c9a227",
        "background": "#eef3f8",
        "surface": "#ffffff",
        "text": "#13315c",
    },
    "logo": "harbor/logo.svg",
}
