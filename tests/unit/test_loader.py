"""The one YAML reader of an inventory (sitekit.loader): what it refuses, where it says the
flaw is, and what it still reads as PyYAML's safe loader does."""

import textwrap

import pytest
import yaml

from sitekit.loader import MAX_DEPTH, MAX_VALUES, load


def flaws(text):
    loaded = load(textwrap.dedent(text))
    assert loaded.data is None
    return [(f.line, f.path, f.message) for f in loaded.flaws]


def only_flaw(text):
    found = flaws(text)
    assert len(found) == 1, found
    return found[0]


# --- values YAML cannot construct: every one, each where it is -------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-02-30", "'2024-02-30' reads as a date in YAML but is not one (day is out of "
                       "range for month); quote it if it is meant as text"),
        ("2024-13-01", "'2024-13-01' reads as a date in YAML but is not one (month must be in "
                       "1..12)"),
        ("!!int abc", "'abc' is tagged !!int but is not a whole number"),
        ("!!float x", "'x' is tagged !!float but is not a number"),
        ("!!bool maybe", "'maybe' is tagged !!bool but is not true or false"),
        ("!!timestamp nope", "'nope' is tagged !!timestamp but is not a date"),
        ("1" + "0" * 5000, "a whole number of 5001 digits is more than can be read (4300 at "
                           "most); quote it if it is meant as text"),
        ("!!python/object:os.system x", "'x' has the tag !!python/object:os.system, which a "
                                        "catalogue cannot hold"),
        ("!custom x", "'x' has the tag !custom, which a catalogue cannot hold"),
    ],
    ids=["impossible-date", "month-13", "int", "float", "bool", "timestamp", "5000-digits",
         "python-tag", "local-tag"],
)
def test_a_value_that_cannot_be_constructed_is_a_flaw_at_its_place(value, message):
    line, path, said = only_flaw(f"""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.example.org]
          - name: meadow
            workers: {value}
        """)
    assert (line, path) == (5, ("sitekit_sites", 1, "workers"))
    assert said.startswith(message)


def test_every_value_that_cannot_be_constructed_is_found_and_the_rest_is_read():
    loaded = load("sitekit_sites:\n  - name: 2024-02-30\n    workers: !!int abc\n"
                  "  - name: meadow\n    threads: !!bool maybe\n")
    assert [(f.line, f.path) for f in loaded.flaws] == [
        (2, ("sitekit_sites", 0, "name")),
        (3, ("sitekit_sites", 0, "workers")),
        (5, ("sitekit_sites", 1, "threads")),
    ]
    # what could be read names the places (a site's name), the rest is null
    assert loaded.partial == {
        "sitekit_sites": [{"name": None, "workers": None}, {"name": "meadow", "threads": None}]
    }


@pytest.mark.parametrize(
    "text",
    [
        'name: "2024-02-30"',  # quoted: text
        "name: 2024-02-28",  # a real date is a date (the validator says it is not a name)
        "workers: !!int '12'",
        "workers: 0x" + "f" * 5000,  # Python reads a hexadecimal number of any length
        "on: !!bool yes",
        "tls: off",
        "brand: !!binary aGVsbG8=",
    ],
)
def test_values_the_safe_loader_constructs_are_read_as_it_reads_them(text):
    loaded = load(text + "\n")
    assert loaded.ok, loaded.flaws
    assert loaded.data == yaml.safe_load(text + "\n")


# --- keys given twice ------------------------------------------------------------------------


def test_a_key_given_twice_is_a_flaw_naming_it_and_both_lines():
    found = flaws("""\
        sitekit_sites:
          - name: harbor
            domains: [harbor.example.org]
            name: meadow
            domains: [meadow.example.org]
        sitekit_sites: []
        """)
    assert found == [
        (4, ("sitekit_sites", 0, "name"),
         "'name' is given twice in one mapping (lines 2 and 4); a YAML reader keeps one of "
         "them silently: remove the other"),
        (5, ("sitekit_sites", 0, "domains"),
         "'domains' is given twice in one mapping (lines 3 and 5); a YAML reader keeps one "
         "of them silently: remove the other"),
        (6, ("sitekit_sites",),
         "'sitekit_sites' is given twice in one mapping (lines 1 and 6); a YAML reader keeps "
         "one of them silently: remove the other"),
    ]


def test_keys_equal_as_a_dictionary_compares_them_are_the_same_key():
    _line, path, message = only_flaw("pools: {1: a, 01: b, '1': c}\n")
    assert path == ("pools", "01") and "both on line 1" in message


def test_keys_of_different_mappings_and_merged_keys_are_no_flaw():
    loaded = load(textwrap.dedent("""\
        defaults: &defaults {workers: 2, threads: 1}
        sitekit_sites:
          - {name: harbor, <<: *defaults, workers: 4}
          - {name: meadow, <<: *defaults}
        """))
    assert loaded.ok, loaded.flaws
    assert loaded.data["sitekit_sites"][0] == {"name": "harbor", "workers": 4, "threads": 1}


# --- nesting, aliases: measured, never expanded ------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 200_000])
def test_nesting_deeper_than_the_limit_is_a_flaw_and_no_crash(depth):
    # libyaml composes recursively: 200,000 levels overflowed its stack (a segfault)
    line, path, message = only_flaw("sitekit_sites:\n  - domains: " + "[" * depth + "]" * depth)
    assert line == 2 and path == ()
    assert message == (
        f"nests values more than {MAX_DEPTH} levels deep (line 2; a catalogue needs a few)"
    )


def test_nesting_up_to_the_limit_is_read():
    depth = MAX_DEPTH - 1  # the document's own mapping is one level
    assert load("a: " + "[" * depth + "]" * depth).ok


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_without_expanding_it():
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = "\n".join(lines) + "\nsitekit_sites:\n  - name: *a8\n"  # 9**9 values
    assert only_flaw(text) == (
        1, (), f"has aliases that expand to more than {MAX_VALUES} values (a catalogue holds "
               "far fewer): write the values out")


def test_aliases_that_nest_too_deep_once_expanded_are_a_flaw():
    lines = ["a0: &a0 " + "[" * 40 + "]" * 40]
    lines += [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 4)]
    assert only_flaw("\n".join(lines))[2] == (
        f"nests values more than {MAX_DEPTH} levels deep once its aliases are expanded")


def test_an_alias_inside_the_value_it_names_is_a_flaw():
    assert only_flaw("a: &a [b, *a]\n") == (
        1, ("a", 1), "an alias refers to the value that holds it")


def test_aliases_within_measure_are_read():
    loaded = load("common: &c [a.example.org]\nsites: [{domains: *c}, {domains: *c}]\n")
    assert loaded.ok
    assert loaded.data["sites"][1]["domains"] == ["a.example.org"]


# --- text that is not YAML -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sitekit_sites: [\n", "is not valid YAML: line 2, column 1: did not find expected "
                               "node content (while parsing a flow node at line 2)"),
        ("a: 1\n---\nb: 2\n", "is not valid YAML: line 2, column 1: but found another document"),
        ("? [a]\n: b\n", "cannot be read: line 1, column 3: found unhashable key"),
        ("a: !!omap [1]\n", "cannot be read: line 1, column 12: expected a mapping of length 1"),
    ],
)
def test_text_that_cannot_be_read_is_one_flaw_of_the_file(text, message):
    _line, path, said = only_flaw(text)
    assert path == () and said.startswith(message)


def test_an_empty_document_is_none():
    assert load("").ok and load("").data is None
    assert load("# nothing\n").data is None
