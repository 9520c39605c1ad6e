"""Ember: dark, with orange highlights."""

from .base import *

SITE_ID = 3
SITEKIT_SITE = "ember"
ROOT_URLCONF = "project.sites.ember.urls"
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
