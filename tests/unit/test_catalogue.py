"""The catalogue validator: normalised sites for a good catalogue, located problems otherwise."""

from pathlib import Path

import pytest

from sitekit.catalogue import validate

REPO = Path(__file__).resolve().parents[2]

ENV = "prod"


def site(name, *domains, **fields):
    return {"name": name, "domains": list(domains), **fields}


def problems(raw, root=None, env=ENV):
    result = validate(raw, env=env, project_root=root)
    assert not result.ok
    assert result.sites == []  # a catalogue with problems deploys nothing
    return [str(p) for p in result.problems]


def only_problem(raw, root=None):
    found = problems(raw, root)
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def settings_root(tmp_path):
    """A project root whose ``settings/`` holds the modules given: ``settings_root(harbor=...)``."""
    (tmp_path / "settings").mkdir()

    def make(**modules):
        for name, body in modules.items():
            (tmp_path / "settings" / f"{name}.py").write_text(body)
        return tmp_path

    return make


# --- a valid catalogue ---------------------------------------------------------------------


def test_valid_catalogue_is_normalised_with_defaults_and_settings():
    raw = [
        site("harbor", "harbor.localhost", "www.harbor.localhost", workers=4, threads=8),
        site("meadow", "meadow.localhost", "*.meadow.localhost", state="present", hsts="host"),
        {"name": "ember", "state": "absent"},
    ]
    result = validate(raw, env=ENV, project_root=REPO)

    assert result.ok, [str(p) for p in result.problems]
    assert result.problems == []
    by_name = {s.name: s.as_dict() for s in result.sites}
    assert list(by_name) == ["harbor", "meadow", "ember"]
    assert by_name["harbor"] == {
        "name": "harbor",
        "domains": ["harbor.localhost", "www.harbor.localhost"],
        "state": "present",
        "workers": 4,
        "threads": 8,
        "timeout": 30,
        "graceful_timeout": 30,
        "max_requests": 1000,
        "max_requests_jitter": 100,
        "backlog": 2048,
        "hsts": "subdomains",
        "tls": None,
        "settings_module": "settings.harbor",
        "site_id": 1,
        "pool": None,
        "canonical_domain": "harbor.localhost",
        "master": "harbor",
        "master_settings_module": "settings.harbor",
    }
    meadow = by_name["meadow"]
    assert (meadow["workers"], meadow["threads"], meadow["site_id"]) == (2, 1, 2)
    assert meadow["canonical_domain"] == "meadow.localhost"
    assert meadow["hsts"] == "host"
    ember = by_name["ember"]
    assert ember["state"] == "absent"
    assert ember["domains"] == []
    assert ember["canonical_domain"] is None
    assert (ember["settings_module"], ember["site_id"]) == ("settings.ember", 3)
    assert [s.present for s in result.sites] == [True, True, False]


def test_resource_field_boundaries_are_accepted():
    raw = [
        site(
            "harbor",
            "harbor.localhost",
            workers=64,
            threads=1,
            timeout=5,
            graceful_timeout=600,
            max_requests=0,
            max_requests_jitter=100_000,
            backlog=65535,
        ),
        site("meadow", "meadow.localhost", workers=1, timeout=600, backlog=64),
    ]
    result = validate(raw, env=ENV)
    assert result.ok, [str(p) for p in result.problems]
    harbor, meadow = result.sites
    assert (harbor.workers, harbor.max_requests, harbor.backlog) == (64, 0, 65535)
    assert (meadow.workers, meadow.timeout, meadow.backlog) == (1, 600, 64)


def test_without_project_root_settings_are_not_read():
    result = validate([site("newsite", "new.example.org")], env=ENV)
    assert result.ok
    assert result.sites[0].settings_module == "settings.newsite"
    assert result.sites[0].site_id is None


@pytest.mark.parametrize("raw", [None, []])
def test_empty_catalogue_is_valid(raw):
    result = validate(raw, env=ENV)
    assert result.ok
    assert result.sites == []


