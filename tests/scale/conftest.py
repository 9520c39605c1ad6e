"""Fixtures of the scale tests: a generated catalogue of 1,000 sites and 5,000 domains.

The catalogue, its scratch codebase and its rendering through the nginx role's templates come
from ``bench/nginx_render.py``, the code ``bench/nginx_scale.py`` measures with.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.nginx_render import make_catalogue, validate, write_settings

SITES = 1000
DOMAINS_PER_SITE = 5
SEED = 421


@dataclass
class Catalogue:
    raw: list[dict]  # as written in a sites.yml
    sites: list[dict]  # validated and normalised, as the preflight hands them to the roles
    project: Path  # the scratch codebase: one settings module per site


@pytest.fixture(scope="session")
def nginx_binary() -> str:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (make system-deps installs it)")
    return nginx


@pytest.fixture(scope="session")
def big_catalogue(tmp_path_factory) -> Catalogue:
    """1,000 sites with 5 domains each, validated against a codebase that has their settings."""
    project = tmp_path_factory.mktemp("codebase")
    raw = make_catalogue(SITES, DOMAINS_PER_SITE, SEED)
    write_settings(project, raw)
    sites, _ = validate(raw, project, repeat=1)
    return Catalogue(raw, sites, project)
