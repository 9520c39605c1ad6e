"""Pools in the catalogue: ``pool: NAME`` on a site, the pools' resources in ``sitekit_pools``."""

from pathlib import Path

import pytest

from sitekit import model
from sitekit.catalogue import validate

REPO = Path(__file__).resolve().parents[2]
ENV = "prod"


def site(name, *domains, **fields):
    return {"name": name, "domains": list(domains), **fields}


def problems(raw, pools):
    result = validate(raw, env=ENV, pools=pools)
    assert not result.ok
    assert result.sites == [] and result.pools == []  # nothing is deployed
    return [str(p) for p in result.problems]


def only_problem(raw, pools):
    found = problems(raw, pools)
    assert len(found) == 1, found
    return found[0]


MIXED = [
    site("harbor", "harbor.localhost", "www.harbor.localhost", pool="shared"),
    site("meadow", "meadow.localhost", workers=3),
    site("ember", "ember.localhost", pool="shared", hsts="host"),
    {"name": "north", "state": "absent", "pool": "quiet"},
]
POOLS = {"shared": {"workers": 3, "threads": 4}, "quiet": None}


def test_a_mixed_catalogue_is_normalised_with_its_pools_and_masters():
    result = validate(MIXED, env=ENV, pools=POOLS, project_root=None)
    assert result.ok, [str(p) for p in result.problems]

    by_name = {s.name: s for s in result.sites}
    harbor = by_name["harbor"].as_dict()
    # A pooled site carries its pool's resources and names its master.
    assert (harbor["pool"], harbor["master"], harbor["workers"], harbor["threads"]) == (
        "shared", "shared", 3, 4
    )
    assert harbor["settings_module"] == "settings.harbor"  # its SITE_ID, brand, URLconf
    assert harbor["master_settings_module"] == "settings.pool"
    meadow = by_name["meadow"].as_dict()
    assert (meadow["pool"], meadow["master"], meadow["workers"]) == (None, "meadow", 3)
    assert meadow["master_settings_module"] == "settings.meadow"
    assert by_name["ember"].hsts == "host"  # the HSTS policy stays the site's

    pools = {p.name: p.as_dict() for p in result.pools}
    assert pools["shared"] == {
        "name": "shared",
        "settings_module": "settings.pool",
        "state": "present",
        "sites": ["harbor", "ember"],
        "domains": ["harbor.localhost", "www.harbor.localhost", "ember.localhost"],
        "workers": 3,
        "threads": 4,
        "timeout": 30,
        "graceful_timeout": 30,
        "max_requests": 1000,
        "max_requests_jitter": 100,
        "backlog": 2048,
    }
    # A pool whose sites are all absent runs no master.
    assert (pools["quiet"]["state"], pools["quiet"]["sites"]) == ("absent", [])

    masters = model.resolve(result, model.Layout()).masters
    assert [(m["name"], m["kind"], m["settings_module"], m["sites"]) for m in masters] == [
        ("shared", "pool", "settings.pool", ["harbor", "ember"]),
        ("meadow", "site", "settings.meadow", ["meadow"]),
    ]
    assert (masters[0]["workers"], masters[1]["workers"]) == (3, 3)


def test_no_pools_keeps_every_site_on_its_own_master():
    result = validate([site("harbor", "harbor.localhost")], env=ENV)
    assert result.ok
    assert result.pools == []
    masters = model.resolve(result, model.Layout()).masters
    assert [(m["name"], m["kind"]) for m in masters] == [("harbor", "site")]
    assert result.sites[0].pool is None


def test_moving_a_site_is_one_line():
    pooled = [site("harbor", "harbor.localhost", pool="shared"), site("ember", "e.localhost",
                                                                     pool="shared")]
    dedicated = [site("harbor", "harbor.localhost"), pooled[1]]
    before = validate(pooled, env=ENV, pools={"shared": {}})
    after = validate(dedicated, env=ENV, pools={"shared": {}})
    assert before.ok and after.ok
    assert [m["name"] for m in model.resolve(before, model.Layout()).masters] == ["shared"]
    assert [m["name"] for m in model.resolve(after, model.Layout()).masters] == ["harbor", "shared"]
    # what a deploy retires: the names the catalogue knows that run no master
    retired = model.resolve(before, model.Layout()).variables()["sitekit_retired_masters"]
    assert [(m["name"], m["user"], m["program"]) for m in retired] == [
        ("harbor", "sk-harbor", "sitekit-harbor"), ("ember", "sk-ember", "sitekit-ember")]
    assert model.resolve(after, model.Layout()).variables()["sitekit_retired_masters"] == [
        {"name": "ember", "user": "sk-ember", "program": "sitekit-ember"}]