def test_longest_site_name_is_accepted():
    name = "a" * 29  # so that its unix user, sk-<name>, fits in 32 characters
    result = validate([site(name, "a.example.org")], env=ENV)
    assert result.ok
    assert result.sites[0].name == name


# --- domains -------------------------------------------------------------------------------


def test_domain_shared_by_two_sites_names_both():
    raw = [
        site("harbor", "harbor.localhost", "shared.example.org"),
        site("meadow", "meadow.localhost", "shared.example.org"),
    ]
    assert only_problem(raw, REPO) == (
        "prod: site 'meadow': field 'domains[1]': 'shared.example.org' already belongs to "
        "site 'harbor': a domain may belong to one site only"
    )


def test_domain_of_an_absent_site_still_belongs_to_it():
    raw = [
        site("harbor", "harbor.localhost"),
        site("meadow", "harbor.localhost", state="absent"),
    ]
    message = only_problem(raw)
    assert message.startswith("prod: site 'meadow': field 'domains[0]': 'harbor.localhost'")
    assert "already belongs to site 'harbor'" in message


def test_domain_listed_twice_in_one_site():
    raw = [site("harbor", "harbor.localhost", "www.harbor.localhost", "harbor.localhost")]
    assert only_problem(raw, REPO) == (
        "prod: site 'harbor': field 'domains[2]': 'harbor.localhost' is listed twice in this site"
    )


@pytest.mark.parametrize(
    ("domain", "fragment"),
    [
        ("Harbor.localhost", "must be lower-case; write 'harbor.localhost'"),
        ("harbor.localhost.", "ends with a dot; write 'harbor.localhost'"),
        ("http://harbor.localhost", "is a URL"),
        ("harbor", "has a single label"),
        ("bücher.de", "write 'xn--bcher-kva.de'"),
        (8080, "must be a domain name (text), got 8080"),
    ],
)
def test_invalid_domain_is_located(domain, fragment):
    message = only_problem([site("harbor", "harbor.localhost", domain)])
    assert message.startswith("prod: site 'harbor': field 'domains[1]': ")
    assert fragment in message


@pytest.mark.parametrize("domains", [None, []])
def test_present_site_needs_a_domain(domains):
    assert only_problem([{"name": "harbor", "domains": domains}]) == (
        "prod: site 'harbor': field 'domains': a present site needs at least one domain "
        "(the first is its canonical domain)"
    )


def test_present_site_without_domains_key_needs_a_domain():
    message = only_problem([{"name": "harbor"}])
    assert message.startswith("prod: site 'harbor': field 'domains': a present site needs")


def test_absent_site_may_have_no_domains():
    result = validate([{"name": "harbor", "state": "absent", "domains": []}], env=ENV)
    assert result.ok
    assert result.sites[0].domains == []


def test_domains_written_as_one_string_is_one_problem():
    assert only_problem([{"name": "harbor", "domains": "harbor.localhost"}]) == (
        "prod: site 'harbor': field 'domains': must be a list of domain names, "
        "got 'harbor.localhost'"
    )


# --- site names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Harbor", "1harbor", "har-bor", "har bor", "class", "import", "a" * 30, "harbor\n", "", 42],
)
def test_bad_site_name(name):
    message = only_problem([site(name, "harbor.localhost")])
    assert f"field 'name': {name!r} is not a valid site name" in message
    assert "use 1 to 29 characters, lower-case letters, digits and '_', starting with a letter" in (
        message
    )


def test_bad_site_name_is_located_by_name_or_position():
    assert only_problem([site("Harbor", "harbor.localhost")]).startswith(
        "prod: site 'Harbor': field 'name': "
    )
    assert only_problem([site("meadow", "meadow.localhost"), site(42, "x.localhost")]).startswith(
        "prod: site '#2': field 'name': "
    )


def test_site_without_name_is_located_by_position():
    raw = [site("harbor", "harbor.localhost"), {"domains": ["x.localhost"]}]
    assert only_problem(raw) == "prod: site '#2': field 'name': is required"


