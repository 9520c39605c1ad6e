"""Ember: dark, with orange highlights."""

from .base import *

SITE_ID = 3
SITEKIT_SITE = "ember"
ROOT_URLCONF = "project.sites.ember.urls"
# This site's own cookies (project.core checks it): never read by another site.
SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"
CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"
SITEKIT_BRAND = {
    "name": "Ember",
    "tagline": "Stories that keep the fire going",
    "colors": {
        "primary": "#ff6b1a",
        "accent": "#ffb347",
        "background": "#16110e",
        "surface": "#221a15",
        "text": "#f3e9e2",
    },
    "logo": "ember/logo.svg",
}