@pytest.mark.parametrize("field", ["workers", "threads", "timeout", "graceful_timeout",
                                   "max_requests", "max_requests_jitter", "backlog"])
def test_a_pooled_site_with_a_resource_field_is_refused(field):
    raw = [site("harbor", "harbor.localhost", pool="shared", **{field: 2})]
    assert only_problem(raw, {"shared": {}}) == (
        f"prod: site 'harbor': field '{field}': a pooled site has no resources of its own: "
        f"pool 'shared' runs it; set {field} under sitekit_pools.shared, or remove 'pool' to "
        "give the site its own master"
    )


def test_an_unknown_pool_is_refused_with_a_suggestion():
    raw = [site("harbor", "harbor.localhost", pool="sahred")]
    assert problems(raw, {"shared": {}, "other": {}}) == [
        "prod: site 'harbor': field 'pool': unknown pool 'sahred' (did you mean 'shared'?); "
        "pools of this environment: other, shared",
        "prod: field 'sitekit_pools.shared': pool 'shared' has no site: put a site in it "
        "(pool: shared) or remove it",
        "prod: field 'sitekit_pools.other': pool 'other' has no site: put a site in it "
        "(pool: other) or remove it",
    ]


def test_a_pool_with_no_declared_pools():
    raw = [site("harbor", "harbor.localhost", pool="shared")]
    assert only_problem(raw, None) == (
        "prod: site 'harbor': field 'pool': unknown pool 'shared'; pools of this environment: "
        "none (declare it in sitekit_pools)"
    )


@pytest.mark.parametrize("value", [3, ["shared"], {"name": "shared"}, True])
def test_pool_must_be_a_pool_name(value):
    raw = [site("harbor", "harbor.localhost", pool=value), site("ember", "e.localhost",
                                                                pool="shared")]
    assert only_problem(raw, {"shared": {}}) == (
        f"prod: site 'harbor': field 'pool': unknown pool {value!r}; pools of this "
        "environment: shared"
    )


def test_a_pool_with_no_site_is_refused():
    raw = [site("harbor", "harbor.localhost")]
    assert only_problem(raw, {"shared": {"workers": 2}}) == (
        "prod: field 'sitekit_pools.shared': pool 'shared' has no site: put a site in it "
        "(pool: shared) or remove it"
    )


def test_a_pool_of_absent_sites_is_valid_and_runs_no_master():
    raw = [site("harbor", "harbor.localhost"), {"name": "ember", "state": "absent",
                                                "pool": "shared"}]
    result = validate(raw, env=ENV, pools={"shared": {}})
    assert result.ok
    resolved = model.resolve(result, model.Layout())
    assert [m["name"] for m in resolved.masters] == ["harbor"]
    assert [m["name"] for m in resolved.variables()["sitekit_retired_masters"]] == [
        "ember", "shared"]


@pytest.mark.parametrize("name", ["Shared", "1pool", "pool-a", "a" * 30, "class", ""])
def test_pool_names_follow_the_site_name_rules(name):
    raw = [site("harbor", "harbor.localhost", pool=name)]
    found = problems(raw, {name: {}})
    assert found[0] == (
        f"prod: field 'sitekit_pools.{name}': {name!r} is not a valid pool name: use 1 to 29 "
        "characters, lower-case letters, digits and '_', starting with a letter (it names a "
        "socket, a supervisor program and a unix user)"
    )


def test_a_pool_named_after_a_site_is_refused():
    raw = [site("harbor", "harbor.localhost", pool="meadow"),
           {"name": "meadow", "state": "absent"}]
    assert only_problem(raw, {"meadow": {}}) == (
        "prod: field 'sitekit_pools.meadow': 'meadow' is the name of a site: a pool needs a "
        "name of its own (it names a master's socket, supervisor program and unix user, as a "
        "site does)"
    )


