"""Properties over any input (Hypothesis): the reader, the validator and the editing commands
end in a message or a valid catalogue, never a traceback; every message is short and shows no
control character; an edit that is refused leaves the file as it was, byte for byte.

The examples are bounded and the deadline off: the whole module runs in seconds.
"""

import datetime
import math
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sitekit import inventory
from sitekit.catalogue import KNOWN_FIELDS, validate
from sitekit.cli import main
from sitekit.domains import DomainError, check_stored_domain
from sitekit.loader import load
from sitekit.runtime.rules import SITE_NAME_RE

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = Path("group_vars/all/sites.yml")
#: Longer than any message about one value, far shorter than a value could make one.
MESSAGE_LIMIT = 2000

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
)

# --- what a catalogue may hold -----------------------------------------------------------------

HOSTILE_TEXT = [
    "", " ", "harbor", "meadow", "ember", "base", "Harbor", "class", "\x1b[31m", "\x1b]0;x\x07",
    "a\u202eb", "\x00", "x" * 300, "a" * 5000 + ".org", "harbor.localhost",
    "www.harbor.localhost", "*.harbor.localhost", "Harbor_X.org", "ü.org", "xn--zz.org",
    "present", "absent", "off", "acme", "provided", "self-signed", "preload", "pool",
]
texts = st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=40))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=0, max_value=20_000).map(lambda bits: 2**bits),  # thousands of digits
    st.floats(),
    texts,
    st.dates(),
    st.datetimes(),
    st.binary(max_size=20),
)


def _shared(value, times):
    """One value referred to many times (as a YAML alias would): never copied."""
    return [value] * times


def _cyclic(items):
    items = list(items)
    items.append(items)
    return items


values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(texts, st.integers(), st.none()), inner, max_size=4),
        st.builds(_shared, inner, st.integers(0, 1000)),
        st.builds(_cyclic, st.lists(inner, max_size=2)),
    ),
    max_leaves=12,
)
entries = st.one_of(
    values,
    st.dictionaries(st.sampled_from(KNOWN_FIELDS), values, max_size=6),
    st.fixed_dictionaries(
        {"name": st.sampled_from(["harbor", "meadow", "ember"]),
         "domains": st.lists(st.one_of(texts, values), max_size=3)},
        optional={field: values for field in KNOWN_FIELDS if field not in ("name", "domains")},
    ),
)
catalogues = st.one_of(values, st.lists(entries, max_size=5))


def assert_message(text):
    assert isinstance(text, str)
    assert len(text) < MESSAGE_LIMIT, text[:300]
    assert text.isprintable(), text


@BOUNDED
@given(
    raw=catalogues,
    pools=st.one_of(st.none(), values,
                    st.dictionaries(texts, st.dictionaries(texts, values, max_size=3), max_size=3)),
    tls=values,
    env=texts,
    others=st.dictionaries(texts, catalogues, max_size=2),
)
def test_the_validator_gives_problems_or_a_valid_catalogue_for_any_data(raw, pools, tls, env,
                                                                        others):
    result = validate(raw, env=env, project_root=REPO, pools=pools, tls=tls, others=others)
    for problem in result.problems + result.warnings:
        assert_message(str(problem))
    if result.ok:
        for site in result.sites:
            assert SITE_NAME_RE.match(site.name)
            assert all(check_stored_domain(domain) == domain for domain in site.domains)
    else:
        assert result.sites == []


#: The fix a domain's message offers, at its end: "; write 'x'", "such as 'x' or 'y'".
HINT = re.compile(r"(?:; write|such as) '([^']*)'(?: or '([^']*)')?\Z")


@BOUNDED
@given(texts)
def test_a_domain_hint_is_itself_valid(domain):
    try:
        check_stored_domain(domain)
    except DomainError as exc:
        message = str(exc)
        assert_message(message)
        hint = HINT.search(message)
        for offered in hint.groups() if hint else ():
            if offered is not None:
                assert check_stored_domain(offered) == offered


# --- what a catalogue file may say ------------------------------------------------------------

LINES = [
    "sitekit_sites:",
    "sitekit_pools: {shared: {workers: 2}}",
    "sitekit_pools: []",
    "  - name: harbor",
    "  - name: meadow",
    "  - name: 2024-02-30",
    "  - {name: ember, domains: [ember.localhost]}",
    "    domains: [harbor.localhost, www.harbor.localhost]",
    "    domains:",
    "      - meadow.localhost",
    "    domains: [\"\\e[31mx.localhost\"]",
    "    workers: 2",
    "    workers: !!int abc",
    "    workers: 1" + "0" * 5000,
    "    workers: 0x" + "f" * 5000,
    "    threads: !!float x",
    "    hsts: !!bool maybe",
    "    state: !!timestamp nope",
    "    state: absent",
    "    pool: shared",
    "    tls: off",
    "    name: again",
    "    domains: " + "[" * 60 + "]" * 60,
    "a0: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    "a1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "    domains: *a",
    "    name: *b",
    "x: &c [*c]",
    "  # a comment",
    "",
    "\t- tab",
    "sitekit_sites: [",
    "--- ",
    "...",
    "sitekit_sites: []",
    "- name: harbor",
]
files = st.builds(
    lambda lines, ending, final: ending.join(lines) + (ending if final else ""),
    st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=20)), max_size=10),
    st.sampled_from(["\n", "\n", "\n", "\r\n"]),
    st.booleans(),
)


