"""What the deploy hands a pooled master: SITEKIT_POOL_SITES from the validated catalogue,
read back by settings.base.pool_sites (the pooled settings' one reader)."""

import json
from pathlib import Path

from settings.base import pool_sites
from sitekit import model
from sitekit.catalogue import validate

REPO = Path(__file__).resolve().parents[2]


def catalogue():
    result = validate(
        [
            {"name": "harbor", "domains": ["harbor.example.org", "*.harbor.example.org"],
             "pool": "shared", "hsts": "preload"},
            {"name": "meadow", "domains": ["meadow.example.org"], "pool": "shared"},
            {"name": "ember", "state": "absent", "pool": "shared"},
        ],
        env="prod",
        pools={"shared": {"threads": 4}},
        project_root=REPO,
    )
    assert result.ok, [str(p) for p in result.problems]
    return result


def pool_env_sites(scheme, port):
    """SITEKIT_POOL_SITES of the pool's master, as the model resolves it."""
    layout = (model.Layout(tls="self-signed", tls_port=port) if scheme == "https"
              else model.Layout(tls="off", public_port=port))
    master = model.resolve(catalogue(), layout).master_of("shared")
    return master["env"]["SITEKIT_POOL_SITES"]


def test_pool_sites_lists_present_sites_with_origins_and_hsts():
    value = pool_env_sites("https", 8443)
    assert json.loads(value) == [
        {"name": "harbor", "domains": ["harbor.example.org", "*.harbor.example.org"],
         "csrf_trusted_origins": ["https://harbor.example.org:8443",
                                  "https://*.harbor.example.org:8443"],
         "hsts": "preload"},
        {"name": "meadow", "domains": ["meadow.example.org"],
         "csrf_trusted_origins": ["https://meadow.example.org:8443"], "hsts": "subdomains"},
    ]
    assert "\n" not in value  # one env-file line


def test_the_pooled_settings_read_back_what_the_deploy_writes():
    sites = pool_sites(pool_env_sites("http", 80))
    harbor, meadow = sites
    # From the site's own settings module, not from the deploy:
    assert (harbor["site_id"], harbor["urlconf"], harbor["brand"]["name"]) == (
        1, "project.sites.harbor.urls", "Harbor"
    )
    assert (harbor["session_cookie_name"], harbor["csrf_cookie_name"]) == (
        "harbor_sessionid", "harbor_csrftoken"
    )
    assert meadow["csrf_trusted_origins"] == ("http://meadow.example.org",)
    assert (harbor["hsts"], meadow["hsts"]) == ("preload", "subdomains")