def test_unknown_pool_fields_are_suggested():
    raw = [site("harbor", "harbor.localhost", pool="shared")]
    assert only_problem(raw, {"shared": {"wrokers": 4}}) == (
        "prod: field 'sitekit_pools.shared.wrokers': unknown field (did you mean 'workers'?); "
        "a pool sets its master's resources: workers, threads, timeout, graceful_timeout, "
        "max_requests, max_requests_jitter, backlog"
    )


def test_domains_and_hsts_are_not_pool_fields():
    raw = [site("harbor", "harbor.localhost", pool="shared")]
    found = problems(raw, {"shared": {"domains": ["x.localhost"], "hsts": "host"}})
    assert [f.split(":")[1].strip() for f in found] == [
        "field 'sitekit_pools.shared.domains'", "field 'sitekit_pools.shared.hsts'"
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"workers": 0}, "field 'sitekit_pools.shared.workers': must be between 1 and 64, got 0 "
                         "(gunicorn worker processes)"),
        ({"threads": "4"}, "field 'sitekit_pools.shared.threads': must be a whole number, got "
                           "'4' (threads per worker (more than 1 selects the gthread worker))"),
    ],
)
def test_pool_resources_are_range_checked(fields, message):
    raw = [site("harbor", "harbor.localhost", pool="shared")]
    assert only_problem(raw, {"shared": fields}) == f"prod: {message}"


@pytest.mark.parametrize("value", [["shared"], "shared", 3])
def test_sitekit_pools_must_be_a_mapping(value):
    found = problems([site("harbor", "harbor.localhost")], value)
    assert found == [
        f"prod: field 'sitekit_pools': must be a mapping of pool names to their resources, "
        f"got {value!r}"
    ]


def test_a_pool_entry_must_be_a_mapping():
    raw = [site("harbor", "harbor.localhost", pool="shared")]
    assert only_problem(raw, {"shared": 4}) == (
        "prod: field 'sitekit_pools.shared': must be a mapping of the pool's resources "
        "(workers, threads, timeout, graceful_timeout, max_requests, max_requests_jitter, "
        "backlog), got 4"
    )


@pytest.mark.parametrize("name", ["base", "pool", "dev"])
def test_reserved_site_names(name):
    assert only_problem([site(name, f"{name}.localhost")], None) == (
        f"prod: site '{name}': field 'name': '{name}' is reserved (settings/{name}.py is shared)"
    )


# --- sitekit check, sitekit site add -------------------------------------------------------

POOLED_SITES_YML = """\
sitekit_pools:
  shared: {workers: 2, threads: 4}
sitekit_sites:
  - name: harbor
    domains: [harbor.pools.example]
    pool: shared
  - name: meadow
    domains: [meadow.pools.example]
  - name: ember
    domains: [ember.pools.example]
    pool: shared
"""


def test_check_shows_each_pool_and_its_sites(project, capsys):
    from sitekit.cli import main

    root = project.env("pools", POOLED_SITES_YML)
    assert main(["--project", str(root), "check", "pools"]) == 0
    assert capsys.readouterr().out == (
        "pools: OK: 3 sites (3 present), 3 domains; pool shared: harbor, ember\n"
    )