def test_site_name_used_twice():
    raw = [
        site("harbor", "harbor.localhost"),
        site("meadow", "meadow.localhost"),
        site("harbor", "www.harbor.localhost"),
    ]
    # With the real settings module: one problem, not also a SITE_ID clash with itself.
    assert only_problem(raw, REPO) == (
        "prod: site 'harbor': field 'name': site name is used twice (entries #1 and #3)"
    )


# --- settings modules and SITE_ID ----------------------------------------------------------


def test_missing_settings_module(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n")
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    message = only_problem(raw, root)
    assert message.startswith("prod: site 'meadow': field 'name': ")
    assert "no settings module for this site: expected settings/meadow.py" in message


def test_project_root_without_settings_dir_reports_every_site(tmp_path):
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    found = problems(raw, tmp_path)
    assert len(found) == 2
    assert "site 'harbor': field 'name': no settings module" in found[0]
    assert "site 'meadow': field 'name': no settings module" in found[1]


NOT_A_SITE_ID = "sets SITE_ID to something other than a whole number from 1 to 2147483647"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("from .base import *\n", "does not set SITE_ID"),
        ("if True:\n    SITE_ID = 2\n", "does not set SITE_ID"),
        ("SITE_ID = '2'\n", NOT_A_SITE_ID),
        ("SITE_ID = 0\n", NOT_A_SITE_ID),
        ("SITE_ID = True\n", NOT_A_SITE_ID),
        ("SITE_ID = 2.0\n", NOT_A_SITE_ID),
        ("SITE_ID = int('2')\n", NOT_A_SITE_ID),
        ("SITE_ID = = 2\n", "has a syntax error on line 1"),
    ],
)
def test_settings_module_without_usable_site_id(settings_root, body, fragment):
    root = settings_root(meadow=body)
    message = only_problem([site("meadow", "meadow.localhost")], root)
    assert message.startswith("prod: site 'meadow': field 'name': ")
    assert "meadow.py" in message
    assert fragment in message


@pytest.mark.parametrize("body", ["SITE_ID = 7\n", "SITE_ID: int = 7\n", "X = 1\nSITE_ID = 7\n"])
def test_site_id_is_read_without_importing(settings_root, body):
    # The module would fail to import: the validator must not run it.
    root = settings_root(meadow="raise SystemExit('imported')\n" + body)
    result = validate([site("meadow", "meadow.localhost")], env=ENV, project_root=root)
    assert result.ok, [str(p) for p in result.problems]
    assert result.sites[0].site_id == 7


SHARED = (
    "settings/harbor.py and settings/meadow.py both set SITE_ID 1: each site needs its own row "
    "in the Sites table (give all but one of them a new SITE_ID; the next free one is 2)"
)


