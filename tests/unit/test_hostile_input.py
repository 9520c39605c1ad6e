"""Catalogues written to break the reader: values YAML cannot construct, keys given twice,
nesting and aliases beyond measure, huge values, terminal escape sequences, and broken
neighbours. `sitekit check` and the editing commands refuse each with the usual message
(environment, site, field, or the file and its line), exit 1, print a few short lines and
write nothing; a neighbour that cannot be read is a warning, never a crash."""

import subprocess
import sys
from pathlib import Path

import pytest

from sitekit.cli import main

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = "group_vars/all/sites.yml"


def sites_yml(value, field):
    """A catalogue whose second site's ``field`` is ``value`` as written (its name on line 4,
    any other field on line 6)."""
    if field == "name":
        return (
            "sitekit_sites:\n  - name: harbor\n    domains: [harbor.h.test]\n"
            f"  - name: {value}\n    domains: [meadow.h.test]\n"
        )
    return (
        "sitekit_sites:\n  - name: harbor\n    domains: [harbor.h.test]\n"
        f"  - name: meadow\n    domains: [meadow.h.test]\n    {field}: {value}\n"
    )


def run(root, capsys, *args):
    code = main(["--project", str(root), *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_short_and_printable(*outputs):
    for output in outputs:
        assert len(output) < 4000, output[:500]
        assert all(line.isprintable() for line in output.splitlines()), output


# --- 1. values the YAML loader cannot construct -----------------------------------------------

UNCONSTRUCTABLE = [
    ("2024-02-30", "name",
     "hostile: site '#2': field 'name': '2024-02-30' reads as a date in YAML but is not one "
     "(day is out of range for month); quote it if it is meant as text (line 4 of "
     "inventories/hostile/group_vars/all/sites.yml)"),
    ("!!int abc", "workers",
     "hostile: site 'meadow': field 'workers': 'abc' is tagged !!int but is not a whole number "
     "(line 6 of inventories/hostile/group_vars/all/sites.yml)"),
    ("!!float x", "threads",
     "hostile: site 'meadow': field 'threads': 'x' is tagged !!float but is not a number "
     "(line 6 of"),
    ("!!bool maybe", "tls",
     "hostile: site 'meadow': field 'tls': 'maybe' is tagged !!bool but is not true or false "
     "(line 6 of"),
    ("!!timestamp nope", "state",
     "hostile: site 'meadow': field 'state': 'nope' is tagged !!timestamp but is not a date "
     "(line 6 of"),
    ("1" + "0" * 5000, "workers",
     "hostile: site 'meadow': field 'workers': a whole number of 5001 digits is more than can "
     "be read (4300 at most); quote it if it is meant as text (line 6 of"),
    ("0x" + "f" * 5000, "workers",
     "hostile: site 'meadow': field 'workers': must be between 1 and 64, got a whole number of "
     "about 6021 digits (gunicorn worker processes)"),
    ("[" * 5000 + "]" * 5000, "domains",
     "hostile: inventories/hostile/group_vars/all/sites.yml nests values more than 50 levels "
     "deep (line 6; a catalogue needs a few)"),
]
IDS = ["impossible-date-as-name", "tagged-int", "tagged-float", "tagged-bool", "tagged-timestamp",
       "5000-digits", "5000-hex-digits", "nested-5000-deep"]


@pytest.mark.parametrize(("value", "field", "message"), UNCONSTRUCTABLE, ids=IDS)
def test_check_refuses_a_value_yaml_cannot_construct(project, capsys, value, field, message):
    root = project.env("hostile", sites_yml(value, field))
    code, out, err = run(root, capsys, "check", "hostile")
    assert code == 1 and out == ""
    assert err.splitlines()[0] == "hostile: 1 problem:"
    assert err.splitlines()[1].startswith("  " + message), err
    assert_short_and_printable(err)


@pytest.mark.parametrize(("value", "field", "message"), UNCONSTRUCTABLE, ids=IDS)
def test_edits_refuse_a_value_yaml_cannot_construct(project, capsys, value, field, message):
    root = project.env("hostile", sites_yml(value, field))
    path = root / "inventories" / "hostile" / CATALOGUE
    before = path.read_bytes()
    code, out, err = run(root, capsys, "domain", "add", "hostile", "harbor", "new.h.test")
    assert code == 1
    assert err.startswith("hostile: nothing written: 1 problem:\n  " + message), err
    assert path.read_bytes() == before
    assert_short_and_printable(out, err)


def test_a_value_yaml_cannot_construct_as_a_real_command(project):
    root = project.env("hostile", sites_yml("2024-02-30", "name"))
    proc = subprocess.run([sys.executable, "-m", "sitekit", "--project", str(root), "check",
                           "hostile"], cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "field 'name': '2024-02-30' reads as a date" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- 2. a neighbour's broken catalogue breaks nothing else ------------------------------------

BROKEN = {
    "syntax": "sitekit_sites: [\n",
    "date": "sitekit_sites:\n  - name: 2024-02-30\n",
    "digits": "sitekit_sites:\n  - name: a\n    workers: 1" + "0" * 5000 + "\n",
    "twice": "sitekit_sites:\n  - name: a\n    name: b\n",
    "deep": "sitekit_sites: " + "[" * 5000 + "]" * 5000 + "\n",
}
GOOD = "sitekit_sites:\n  - name: harbor\n    domains: [harbor.good.test]\n"


@pytest.fixture
def neighbours(project):
    for name, text in BROKEN.items():
        project.env(name, text)
    return project.env("good", GOOD)


def warnings_of(err):
    return [line for line in err.splitlines() if line.startswith("warning: ")]


def test_check_of_one_environment_names_each_neighbour_it_could_not_compare(neighbours, capsys):
    code, out, err = run(neighbours, capsys, "check", "good")
    assert code == 0
    assert out == "good: OK: 1 sites (1 present), 1 domains\n"
    assert warnings_of(err) == [
        f"warning: good: domains not checked against environment '{name}': its catalogue "
        f"cannot be read (`sitekit check {name}` says why)"
        for name in sorted(BROKEN)
    ]


def test_check_of_every_environment_reports_each_broken_one_and_checks_the_rest(
        neighbours, capsys):
    code, out, err = run(neighbours, capsys, "check")
    assert code == 1
    assert out == "good: OK: 1 sites (1 present), 1 domains\n"
    for name in BROKEN:
        assert f"\n{name}: 1 problem:\n  {name}: " in f"\n{err}"
    assert_short_and_printable(err)


def test_an_edit_next_to_broken_neighbours_is_made_and_says_what_was_not_compared(
        neighbours, capsys):
    code, out, err = run(neighbours, capsys, "domain", "add", "good", "harbor", "www.good.test")
    assert code == 0, err
    assert "wrote inventories/good/group_vars/all/sites.yml" in out
    assert "warning: good: domains not checked against environment 'date'" in out
    path = neighbours / "inventories" / "good" / CATALOGUE
    assert "www.good.test" in path.read_text()


# --- 4. keys given twice -----------------------------------------------------------------------

TWICE = """\
sitekit_sites:
  - name: harbor
    domains: [harbor.h.test]
    domains: [www.harbor.h.test]
"""


@pytest.mark.parametrize("command", [["check", "hostile"],
                                     ["domain", "add", "hostile", "harbor", "x.h.test"]])
def test_a_key_given_twice_is_refused_naming_the_key_and_its_lines(project, capsys, command):
    root = project.env("hostile", TWICE)
    path = root / "inventories" / "hostile" / CATALOGUE
    code, _out, err = run(root, capsys, *command)
    assert code == 1
    assert (
        "  hostile: site 'harbor': field 'domains': 'domains' is given twice in one mapping "
        "(lines 3 and 4); a YAML reader keeps one of them silently: remove the other (line 4 "
        "of inventories/hostile/group_vars/all/sites.yml)"
    ) in err.splitlines()
    assert path.read_text() == TWICE


# --- 5. output stays short; the loader does not expand aliases ----------------------------------


@pytest.mark.timeout(30)
def test_an_alias_bomb_as_a_name_is_refused_in_a_few_short_lines(project, capsys):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    root = project.env("hostile", "\n".join(lines) + "\nsitekit_sites:\n  - name: *a8\n")
    code, _out, err = run(root, capsys, "check", "hostile")
    assert code == 1
    assert err == (
        "hostile: 1 problem:\n  hostile: inventories/hostile/group_vars/all/sites.yml has "
        "aliases that expand to more than 1000000 values (a catalogue holds far fewer): write "
        "the values out\n"
    )


def test_a_ten_megabyte_domain_is_cut_and_its_length_said(project, capsys):
    huge = "a" * 10_000_000 + ".h.test"
    root = project.env("hostile", f"sitekit_sites:\n  - name: harbor\n    domains: [{huge}]\n")
    code, _out, err = run(root, capsys, "check", "hostile")
    assert code == 1
    assert f"'{'a' * 256}'... (10000007 characters) is 10000007 characters long" in err
    assert_short_and_printable(err)


def test_a_value_aliased_many_times_is_shown_a_few_items_deep(project, capsys):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 5)]  # 9**5
    root = project.env("hostile", "\n".join(lines) + "\nsitekit_sites:\n  - name: *a4\n")
    code, _out, err = run(root, capsys, "check", "hostile")
    assert code == 1
    assert "field 'name': [[[...], [...], [...], [...], ... (9 items)], " in err
    assert_short_and_printable(err)


# --- 6. control characters are shown escaped --------------------------------------------------


def test_escape_sequences_in_a_catalogue_reach_no_terminal(project, capsys):
    root = project.env("hostile", (
        'sitekit_sites:\n  - name: "\\e]0;owned\\a"\n    domains: ["\\e[2Jharbor.h.test"]\n'
        '    "\\e[31m": 1\n'))
    code, _out, err = run(root, capsys, "check", "hostile")
    assert code == 1
    assert "\x1b" not in err and "\x07" not in err
    assert "field 'domains[0]': '\\x1b[2Jharbor.h.test'" in err
    assert "site '\\x1b]0;owned\\x07': field '\\x1b[31m': unknown field" in err
    assert_short_and_printable(err)


def test_escape_sequences_typed_on_the_command_line_are_shown_escaped(project, capsys):
    root = project.env("hostile", GOOD.replace("good", "h"))
    code, out, err = run(root, capsys, "domain", "add", "hostile", "harbor", "\x1b[31mx.h.test")
    assert code == 1
    assert "cannot add '\\x1b[31mx.h.test'" in err
    code, out, err = run(root, capsys, "site", "add", "hostile", "\x1b[2J", "a.h.test")
    assert code == 1 and "'\\x1b[2J' is not a valid site name" in err
    assert "\x1b" not in out + err