def test_check_reports_a_pooled_site_with_resources(project, capsys):
    from sitekit.cli import main

    root = project.env(
        "pools", POOLED_SITES_YML.replace("    pool: shared\n  - name: meadow",
                                          "    pool: shared\n    workers: 4\n  - name: meadow")
    )
    assert main(["--project", str(root), "check", "pools"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "pools: 1 problem:",
        "  pools: site 'harbor': field 'workers': a pooled site has no resources of its own: "
        "pool 'shared' runs it; set workers under sitekit_pools.shared, or remove 'pool' to "
        "give the site its own master",
    ]


def test_editing_a_catalogue_with_pools_validates_them_too(project, capsys):
    from sitekit.cli import main

    root = project.env("pools", POOLED_SITES_YML)
    assert main(["--project", str(root), "domain", "add", "pools", "ember",
                 "www.ember.pools.example"]) == 0
    # Removing the pool's last present site keeps it valid: the entry stays, absent.
    assert main(["--project", str(root), "site", "remove", "pools", "ember"]) == 0
    assert main(["--project", str(root), "site", "remove", "pools", "harbor"]) == 0
    capsys.readouterr()
    assert main(["--project", str(root), "check", "pools"]) == 0
    assert capsys.readouterr().out == (
        "pools: OK: 3 sites (1 present), 1 domains; pool shared: idle\n"
    )


def test_the_sites_of_a_pool_share_one_scheme():
    message = only_problem(
        [site("harbor", "harbor.localhost", pool="shared"),
         site("ember", "ember.localhost", pool="shared", tls="off")],
        {"shared": {}},
    )
    assert message.startswith(
        "prod: site 'ember': field 'tls': 'off' while site 'harbor' of the same pool 'shared' "
        "has the environment's sitekit_tls"
    )
    assert "share one scheme" in message
    # The same TLS on each (or off on each) is fine, and so is a dedicated site with TLS off.
    for fields in ({}, {"tls": "acme"}):
        assert validate(
            [site("harbor", "harbor.localhost", pool="shared", **fields),
             site("ember", "ember.localhost", pool="shared", **fields),
             site("meadow", "meadow.localhost", tls="off")],
            env=ENV, pools={"shared": {}},
        ).ok
    assert validate(
        [site("harbor", "harbor.localhost", pool="shared", tls="off"),
         site("ember", "ember.localhost", pool="shared", tls=False)],
        env=ENV, pools={"shared": {}},
    ).ok


def test_a_master_carries_what_its_probes_and_scheme_need():
    result = validate(MIXED, env=ENV, pools=POOLS)
    shared, meadow = model.resolve(result, model.Layout()).masters
    assert (shared["canonical_domain"], shared["tls"]) == ("harbor.localhost", None)
    assert (meadow["canonical_domain"], meadow["tls"]) == ("meadow.localhost", None)


# --- sitekit site move ----------------------------------------------------------------------

MOVABLE_SITES_YML = """\
sitekit_sites:
  - name: harbor              # the first site
    domains: [harbor.pools.example]
    pool: shared

  - name: meadow
    domains: [meadow.pools.example]
    workers: 4                # busy: its own master

sitekit_pools:
  shared: {workers: 2, threads: 4}
"""


def test_site_move_into_a_pool_drops_the_sites_resources(project, capsys):
    from sitekit.cli import main

    root = project.env("pools", MOVABLE_SITES_YML)
    catalogue = root / "inventories" / "pools" / "group_vars" / "all" / "sites.yml"
    assert main(["--project", str(root), "site", "move", "pools", "meadow", "--pool",
                 "shared"]) == 0
    out = capsys.readouterr().out
    assert "pools: site 'meadow': now in pool 'shared'" in out
    assert "its own resources go (workers: 4)" in out
    assert "then stops meadow's own master (once nginx no longer sends it requests)" in out
    # one line changed: the resource line became the pool line; the blank line and the
    # comment of the next key stay
    assert catalogue.read_text() == MOVABLE_SITES_YML.replace(
        "    workers: 4                # busy: its own master\n", "    pool: shared\n"
    )
    assert main(["--project", str(root), "check", "pools"]) == 0
    assert "pool shared: harbor, meadow" in capsys.readouterr().out


def test_site_move_to_its_own_master_and_refusals(project, capsys):
    from sitekit.cli import main

    root = project.env("pools", MOVABLE_SITES_YML)
    catalogue = root / "inventories" / "pools" / "group_vars" / "all" / "sites.yml"
    # the pool's last site cannot leave it: the pool would have no site
    assert main(["--project", str(root), "site", "move", "pools", "harbor", "--dedicated"]) == 1
    assert "pool 'shared' has no site: put a site in it (pool: shared) or remove it" in (
        capsys.readouterr().err
    )
    assert catalogue.read_text() == MOVABLE_SITES_YML
    assert main(["--project", str(root), "site", "move", "pools", "meadow", "--pool",
                 "shared"]) == 0
    assert main(["--project", str(root), "site", "move", "pools", "harbor", "--dedicated",
                 "--workers", "3"]) == 0
    assert "pools: site 'harbor': now served by its own master" in capsys.readouterr().out
    text = catalogue.read_text()
    assert "    domains: [harbor.pools.example]\n    workers: 3\n\n  - name: meadow" in text
    assert main(["--project", str(root), "site", "move", "pools", "harbor", "--pool",
                 "nope"]) == 1
    err = capsys.readouterr().err
    assert "field 'pool': unknown pool 'nope'; pools of this environment: shared" in err
    assert catalogue.read_text() == text
    # nothing to do
    assert main(["--project", str(root), "site", "move", "pools", "harbor", "--dedicated"]) == 0
    assert "already served by its own master" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["--project", str(root), "site", "move", "pools", "harbor"])
    assert usage.value.code == 2
    capsys.readouterr()
    assert main(["--project", str(root), "site", "move", "pools", "harbor", "--pool",
                 "shared", "--workers", "2"]) != 0
    assert "--workers is for --dedicated" in capsys.readouterr().err


