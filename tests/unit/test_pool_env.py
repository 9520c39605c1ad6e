"""What the deploy hands a pooled master: its sites file (named by SITEKIT_POOL_SITES_FILE in
its env file) from the validated catalogue, read back by settings.base.pool_sites_file (the
pooled settings' one reader)."""

import json
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from settings.base import pool_sites_file
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


def pool_file_sites(scheme, port, keeps=()):
    """The sites file of the pool's master, as the model resolves it, and the master."""
    layout = (model.Layout(tls="self-signed", tls_port=port) if scheme == "https"
              else model.Layout(tls="off", public_port=port))
    resolved = model.resolve(catalogue(), layout)
    master = resolved.master_of("shared")
    return model.pool_sites_file(master, resolved.sites, keeps), master


def test_pool_sites_lists_present_sites_with_origins_and_hsts():
    value, master = pool_file_sites("https", 8443)
    # the env file names the file, next to it; it lists none of the sites' domains (the
    # warm-up host is the first site's)
    assert master["env"]["SITEKIT_POOL_SITES_FILE"] == master["sites_file"]
    assert master["sites_file"] == master["env_file"].replace(".env", ".sites.json")
    assert [k for k, v in master["env"].items() if "example.org" in v] == [
        "SITEKIT_WARMUP_HOST"]
    assert json.loads(value) == [
        {"name": "harbor", "domains": ["harbor.example.org", "*.harbor.example.org"],
         "csrf_trusted_origins": ["https://harbor.example.org:8443",
                                  "https://*.harbor.example.org:8443"],
         "hsts": "preload"},
        {"name": "meadow", "domains": ["meadow.example.org"],
         "csrf_trusted_origins": ["https://meadow.example.org:8443"], "hsts": "subdomains"},
    ]
    assert len(value.splitlines()) == 4  # one site per line


def test_a_pool_keeps_the_sites_leaving_it_until_nginx_has_switched():
    value, _ = pool_file_sites("http", 80, keeps=["ember", "north"])
    # ember is absent: not kept; a name the catalogue does not have is not either
    assert [s["name"] for s in json.loads(value)] == ["harbor", "meadow"]


def test_the_pooled_settings_read_back_what_the_deploy_writes(tmp_path):
    path = tmp_path / "shared.sites.json"
    path.write_text(pool_file_sites("http", 80)[0])
    sites = pool_sites_file(str(path))
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


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "SITEKIT_POOL_SITES_FILE {path} cannot be read: "),
        ("[\n", "{path} is not valid JSON: "),
        ("{}", "{path} must be a non-empty JSON list of sites"),
        ('[{"name": "harbor", "domains": ["h.example"]},\n {"name": "Bad!"}]',
         "{path}[1]: invalid site name 'Bad!'"),
        ('[{"name": "harbor", "domains": []}]',
         "{path}[0] (harbor): 'domains' must be a list of names"),
    ],
)
def test_a_bad_sites_file_is_named_with_its_entry(tmp_path, content, message):
    path = tmp_path / "shared.sites.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ImproperlyConfigured) as raised:
        pool_sites_file(str(path))
    assert str(raised.value).startswith(message.format(path=path))


def test_a_pool_without_its_sites_file_is_refused():
    with pytest.raises(ImproperlyConfigured, match="SITEKIT_POOL_SITES_FILE must name"):
        pool_sites_file("")


def test_a_changed_sites_file_names_its_pool_so_the_plan_reloads_it():
    _, master = pool_file_sites("http", 80)
    assert model.owner_of(master["sites_file"], [master]) == ("shared", "sites file")
    assert model.owner_of(master["env_file"], [master]) == ("shared", "environment file")