def _same(a, b):
    """Equal as data, a float that is not a number being equal to itself."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@BOUNDED
@given(st.one_of(files, st.text(max_size=200)))
def test_the_reader_reads_what_the_safe_loader_reads_or_says_where_it_cannot(text):
    loaded = load(text)
    for flaw in loaded.flaws:
        assert_message(flaw.message)
        assert flaw.line >= 1
    if loaded.ok:  # libyaml's safe loader, as Ansible's loader is built on
        assert _same(loaded.data, yaml.load(text, Loader=yaml.CSafeLoader))


# --- the editing commands, on a checkout ------------------------------------------------------


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A checkout with the real settings/ and two environments: ``mine`` (edited) and
    ``other`` (its neighbour, whose catalogue each example writes too)."""
    root = tmp_path_factory.mktemp("properties")
    shutil.copytree(REPO / "settings", root / "settings",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for env in ("mine", "other"):
        (root / "inventories" / env / CATALOGUE).parent.mkdir(parents=True)
    return root


NAMES = ["harbor", "meadow", "ember", "zeta", "base", "Harbor", "\x1b[2J", "x" * 40]
DOMAINS = ["new.localhost", "harbor.localhost", "Www.Harbor.Localhost.", "*.x.localhost",
           "ü.localhost", "exa mple.localhost", "\x1b[31mx.localhost", "a" * 300 + ".org"]
# half of the commands name a site of the catalogues below and new domains: they may succeed
names = st.one_of(st.sampled_from(["harbor", "meadow", "ember"]), st.sampled_from(NAMES))
domains = st.one_of(st.sampled_from(["new.localhost", "www.new.localhost", "x.new.localhost"]),
                    st.sampled_from(DOMAINS))
commands = st.one_of(
    st.tuples(st.just("domain"), st.sampled_from(["add", "remove"]), names,
              st.lists(domains, min_size=1, max_size=2)),
    st.tuples(st.just("site"), st.just("remove"), names, st.just([])),
    st.tuples(st.just("site"), st.just("add"), names, st.lists(domains, max_size=2)),
    st.tuples(st.just("site"), st.just("move"), names,
              st.sampled_from([["--pool", "shared"], ["--dedicated"], ["--pool", "nope"]])),
)
# valid catalogues to start from (two in three examples: edits then may succeed), and anything
# a file may say
VALID = [
    (REPO / "inventories" / "local" / CATALOGUE).read_text(),
    "sitekit_pools:\n  shared: {workers: 2}\nsitekit_sites:\n  - name: harbor\n"
    "    domains: [harbor.localhost]\n    pool: shared\n  - name: meadow\n"
    "    domains: [meadow.localhost]\n",
]
mine_files = st.integers(0, 2).flatmap(lambda n: st.sampled_from(VALID) if n else files)


@BOUNDED
@given(mine=mine_files, other=st.one_of(st.just("sitekit_sites: []\n"), files),
       command=commands)
def test_an_edit_is_made_and_valid_or_refused_and_leaves_the_file_as_it_was(
        checkout, capsys, mine, other, command):
    path = checkout / "inventories" / "mine" / CATALOGUE
    path.write_bytes(mine.encode("utf-8", "surrogatepass"))
    (checkout / "inventories" / "other" / CATALOGUE).write_bytes(
        other.encode("utf-8", "surrogatepass"))
    noun, verb, name, rest = command
    args = [noun, verb, "mine", name, *rest]
    if (noun, verb) == ("site", "add"):
        args.append("--dry-run")  # a new site's code is never written here
    before = path.read_bytes()
    code = main(["--project", str(checkout), *args])
    out, err = capsys.readouterr()
    assert code in (0, 1)
    for line in (out + err).splitlines():
        if not line.startswith(("+", "-", " ", "@@")):  # the diff shows the file itself
            assert_message(line)
    after = path.read_bytes()
    event(f"exit {code}, {'changed' if after != before else 'unchanged'}")
    if code == 1:
        assert after == before
    elif after != before:
        result = inventory.check(inventory.find("mine", checkout))
        assert result.ok, result.problems


def test_the_dates_of_the_strategies_are_dates():
    # st.dates() and st.datetimes() give what YAML's timestamps construct
    assert isinstance(yaml.safe_load("a: 2024-02-28")["a"], datetime.date)