def test_site_move_of_an_absent_site_promises_no_master(project, capsys):
    """An absent site can be moved (its entry is prepared for its return), and the output says
    that no master starts or stops for it, as `site remove` and `domain remove` do for absent
    sites."""
    from sitekit.cli import main

    text = MOVABLE_SITES_YML.replace("    workers: 4 ", "    state: absent\n    workers: 4 ")
    root = project.env("pools", text)
    catalogue = root / "inventories" / "pools" / "group_vars" / "all" / "sites.yml"
    assert main(["--project", str(root), "site", "move", "pools", "meadow", "--dedicated",
                 "--workers", "3"]) == 0
    out = capsys.readouterr().out
    assert "starts" not in out.replace("starts and stops no master", "")
    assert out.splitlines()[-3:] == [
        "pools: site 'meadow': to be served by its own master when it is present again",
        "pools: site 'meadow': it is absent, so the next deploy starts and stops no master for "
        "it; bring it back with: sitekit site add pools meadow",
        "wrote inventories/pools/group_vars/all/sites.yml",
    ]
    assert "    state: absent\n    workers: 3 " in catalogue.read_text()
    assert main(["--project", str(root), "site", "move", "pools", "meadow", "--pool",
                 "shared"]) == 0
    out = capsys.readouterr().out
    assert "starts" not in out.replace("starts and stops no master", "")
    assert "pools: site 'meadow': now in pool 'shared'" in out
    assert "its own resources go (workers: 3)" in out
    assert "it is absent, so the next deploy starts and stops no master for it" in out
    # a present site is told what the deploy does
    assert main(["--project", str(root), "site", "add", "pools", "meadow"]) == 0
    capsys.readouterr()
    assert main(["--project", str(root), "site", "move", "pools", "meadow", "--dedicated"]) == 0
    assert "  - starts meadow's own master (sitekit-meadow)" in capsys.readouterr().out


def test_a_pool_larger_than_one_environment_string_holds_is_refused():
    """Its master holds each site's secret key in SECRET_KEY_FALLBACKS: 2,000 sites' keys fit in
    the 128 KiB Linux allows one environment string (MAX_ARG_STRLEN); 2,001 are refused by name."""
    def catalogue(count):
        return [site(f"s{i:04d}", f"s{i:04d}.example.org", pool="big") for i in range(count)]

    result = validate(catalogue(2000), env=ENV, pools={"big": {}})
    assert result.ok
    (pool,) = model.resolve(result, model.Layout()).masters
    env = model.master_env(pool, secret_key_base="x" * 64)
    line = f"SITEKIT_SECRET_KEY_FALLBACKS={env['SITEKIT_SECRET_KEY_FALLBACKS']}"
    assert len(line.encode()) + 1 <= 128 * 1024
    assert only_problem([*catalogue(2001), site("solo", "solo.example.org")], {"big": {}}) == (
        "prod: field 'sitekit_pools.big': pool 'big' has 2,001 present sites; a pool serves at "
        "most 2,000 (its master holds each site's secret key in one environment variable, which "
        "Linux limits to 128 KiB): split it into several pools"
    )
    # absent sites hold no key
    absent = [*catalogue(2000), dict(site("gone", "gone.example.org", pool="big"), state="absent")]
    assert validate(absent, env=ENV, pools={"big": {}}).ok