def test_two_sites_sharing_a_site_id(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n", meadow="SITE_ID = 1\n")
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    assert only_problem(raw, root) == f"prod: site 'meadow': field 'name': {SHARED}"


def test_shared_site_id_is_reported_alongside_other_problems(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n", meadow="SITE_ID = 1\n")
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost", workers=0)]
    found = problems(raw, root)
    assert len(found) == 2, found
    assert found[0].startswith("prod: site 'meadow': field 'workers': ")
    assert found[1] == f"prod: site 'meadow': field 'name': {SHARED}"


#: Settings modules that cannot be parsed, or whose SITE_ID the Sites table cannot hold:
#: (module text, what the problem says after "settings/meadow.py ").
HOSTILE_MODULES = {
    "nul_byte": (b"SITE_ID = 2\n\x00\n", "cannot be parsed: it holds a NUL byte (line 2)"),
    "deep_unary": (
        b"SITE_ID = 2\nX = " + b"-" * 200_000 + b"1\n",
        "cannot be parsed: it nests expressions too deeply",
    ),
    "deep_sum": (
        b"SITE_ID = 2\nX = " + b"1+" * 200_000 + b"1\n",
        "cannot be parsed: it nests expressions too deeply",
    ),
    "deep_brackets": (
        b"SITE_ID = 2\nX = " + b"[" * 1000 + b"]" * 1000 + b"\n",
        "has a syntax error on line 2: too many nested parentheses",
    ),
    "site_id_above_the_column": (
        b"SITE_ID = 2147483648\n",
        "sets SITE_ID to 2147483648, more than 2147483647, the highest id the Sites table "
        "holds",
    ),
    "site_id_of_4000_digits": (
        b"SITE_ID = " + b"9" * 4000 + b"\n",
        "sets SITE_ID to a number of 4000 digits, more than 2147483647",
    ),
    "site_id_of_5000_digits": (
        b"SITE_ID = " + b"9" * 5000 + b"\n",
        "has a syntax error on line 1: Exceeds the limit (4300 digits) for integer string "
        "conversion: value has 5000 digits",
    ),
    "negative": (b"SITE_ID = -1\n", NOT_A_SITE_ID),
    "not_utf8": (b"SITE_ID = 2\n\xff\n", "is not UTF-8 text (byte 12)"),
    "huge_file": (b"SITE_ID = 2\n" + b"#" * (1 << 20) + b"\n", "is larger than 1048576 bytes"),
}


@pytest.mark.parametrize("body", HOSTILE_MODULES.values(), ids=HOSTILE_MODULES)
def test_a_hostile_settings_module_is_one_problem_naming_it(settings_root, body):
    text, says = body
    root = settings_root(harbor="SITE_ID = 1\n")
    (root / "settings" / "meadow.py").write_bytes(text)
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    message = only_problem(raw, root)
    assert message.startswith("prod: site 'meadow': field 'name': settings/meadow.py "), message
    assert says in message
    assert len(message) < 300  # a number of 4000 digits is not repeated


def test_the_highest_site_id_the_column_holds_is_accepted(settings_root):
    root = settings_root(harbor="SITE_ID = 2147483647\n")
    result = validate([site("harbor", "harbor.localhost")], env=ENV, project_root=root)
    assert result.ok, result.problems
    assert result.sites[0].site_id == 2147483647


@pytest.mark.parametrize("body", HOSTILE_MODULES.values(), ids=HOSTILE_MODULES)
def test_a_hostile_module_of_no_site_of_the_catalogue_is_not_its_problem(settings_root, body):
    root = settings_root(harbor="SITE_ID = 1\n")
    (root / "settings" / "acme.py").write_bytes(body[0])
    result = validate([site("harbor", "harbor.localhost")], env=ENV, project_root=root)
    assert result.ok, result.problems


def test_a_site_id_shared_with_a_module_of_no_catalogue_names_both(settings_root):
    # what two `sitekit site add` at once, without a lock, would leave: one site's module
    # in the catalogue, the other's orphaned, both with the same SITE_ID
    root = settings_root(harbor="SITE_ID = 1\n", meadow="SITE_ID = 2\n", acme="SITE_ID = 2\n")
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    assert only_problem(raw, root) == (
        "prod: site 'meadow': field 'name': settings/meadow.py and settings/acme.py both set "
        "SITE_ID 2: each site needs its own row in the Sites table (give all but one of them a "
        "new SITE_ID; the next free one is 3)"
    )


def test_a_module_that_cannot_be_parsed_still_owns_its_site_id(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n")
    (root / "settings" / "acme.py").write_bytes(b"SITE_ID = 1\n\x00\n")
    (root / "settings" / "zenith.py").write_bytes(b"SITE_ID = 9\n\x00\n")
    message = only_problem([site("harbor", "harbor.localhost")], root)
    assert "settings/harbor.py and settings/acme.py both set SITE_ID 1" in message
    assert "the next free one is 10" in message


def test_three_modules_sharing_a_site_id_are_one_problem(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n", meadow="SITE_ID = 1\n", acme="SITE_ID = 1\n")
    raw = [site("harbor", "harbor.localhost"), site("meadow", "meadow.localhost")]
    assert only_problem(raw, root).startswith(
        "prod: site 'meadow': field 'name': settings/harbor.py, settings/meadow.py and "
        "settings/acme.py all set SITE_ID 1: "
    )


def test_site_ids_of_the_shared_modules_are_no_site_s(settings_root):
    # base, pool and dev are shared modules, not sites: whatever they set is not compared
    root = settings_root(harbor="SITE_ID = 1\n", dev="SITE_ID = 1\n", pool="SITE_ID = 1\n")
    assert validate([site("harbor", "harbor.localhost")], env=ENV, project_root=root).ok


# --- fields --------------------------------------------------------------------------------


def test_unknown_field_suggests_the_close_match():
    message = only_problem([site("harbor", "harbor.localhost", wrokers=4)])
    assert message.startswith("prod: site 'harbor': field 'wrokers': unknown field")
    assert "(did you mean 'workers'?)" in message
    assert "known fields: name, domains, state, workers, threads, timeout" in message


@pytest.mark.parametrize(("typo", "meant"), [("domain", "domains"), ("treads", "threads")])
def test_unknown_field_suggestions(typo, meant):
    message = only_problem([site("harbor", "harbor.localhost", **{typo: 1})])
    assert f"field '{typo}': unknown field (did you mean '{meant}'?)" in message


def test_unknown_field_without_close_match_lists_known_fields():
    message = only_problem([site("harbor", "harbor.localhost", colour="blue")])
    assert "field 'colour': unknown field; known fields: name, domains, state" in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("workers", 0, "must be between 1 and 64, got 0"),
        ("workers", 65, "must be between 1 and 64, got 65"),
        ("threads", 0, "must be between 1 and 64, got 0"),
        ("timeout", 4, "must be between 5 and 600, got 4"),
        ("timeout", 601, "must be between 5 and 600, got 601"),
        ("graceful_timeout", 0, "must be between 1 and 600, got 0"),
        ("max_requests", -1, "must be between 0 and 1000000, got -1"),
        ("max_requests_jitter", 100_001, "must be between 0 and 100000, got 100001"),
        ("backlog", 63, "must be between 64 and 65535, got 63"),
        ("backlog", 65536, "must be between 64 and 65535, got 65536"),
        ("workers", "4", "must be a whole number, got '4'"),
        ("workers", 2.5, "must be a whole number, got 2.5"),
        ("workers", None, "must be a whole number, got None"),
        ("workers", [2], "must be a whole number, got [2]"),
        ("workers", True, "must be a whole number, got True"),
        ("max_requests", False, "must be a whole number, got False"),
    ],
)
def test_resource_field_out_of_range_or_wrong_type(field, value, fragment):
    message = only_problem([site("harbor", "harbor.localhost", **{field: value})])
    assert message.startswith(f"prod: site 'harbor': field '{field}': {fragment} (")


@pytest.mark.parametrize("state", ["gone", "Present", None, ""])
def test_bad_state(state):
    assert only_problem([site("harbor", "harbor.localhost", state=state)]) == (
        f"prod: site 'harbor': field 'state': must be 'present' or 'absent', got {state!r}"
    )


@pytest.mark.parametrize("hsts", ["subdomains", "preload", "host"])
def test_hsts_policies(hsts):
    result = validate([site("harbor", "harbor.localhost", hsts=hsts)], env=ENV)
    assert result.ok, [str(p) for p in result.problems]
    assert result.sites[0].hsts == hsts


@pytest.mark.parametrize("hsts", ["on", "Preload", True, None, ""])
def test_bad_hsts(hsts):
    assert only_problem([site("harbor", "harbor.localhost", hsts=hsts)]) == (
        "prod: site 'harbor': field 'hsts': must be 'subdomains', 'preload' or 'host', "
        f"got {hsts!r} (the site's HSTS policy over https)"
    )


@pytest.mark.parametrize(
    ("tls", "stored"),
    [("self-signed", "self-signed"), ("provided", "provided"), ("acme", "acme"), ("off", "off"),
     (False, "off")],  # YAML reads a bare `off` as false
)
def test_tls_modes(tls, stored):
    result = validate([site("harbor", "harbor.localhost", tls=tls)], env=ENV)
    assert result.ok, [str(p) for p in result.problems]
    assert result.sites[0].tls == stored


def test_tls_left_out_follows_the_environment():
    result = validate([site("harbor", "harbor.localhost")], env=ENV)
    assert result.ok and result.sites[0].tls is None


@pytest.mark.parametrize("tls", ["on", "letsencrypt", "Self-Signed", True, None, ""])
def test_bad_tls(tls):
    assert only_problem([site("harbor", "harbor.localhost", tls=tls)]) == (
        "prod: site 'harbor': field 'tls': must be 'self-signed', 'provided', 'acme' or 'off', "
        f"got {tls!r} (how the site's certificate is obtained; leave it out to use the "
        "environment's sitekit_tls)"
    )


# --- the shape of the catalogue ------------------------------------------------------------


@pytest.mark.parametrize("raw", [{"name": "harbor"}, "harbor", 3])
def test_catalogue_must_be_a_list(raw):
    assert only_problem(raw) == f"prod: field 'sitekit_sites': must be a list of sites, got {raw!r}"


@pytest.mark.parametrize("entry", ["harbor", ["harbor", "harbor.localhost"], None])
def test_site_entry_must_be_a_mapping(entry):
    raw = [site("harbor", "harbor.localhost"), entry]
    assert only_problem(raw) == (
        f"prod: site '#2': each site must be a mapping of fields, got {entry!r}"
    )


def test_all_problems_are_reported_at_once():
    raw = [
        site("harbor", "Harbor.localhost"),
        site("meadow", "meadow.localhost", wrokers=3),
        site("ember", "ember.localhost", threads=0),
    ]
    found = problems(raw, REPO)
    assert len(found) == 3, found
    assert found[0].startswith("prod: site 'harbor': field 'domains[0]': ")
    assert found[1].startswith("prod: site 'meadow': field 'wrokers': ")
    assert found[2].startswith("prod: site 'ember': field 'threads': ")


def test_several_problems_in_one_site_are_all_reported():
    raw = [site("harbor", "harbor.localhost", "harbor.localhost.", state="on", workers=0, x=1)]
    found = problems(raw)
    assert [f.split(": ")[2] for f in found] == [
        "field 'x'",
        "field 'state'",
        "field 'domains[1]'",
        "field 'workers'",
    ]


def test_problem_without_environment_starts_with_the_site():
    found = problems([site("harbor", "harbor.localhost", workers=0)], env="")
    assert found[0].startswith("site 'harbor': field 'workers': ")


# --- rules added with the canonical-domain and settings checks --------------------------------


def test_wildcard_cannot_be_the_canonical_domain():
    message = only_problem([site("harbor", "*.harbor.example.org", "harbor.example.org")])
    assert "site 'harbor'" in message and "field 'domains[0]'" in message
    assert "'www.harbor.example.org'" in message


def test_wildcard_after_a_concrete_canonical_domain_is_accepted():
    result = validate([site("harbor", "harbor.example.org", "*.harbor.example.org")])
    assert result.ok, result.problems
    assert result.sites[0].canonical_domain == "harbor.example.org"


def test_keyword_site_name_is_one_problem(settings_root):
    root = settings_root(harbor="SITE_ID = 1\n")
    message = only_problem([site("class", "class.example.org")], root)
    assert "field 'name'" in message and "not a valid site name" in message


def test_last_site_id_assignment_wins(settings_root):
    root = settings_root(harbor="SITE_ID = 1\nSITE_ID = 7\n")
    result = validate([site("harbor", "harbor.example.org")], project_root=root)
    assert result.ok, result.problems
    assert result.sites[0].site_id == 7


@pytest.mark.parametrize("name", ["base", "pool", "dev"])
def test_a_reserved_name_is_one_problem_though_its_shared_module_exists(name):
    assert only_problem([site(name, "x.example.org")], REPO) == (
        f"prod: site '{name}': field 'name': '{name}' is reserved (settings/{name}.py is shared)"
    )


def test_unreadable_settings_module_is_a_problem_not_a_traceback(settings_root):
    root = settings_root()
    (root / "settings" / "harbor.py").write_bytes(b"SITE_ID = 1\n\xff\xfe\n")
    message = only_problem([site("harbor", "harbor.example.org")], root)
    assert message == (
        "prod: site 'harbor': field 'name': settings/harbor.py is not UTF-8 text (byte 12)"
    )


# --- a domain belongs to one environment ---------------------------------------------------


def test_a_domain_of_another_environment_is_refused_naming_both():
    production = [site("harbor", "harbor.example", "www.harbor.example")]
    staging = [site("harbor", "harbor.staging.example", "www.harbor.example")]
    result = validate(staging, env="staging", others={"production": production})
    assert not result.ok and result.sites == []
    assert [str(p) for p in result.problems] == [
        "staging: site 'harbor': field 'domains': 'www.harbor.example' is already configured "
        "in environment 'production' (site 'harbor'); a domain belongs to one environment only"
    ]


def test_distinct_domains_in_every_environment_are_accepted():
    production = [site("harbor", "harbor.example", "www.harbor.example", "*.harbor.example")]
    staging = [site("harbor", "harbor.staging.example", "*.staging.harbor.example")]
    result = validate(staging, env="staging", others={"production": production})
    assert result.ok, result.problems


def test_wildcards_count_by_their_exact_string():
    production = [site("harbor", "harbor.example", "*.harbor.example")]
    # a name the other environment's wildcard matches is not the same domain ...
    assert validate(
        [site("harbor", "staging.harbor.example")], env="staging", others={"prod": production}
    ).ok
    # ... the same wildcard is
    message = only_problem_in(
        [site("harbor", "harbor.staging.example", "*.harbor.example")], {"prod": production}
    )
    assert "'*.harbor.example' is already configured in environment 'prod'" in message


def test_an_absent_site_of_another_environment_still_holds_its_domains():
    production = [{"name": "meadow", "domains": ["meadow.example"], "state": "absent"}]
    message = only_problem_in([site("harbor", "meadow.example")], {"production": production})
    assert message == (
        "staging: site 'harbor': field 'domains': 'meadow.example' is already configured in "
        "environment 'production' (site 'meadow', absent); a domain belongs to one environment "
        "only"
    )


def test_a_domain_in_several_other_environments_names_each():
    others = {
        "vagrant": [site("harbor", "harbor.example")],
        "production": [site("shop", "harbor.example")],
    }
    message = only_problem_in([site("harbor", "harbor.example")], others)
    assert "already configured in environments 'production' (site 'shop'), " in message
    assert "'vagrant' (site 'harbor')" in message


def test_each_site_and_domain_is_reported_once_beside_the_other_rules():
    others = {"production": [site("harbor", "harbor.example", "www.harbor.example")]}
    raw = [
        site("harbor", "harbor.example", "www.harbor.example", workers=0),
        site("meadow", "meadow.staging.example"),
    ]
    found = [str(p) for p in validate(raw, env="staging", others=others).problems]
    assert len(found) == 3, found
    assert "field 'workers'" in found[0]
    assert "'harbor.example' is already configured" in found[1]
    assert "'www.harbor.example' is already configured" in found[2]


@pytest.mark.parametrize(
    "other", [None, "not a list", [None, 3, {"name": "x", "domains": "harbor.example"}]]
)
def test_other_catalogues_that_are_broken_are_ignored(other):
    result = validate([site("harbor", "harbor.example")], env="staging", others={"odd": other})
    assert result.ok, result.problems


def only_problem_in(raw, others):
    found = [str(p) for p in validate(raw, env="staging", others=others).problems]
    assert len(found) == 1, found
    return found[0]
