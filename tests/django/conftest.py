"""Fixtures for the Django test suite (pytest-django runs it with settings.harbor)."""

import importlib
import json

import pytest
from django.contrib.sites.models import Site

SITE_NAMES = ("harbor", "meadow", "ember")

# The only settings that differ between the site modules.
PER_SITE_SETTINGS = (
    "SITE_ID", "SITEKIT_SITE", "ROOT_URLCONF", "SITEKIT_BRAND",
    "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME",
)


def site_settings(name):
    return importlib.import_module(f"settings.{name}")


def domain(name):
    return f"{name}.localhost"


@pytest.fixture
def use_site(settings):
    """Switch the running settings to one site's: ``use_site("meadow")``.

    Returns the site's settings module.
    """

    def apply(name):
        module = site_settings(name)
        for key in PER_SITE_SETTINGS:
            setattr(settings, key, getattr(module, key))
        settings.SETTINGS_MODULE = module.__name__
        Site.objects.clear_cache()
        return module

    yield apply
    Site.objects.clear_cache()


@pytest.fixture
def sites(db):
    """Site rows for all three sites, keyed by name, with their catalogue domains."""
    rows = {}
    for name in SITE_NAMES:
        module = site_settings(name)
        rows[name], _ = Site.objects.update_or_create(
            id=module.SITE_ID,
            defaults={"domain": domain(name), "name": module.SITEKIT_BRAND["name"]},
        )
    Site.objects.clear_cache()
    yield rows
    Site.objects.clear_cache()


@pytest.fixture
def catalogue(tmp_path):
    """Write a catalogue JSON file: ``catalogue({"harbor": "harbor.localhost", ...})``.

    A value may also be a dict of extra entry fields (state, settings_module).
    """
    counter = iter(range(1000))

    def write(entries):
        sites = []
        for name, value in entries.items():
            entry = {"name": name, "state": "present"}
            entry.update({"domain": value} if isinstance(value, str) else value)
            sites.append(entry)
        path = tmp_path / f"catalogue-{next(counter)}.json"
        path.write_text(json.dumps({"sites": sites}))
        return str(path)

    return write
