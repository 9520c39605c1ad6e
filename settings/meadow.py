"""Meadow: light and green."""

from .base import *

SITE_ID = 2
SITEKIT_SITE = "meadow"
ROOT_URLCONF = "project.sites.meadow.urls"
# This site's own cookies (project.core checks it): never read by another site.
SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"
CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"
SITEKIT_BRAND = {
    "name": "Meadow",
    "tagline": "Fresh notes from the fields",
    "colors": {
        "primary": "#2d6a4f",
        "accent": "#f4a259",
        "background": "#f6fbf4",
        "surface": "#ffffff",
        "text": "#1b4332",
    },
    "logo": "meadow/logo.svg",
}
