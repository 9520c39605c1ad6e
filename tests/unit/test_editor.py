"""The catalogue editor: each edit changes exactly its own lines and nothing else.

Edits are planned on text (nothing is written), compared with the original line by line with
difflib, and read back as YAML. Writing is tested on copies of the checkout in tmp dirs.
"""

import difflib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sitekit import editor, inventory

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = Path("group_vars/all/sites.yml")
REAL_ENVS = sorted(
    p.parent.parent.parent.name for p in REPO.glob("inventories/*/" + str(CATALOGUE))
)

# The local catalogue, with comments in odd places, flow and block lists, quoted strings, a
# blank line between entries, an absent site and another variable after the list.
ODD = """\
---
# The site catalogue of the local environment. Each site is served at http://<domain>:8080/
# (browsers and curl resolve *.localhost to loopback). Check it with: sitekit check local

sitekit_sites:   # every site of this environment
  # harbor: a flow list with an aligned comment
  - name: harbor              # settings module settings/harbor.py
    domains: [harbor.localhost, www.harbor.localhost]   # the first is canonical
    workers: 2
  # meadow: a block list of quoted strings, with a comment inside it
  - name: "meadow"
    domains:
      - "meadow.localhost"      # canonical
      # the www name is served as is, not redirected
      - "www.meadow.localhost"
    workers: 2    # two is plenty
    threads: 2

  # ember is retired for now
  - name: ember
    domains: [ember.localhost, 'old-ember.localhost']
    workers: 3
    state: "absent"   # kept for its domains
    # nothing more about ember
# end of the catalogue
other_setting: keep me   # another variable in the same file
"""


def source(text=ODD, env="local", root=REPO):
    """A catalogue as read from ``root``'s inventory (planning reads the real settings only)."""
    return editor.Source(env, root / "inventories" / env / CATALOGUE, text, root)


def changes(before, after):
    """What differs, as unified-diff lines without context: hunk headers, '-' and '+' lines."""
    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), n=0
    )
    return [line.rstrip("\n") for line in diff if not line.startswith(("---", "+++"))]


def sites(text):
    return yaml.safe_load(text)["sitekit_sites"]


def problems(change):
    assert not change.ok
    assert change.after == change.source.text
    assert change.diff() == ""
    return [str(p) for p in change.problems]


# --- domain add ----------------------------------------------------------------------------


def test_add_to_a_flow_list_changes_that_line_only_and_keeps_its_comment_s_distance():
    change = editor.add_domains(source(), "harbor", ["shop.harbor.localhost"])
    assert change.ok and change.changed
    assert changes(ODD, change.after) == [
        "@@ -8 +8 @@",
        "-    domains: [harbor.localhost, www.harbor.localhost]   # the first is canonical",
        "+    domains: [harbor.localhost, www.harbor.localhost, shop.harbor.localhost]"
        "   # the first is canonical",
    ]
    assert change.notes == []
    assert change.summary[0] == "local: site 'harbor': added shop.harbor.localhost"


def test_add_to_a_block_list_of_quoted_strings_adds_one_line_in_the_same_style():
    change = editor.add_domains(source(), "meadow", ["shop.meadow.localhost"])
    assert changes(ODD, change.after) == [
        "@@ -15,0 +16 @@",
        '+      - "shop.meadow.localhost"',
    ]
    assert sites(change.after)[1]["domains"][-1] == "shop.meadow.localhost"


def test_add_normalises_what_was_typed_and_says_so():
    change = editor.add_domains(
        source(), "harbor", ["WWW.Shop.Harbor.Localhost.", "café.localhost"]
    )
    assert change.notes == [
        "local: site 'harbor': 'WWW.Shop.Harbor.Localhost.' normalised to "
        "'www.shop.harbor.localhost'",
        "local: site 'harbor': 'café.localhost' normalised to 'xn--caf-dma.localhost' "
        "(internationalised names are stored as punycode)",
    ]
    assert sites(change.after)[0]["domains"] == [
        "harbor.localhost",
        "www.harbor.localhost",
        "www.shop.harbor.localhost",
        "xn--caf-dma.localhost",
    ]


def test_add_a_wildcard_quotes_it():
    change = editor.add_domains(source(), "harbor", ["*.harbor.localhost"])
    assert changes(ODD, change.after)[2] == (
        "+    domains: [harbor.localhost, www.harbor.localhost, '*.harbor.localhost']"
        "   # the first is canonical"
    )
    assert sites(change.after)[0]["domains"][-1] == "*.harbor.localhost"


def test_add_the_same_domain_twice_in_one_command_adds_it_once():
    change = editor.add_domains(source(), "harbor", ["shop.localhost", "Shop.Localhost"])
    assert sites(change.after)[0]["domains"][-1] == "shop.localhost"
    assert sites(change.after)[0]["domains"].count("shop.localhost") == 1
    assert change.notes[-1] == (
        "local: site 'harbor': 'shop.localhost' was given 2 times ('shop.localhost', "
        "'Shop.Localhost'); it is added once"
    )


def test_add_a_domain_already_there_changes_nothing_and_says_so():
    change = editor.add_domains(source(), "harbor", ["WWW.harbor.localhost"])
    assert change.ok
    assert not change.changed
    assert change.after == ODD
    assert (
        change.notes[-1]
        == "local: site 'harbor': 'www.harbor.localhost' is already one of its domains"
    )


def test_add_some_already_there_adds_the_others():
    change = editor.add_domains(source(), "harbor", ["harbor.localhost", "new.localhost"])
    assert sites(change.after)[0]["domains"] == [
        "harbor.localhost",
        "www.harbor.localhost",
        "new.localhost",
    ]
    assert "local: site 'harbor': 'harbor.localhost' is already one of its domains" in change.notes


def test_add_a_domain_of_another_site_is_refused_naming_the_owner():
    found = problems(editor.add_domains(source(), "harbor", ["www.meadow.localhost"]))
    assert found == [
        "local: site 'harbor': field 'domains': 'www.meadow.localhost' already belongs to site "
        "'meadow' (present); remove it there first: "
        "sitekit domain remove local meadow www.meadow.localhost"
    ]


def test_add_a_domain_kept_by_an_absent_site_is_refused_naming_it():
    found = problems(editor.add_domains(source(), "harbor", ["old-ember.localhost"]))
    assert len(found) == 1
    assert "'old-ember.localhost' already belongs to site 'ember' (absent)" in found[0]
    assert "sitekit domain remove local ember old-ember.localhost" in found[0]


def test_add_to_an_absent_site_is_refused():
    found = problems(editor.add_domains(source(), "ember", ["new.localhost"]))
    assert found == [
        "local: site 'ember': field 'state': site is absent; re-add it with "
        "`sitekit site add local ember` (it keeps its domains), then add domains"
    ]


def test_add_to_an_unknown_site_is_refused_with_a_suggestion():
    found = problems(editor.add_domains(source(), "harbour", ["new.localhost"]))
    assert found == [
        "local: site 'harbour': no such site in local (did you mean 'harbor'? sites: harbor, "
        "meadow, ember); add a site with: sitekit site add local harbour DOMAIN..."
    ]


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("harbor", "'harbor' has a single label"),
        ("http://x.localhost/", "is a URL"),
        ("x.localhost:8080", "contains a port"),
        ("", "cannot add '': is empty"),
        ("a..localhost", "has an empty label"),
    ],
)
def test_add_a_malformed_domain_is_refused(typed, fragment):
    found = problems(editor.add_domains(source(), "harbor", ["ok.localhost", typed]))
    assert len(found) == 1
    assert found[0].startswith("local: site 'harbor': field 'domains': cannot add ")
    assert fragment in found[0]


def test_add_a_wildcard_to_a_site_without_domains_is_refused_by_the_validator():
    text = ODD.replace("    domains: [ember.localhost, 'old-ember.localhost']\n", "")
    change = editor.add_site(source(text), "ember", ["*.ember.localhost"])
    found = problems(change)
    assert found[0].startswith("local: site 'ember': field 'domains[0]': the first domain is")


@pytest.mark.parametrize("env", REAL_ENVS)
def test_every_real_catalogue_takes_an_edit_on_one_line(env):
    text = (REPO / "inventories" / env / CATALOGUE).read_text()
    change = editor.add_domains(source(text, env), "harbor", ["extra.harbor.test"])
    assert change.ok, [str(p) for p in change.problems]
    diff = changes(text, change.after)
    assert len(diff) == 3
    assert diff[1].startswith("-    domains: [") and diff[2].startswith("+    domains: [")
    assert diff[2] == "+" + diff[1][1:].replace("]", ", extra.harbor.test]", 1)


# --- domain remove -------------------------------------------------------------------------


def test_remove_the_canonical_domain_makes_the_next_canonical_and_keeps_the_comments():
    change = editor.remove_domains(source(), "meadow", ["meadow.localhost"])
    assert changes(ODD, change.after) == [
        "@@ -13 +12,0 @@",
        '-      - "meadow.localhost"      # canonical',
    ]
    assert "# the www name is served as is, not redirected" in change.after
    assert change.summary[:2] == [
        "local: site 'meadow': removed meadow.localhost",
        "local: site 'meadow': 'www.meadow.localhost' is now its canonical domain (the first; "
        "the next deploy writes it to the Sites table)",
    ]


def test_remove_from_a_flow_list_keeps_the_comment_column():
    change = editor.remove_domains(source(), "harbor", ["www.harbor.localhost"])
    assert changes(ODD, change.after) == [
        "@@ -8 +8 @@",
        "-    domains: [harbor.localhost, www.harbor.localhost]   # the first is canonical",
        "+    domains: [harbor.localhost]                         # the first is canonical",
    ]
    assert not any("canonical domain" in line for line in change.summary)


def test_remove_the_last_item_of_a_block_list_keeps_the_comment_above_it():
    change = editor.remove_domains(source(), "meadow", ["WWW.Meadow.Localhost"])
    assert changes(ODD, change.after) == ["@@ -15 +14,0 @@", '-      - "www.meadow.localhost"']
    assert change.notes == [
        "local: site 'meadow': 'WWW.Meadow.Localhost' normalised to 'www.meadow.localhost'"
    ]


def test_remove_the_last_domain_of_a_present_site_is_refused():
    found = problems(
        editor.remove_domains(source(), "harbor", ["harbor.localhost", "www.harbor.localhost"])
    )
    assert found == [
        "local: site 'harbor': field 'domains': cannot remove the last domain of a present site "
        "(a site needs at least one; the first is its canonical domain); to take the site down "
        "use: sitekit site remove local harbor"
    ]


def test_an_absent_site_may_lose_every_domain():
    change = editor.remove_domains(source(), "ember", ["ember.localhost", "old-ember.localhost"])
    assert changes(ODD, change.after) == [
        "@@ -21 +21 @@",
        "-    domains: [ember.localhost, 'old-ember.localhost']",
        "+    domains: []",
    ]


def test_emptying_a_block_list_keeps_its_comments():
    text = (
        "sitekit_sites:\n"
        "  - name: ember\n"
        "    domains:   # kept for later\n"
        "      - ember.localhost   # the old name\n"
        "      # between\n"
        "      - old-ember.localhost\n"
        "      # after\n"
        "    state: absent\n"
    )
    change = editor.remove_domains(
        source(text), "ember", ["ember.localhost", "old-ember.localhost"]
    )
    assert change.after == (
        "sitekit_sites:\n"
        "  - name: ember\n"
        "    domains: [] # kept for later\n"
        "      # between\n"
        "      # after\n"
        "    state: absent\n"
    )


def test_remove_a_domain_the_site_does_not_have_is_refused():
    found = problems(editor.remove_domains(source(), "harbor", ["ww.harbor.localhost"]))
    assert found == [
        "local: site 'harbor': field 'domains': 'ww.harbor.localhost' is not one of this site's "
        "domains (did you mean 'www.harbor.localhost'? its domains: harbor.localhost, "
        "www.harbor.localhost)"
    ]
    found = problems(editor.remove_domains(source(), "harbor", ["meadow.localhost"]))
    assert "(it belongs to site 'meadow')" in found[0]


def test_remove_a_wildcard_would_become_canonical_is_refused_by_the_validator():
    text = ODD.replace(
        "[harbor.localhost, www.harbor.localhost]", "[harbor.localhost, '*.harbor.localhost']"
    )
    found = problems(editor.remove_domains(source(text), "harbor", ["harbor.localhost"]))
    assert len(found) == 1
    assert "field 'domains[0]': the first domain is the site's canonical domain" in found[0]


# --- site add ------------------------------------------------------------------------------


def test_add_a_new_site_appends_an_entry_in_the_same_style_and_scaffolds_its_code():
    change = editor.add_site(source(), "acme", ["Acme.Localhost"], brand="Acme Widgets")
    assert change.ok, change.problems
    assert changes(ODD, change.after) == [
        "@@ -24,0 +25,5 @@",
        "+",
        "+  - name: acme",
        "+    domains: [acme.localhost]",
        "+    workers: 2",
        "+    state: present",
    ]
    assert change.after.endswith(
        "    # nothing more about ember\n\n  - name: acme\n    domains: [acme.localhost]\n"
        "    workers: 2\n    state: present\n# end of the catalogue\n"
        "other_setting: keep me   # another variable in the same file\n"
    )
    assert sorted(change.files) == [
        "project/sites/acme/__init__.py",
        "project/sites/acme/apps.py",
        "project/sites/acme/jinja2/acme/base.html",
        "project/sites/acme/static/acme/logo.svg",
        "project/sites/acme/static/acme/site.css",
        "project/sites/acme/urls.py",
        "settings/acme.py",
    ]
    module = change.files["settings/acme.py"]
    assert "SITE_ID = 4\n" in module
    assert '    "name": "Acme Widgets",\n' in module
    assert 'ROOT_URLCONF = "project.sites.acme.urls"\n' in module
    assert 'label = "site_acme"' in change.files["project/sites/acme/apps.py"]
    assert "static('acme/site.css')" in change.files["project/sites/acme/jinja2/acme/base.html"]
    assert (
        "local: site 'acme': new to the codebase: SITE_ID 4, brand 'Acme Widgets'"
        in (change.summary[1])
    )


def test_a_new_site_in_a_catalogue_of_block_lists_gets_a_block_list():
    text = (
        "sitekit_sites:\n"
        "- name: harbor\n"
        "  domains:\n"
        "  - harbor.localhost\n"
        "  # after harbor\n"
        "# the end\n"
    )
    change = editor.add_site(source(text), "acme", ["acme.localhost", "www.acme.localhost"])
    assert change.after == (
        "sitekit_sites:\n"
        "- name: harbor\n"
        "  domains:\n"
        "  - harbor.localhost\n"
        "  # after harbor\n"
        "- name: acme\n"
        "  domains:\n"
        "  - acme.localhost\n"
        "  - www.acme.localhost\n"
        "  workers: 2\n"
        "  state: present\n"
        "# the end\n"
    )


@pytest.mark.parametrize("empty", ["sitekit_sites:\n", "sitekit_sites: []\n"])
def test_the_first_site_of_an_empty_catalogue(empty):
    change = editor.add_site(source("# sites\n" + empty), "harbor", ["harbor.localhost"])
    assert change.after == (
        "# sites\nsitekit_sites:\n  - name: harbor\n    domains: [harbor.localhost]\n"
        "    workers: 2\n    state: present\n"
    )
    assert change.files == {}  # settings/harbor.py exists


def test_add_an_absent_site_makes_it_present_keeping_its_data():
    change = editor.add_site(source(), "ember", [])
    assert changes(ODD, change.after) == [
        "@@ -23 +23 @@",
        '-    state: "absent"   # kept for its domains',
        '+    state: "present"  # kept for its domains',
    ]
    assert change.files == {}
    assert change.summary[0] == (
        "local: site 'ember': present again, with its fields kept; domains: ember.localhost, "
        "old-ember.localhost (canonical: ember.localhost)"
    )


def test_add_an_absent_site_with_new_domains_and_workers():
    change = editor.add_site(source(), "ember", ["ember.localhost", "new.localhost"], workers=4)
    assert changes(ODD, change.after) == [
        "@@ -21,3 +21,3 @@",
        "-    domains: [ember.localhost, 'old-ember.localhost']",
        "-    workers: 3",
        '-    state: "absent"   # kept for its domains',
        "+    domains: [ember.localhost, 'old-ember.localhost', new.localhost]",
        "+    workers: 4",
        '+    state: "present"  # kept for its domains',
    ]


def test_add_a_site_that_is_already_present():
    same = editor.add_site(source(), "harbor", ["harbor.localhost"])
    assert same.ok and not same.changed
    assert same.notes == ["local: site 'harbor': already present with these domains"]
    found = problems(editor.add_site(source(), "harbor", ["new.localhost"]))
    assert found == [
        "local: site 'harbor': field 'name': site is already present in local; add domains "
        "with: sitekit domain add local harbor DOMAIN... (other fields are edited in "
        "inventories/local/group_vars/all/sites.yml)"
    ]


def test_add_a_site_the_codebase_has_creates_no_files():
    text = ODD.replace(
        "  - name: harbor              # settings module settings/harbor.py\n"
        "    domains: [harbor.localhost, www.harbor.localhost]   # the first is "
        "canonical\n    workers: 2\n",
        "",
    )
    change = editor.add_site(source(text), "harbor", ["harbor.localhost"], workers=3)
    assert change.ok and change.files == {}
    assert sites(change.after)[-1] == {
        "name": "harbor",
        "domains": ["harbor.localhost"],
        "workers": 3,
        "state": "present",
    }
    found = problems(editor.add_site(source(text), "harbor", ["harbor.localhost"], brand="Port"))
    assert found == [
        "local: site 'harbor': field 'brand': settings/harbor.py already exists with brand "
        "'Harbor'; --brand only names a new site (edit SITEKIT_BRAND there to rename it)"
    ]


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Acme", "'Acme' is not a valid site name"),
        ("2fast", "'2fast' is not a valid site name"),
        ("a-b", "'a-b' is not a valid site name"),
        ("a" * 30, "is not a valid site name"),
        ("class", "'class' is not a valid site name"),
        ("base", "'base' is reserved (settings/base.py is shared)"),
    ],
)
def test_add_a_site_with_a_bad_name_is_refused(name, fragment):
    found = problems(editor.add_site(source(), name, ["x.localhost"]))
    assert len(found) == 1
    assert found[0].startswith(f"local: site '{name}': field 'name': ")
    assert fragment in found[0]


def test_add_a_site_whose_domain_belongs_to_another_site_is_refused():
    change = editor.add_site(source(), "acme", ["acme.localhost", "www.harbor.localhost"])
    assert change.files == {}
    assert problems(change) == [
        "local: site 'acme': field 'domains': 'www.harbor.localhost' already belongs to site "
        "'harbor' (present); remove it there first: "
        "sitekit domain remove local harbor www.harbor.localhost"
    ]


def test_add_a_new_site_without_domains_is_refused():
    assert problems(editor.add_site(source(), "acme", [])) == [
        "local: site 'acme': field 'domains': give at least one domain (the first becomes the "
        "site's canonical domain)"
    ]


@pytest.mark.parametrize(
    ("workers", "brand", "expected"),
    [
        (0, None, "local: site 'acme': field 'workers': must be between 1 and 64, got 0"),
        (2, "", "local: site 'acme': field 'brand': must not be empty"),
        (2, "x" * 51, "local: site 'acme': field 'brand': is 51 characters long; the limit is 50"),
        (2, "A\nB", "local: site 'acme': field 'brand': 'A\\nB' contains control characters"),
    ],
)
def test_add_a_new_site_with_bad_fields_is_refused(workers, brand, expected):
    found = problems(
        editor.add_site(source(), "acme", ["acme.localhost"], workers=workers, brand=brand)
    )
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_problems_already_in_the_catalogue_are_marked():
    text = ODD.replace("    threads: 2\n", "    threads: 0\n")
    found = problems(editor.add_domains(source(text), "harbor", ["new.localhost"]))
    assert found == [
        "local: site 'meadow': field 'threads': must be between 1 and 64, got 0 (threads per "
        "worker (more than 1 selects the gthread worker)) (already so before this change)"
    ]


# --- site remove ---------------------------------------------------------------------------


def test_remove_a_site_marks_it_absent_after_its_last_field():
    change = editor.remove_site(source(), "meadow")
    assert changes(ODD, change.after) == ["@@ -17,0 +18 @@", "+    state: absent"]
    assert sites(change.after)[1]["domains"] == ["meadow.localhost", "www.meadow.localhost"]
    assert change.summary[0] == (
        "local: site 'meadow': now absent (its domains and fields stay in "
        "inventories/local/group_vars/all/sites.yml)"
    )
    said = "\n".join(change.summary)
    assert "removes its nginx server block (no longer served: meadow.localhost, " in said
    assert "stops its gunicorn master and removes its supervisor program" in said
    assert "removes its env file, gunicorn configuration, socket" in said
    assert "kept: its rows in the database" in said
    assert "settings/meadow.py, project/sites/meadow/" in said


def test_remove_the_first_site_keeps_the_comment_before_the_next():
    change = editor.remove_site(source(), "harbor")
    assert changes(ODD, change.after) == ["@@ -9,0 +10 @@", "+    state: absent"]
    assert change.after.count("  # meadow: a block list") == 1


def test_remove_a_site_whose_last_field_is_a_block_list():
    text = (
        "sitekit_sites:\n"
        "  - name: meadow\n"
        "    domains:\n"
        "      - meadow.localhost\n"
        "      # still about the list\n"
        "  # about harbor\n"
        "  - name: harbor\n"
        "    domains: [harbor.localhost]\n"
    )
    change = editor.remove_site(source(text), "meadow")
    assert changes(text, change.after) == ["@@ -5,0 +6 @@", "+    state: absent"]


def test_remove_a_site_that_is_absent_changes_nothing():
    change = editor.remove_site(source(), "ember")
    assert change.ok and not change.changed
    assert change.notes == ["local: site 'ember': already absent"]


def test_remove_a_present_state_keeps_its_quotes():
    text = ODD.replace('    state: "absent"   # kept for its domains\n', '    state: "present"\n')
    change = editor.remove_site(source(text), "ember")
    assert changes(text, change.after) == [
        "@@ -23 +23 @@",
        '-    state: "present"',
        '+    state: "absent"',
    ]


def test_remove_an_unknown_site_is_refused():
    assert problems(editor.remove_site(source(), "nosuch")) == [
        "local: site 'nosuch': no such site in local (sites: harbor, meadow, ember); "
        "nothing to remove"
    ]


# --- files the editor cannot keep as they are ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "sitekit_sites:\n  - name: harbor\n    domains: [harbor.localhost,\n"
            "              www.harbor.localhost]\n",
            "line 3 ('domains: [harbor.localhost,')",
        ),
        (
            "sitekit_sites:\n  - name:   harbor\n    domains: [harbor.localhost]\n",
            "line 2 ('- name:   harbor')",
        ),
        ("sitekit_sites:\r\n  - name: harbor\r\n", "line 1 ('sitekit_sites:')"),
    ],
)
def test_a_file_that_would_be_reformatted_is_refused(text, line):
    found = problems(editor.add_domains(source(text), "harbor", ["new.localhost"]))
    assert len(found) == 1
    assert "cannot be edited by this command without also reformatting " + line in found[0]


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("sitekit_sites:\r\n  - name: harbor\r\n",
         "line 1 ('sitekit_sites:'): it ends with CR LF; the catalogue's lines end with LF only"),
        ("sitekit_sites:  \n  - name: harbor\n",
         "line 1 ('sitekit_sites:'): it ends with white space"),
    ],
)
def test_a_file_that_would_be_reformatted_is_refused_naming_the_cause(text, cause):
    found = problems(editor.add_domains(source(text), "harbor", ["new.localhost"]))
    assert f"without also reformatting {cause}. Write that line" in found[0]


@pytest.mark.parametrize("edit", [
    lambda src: editor.add_domains(src, "harbor", ["new.localhost"]),
    lambda src: editor.remove_domains(src, "ember", ["old-ember.localhost"]),
    lambda src: editor.remove_site(src, "harbor"),
    lambda src: editor.move_site(src, "harbor", None, workers=3),
])
def test_a_file_without_a_final_newline_is_edited_and_keeps_none(edit):
    # it used to be refused, "without also reformatting" its last line, naming no cause
    text = ODD.removesuffix("\n")
    change = edit(source(text))
    assert change.ok, change.problems
    assert not change.after.endswith("\n")
    assert changes(text + "\n", change.after + "\n") == changes(ODD, edit(source(ODD)).after)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sitekit_sites: [\n", "inventories/local/group_vars/all/sites.yml is not valid YAML"),
        ("other: 1\n", "does not define 'sitekit_sites'"),
        ("sitekit_sites:\n  name: harbor\n", "field 'sitekit_sites': must be a list of sites"),
    ],
)
def test_a_file_without_a_catalogue_is_refused(text, fragment):
    found = problems(editor.remove_site(source(text), "harbor"))
    assert len(found) == 1
    assert fragment in found[0]


def test_a_site_listed_twice_is_refused():
    text = ODD.replace("  - name: ember\n", "  - name: harbor\n")
    found = problems(editor.remove_site(source(text), "harbor"))
    assert found == [
        "local: site 'harbor': field 'name': the catalogue lists this site 2 times; merge the "
        "entries by hand first"
    ]


# --- scaffolding ---------------------------------------------------------------------------


def test_next_site_id_is_one_more_than_the_highest(tmp_path):
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "base.py").write_text("DEBUG = False\n")
    assert editor.next_site_id(tmp_path) == 1
    (tmp_path / "settings" / "a.py").write_text("SITE_ID = 1\n")
    (tmp_path / "settings" / "b.py").write_text("SITE_ID = 7\n")  # gaps are not reused
    assert editor.next_site_id(tmp_path) == 8
    assert editor.next_site_id(REPO) == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # a module that cannot be parsed still owns the SITE_ID its text sets
        (b"SITE_ID = 7\n\x00\n", 8),
        (b"SITE_ID = 7\nX = " + b"-" * 200_000 + b"1\n", 8),
        (b"SITE_ID = 7\nX = " + b"(" * 300 + b"1" + b")" * 300 + b"\n", 8),
        (b"SITE_ID: int = 7  # seven\n\xff\n", 8),
        # a SITE_ID the Sites table cannot hold is no SITE_ID: it is reported, never followed
        (b"SITE_ID = 2147483648\n", 3),
        (b"SITE_ID = " + b"9" * 5000 + b"\n", 3),
        (b"SITE_ID = -9\n", 3),
    ],
)
def test_next_site_id_reads_every_module_it_can(tmp_path, body, expected):
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "harbor.py").write_text("SITE_ID = 2\n")
    (tmp_path / "settings" / "broken.py").write_bytes(body)
    assert editor.next_site_id(tmp_path) == expected


def test_no_site_id_is_left_after_the_highest_the_column_holds(tmp_path):
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "harbor.py").write_text("SITE_ID = 2147483646\n")
    assert editor.next_site_id(tmp_path) == 2147483647
    (tmp_path / "settings" / "meadow.py").write_text("SITE_ID = 2147483647\n")
    assert editor.next_site_id(tmp_path) is None


def test_scaffold_escapes_what_the_user_typed():
    files = editor.scaffold("acme", 'Ça "va" <bien> \\ ok', 9)
    namespace: dict = {}
    module = files["settings/acme.py"].replace("from .base import *\n", "")
    exec(compile(module, "settings/acme.py", "exec"), namespace)
    assert namespace["SITEKIT_BRAND"]["name"] == 'Ça "va" <bien> \\ ok'
    assert namespace["SITE_ID"] == 9
    assert (
        'aria-label="Ça &quot;va&quot; &lt;bien&gt; \\ ok"'
        in files["project/sites/acme/static/acme/logo.svg"]
    )


def test_scaffold_renders_each_template_file():
    templates = Path(editor.__file__).parent / "site_template"
    shipped = [p.relative_to(templates).as_posix() for p in templates.rglob("*-tpl")]
    expected = [p.removesuffix("-tpl").replace("site_name", "acme") for p in shipped]
    files = editor.scaffold("acme", "Acme", 9)
    assert sorted(files) == sorted(expected)
    assert next(iter(files)) == "settings/acme.py"  # listed first: the module that names it


def test_palette_is_the_same_in_every_process_and_differs_between_sites():
    # str hashes differ between processes (PYTHONHASHSEED): a palette must not depend on them
    code = "from sitekit import editor; print(sorted(editor.palette('acme').items()))"
    runs = {
        subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONHASHSEED=seed),
                       capture_output=True, text=True, check=True, cwd=REPO).stdout
        for seed in ("1", "2", "3")
    }
    assert runs == {f"{sorted(editor.palette('acme').items())}\n"}
    assert editor.palette("acme") != editor.palette("zenith")
    assert all(len(c) == 7 and c.startswith("#") for c in editor.palette("acme").values())


def test_default_brand():
    assert editor.default_brand("meadow") == "Meadow"
    assert editor.default_brand("north_shore") == "North Shore"


# --- writing -------------------------------------------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    """A copy of the checkout's codebase and local inventory, with the odd catalogue."""
    root = tmp_path / "checkout"
    root.mkdir()
    (root / "manage.py").write_bytes((REPO / "manage.py").read_bytes())
    for name in ("settings", "project"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    catalogue = root / "inventories" / "local" / CATALOGUE
    catalogue.parent.mkdir(parents=True)
    catalogue.write_text(ODD)
    return root


def read(root):
    return editor.read_source(inventory.find("local", root))


@pytest.mark.parametrize("body", [b"SITE_ID = 7\n\x00\n", b"SITE_ID = 99999999999\n",
                                  b"X = " + b"1+" * 200_000 + b"1\n"])
def test_add_a_site_next_to_a_module_that_cannot_be_read(checkout, body):
    # an unrelated module (in no catalogue) does not stop a new site
    (checkout / "settings" / "broken.py").write_bytes(body)
    change = editor.add_site(read(checkout), "acme", ["acme.localhost"])
    assert change.ok, problems(change)
    site_id = 8 if body.startswith(b"SITE_ID = 7") else 4
    assert f"SITE_ID = {site_id}\n" in change.files["settings/acme.py"]


def test_add_a_site_when_no_site_id_is_left(checkout):
    (checkout / "settings" / "last.py").write_text("SITE_ID = 2147483647\n")
    change = editor.add_site(read(checkout), "acme", ["acme.localhost"])
    assert problems(change) == [
        "local: site 'acme': field 'name': no SITE_ID is left for a new site: a settings module "
        "in settings/ already uses 2147483647, the highest id the Sites table holds"
    ]
    assert change.files == {}


def test_bring_back_a_site_whose_module_cannot_be_parsed(checkout):
    # the module of the site itself: its problem is reported (naming it), not a traceback
    (checkout / "settings" / "ember.py").write_bytes(b"SITE_ID = 3\n\x00\n")
    change = editor.add_site(read(checkout), "ember", [], brand="Ember")
    assert problems(change) == [
        "local: site 'ember': field 'brand': settings/ember.py already exists (with no brand "
        "read); --brand only names a new site (edit SITEKIT_BRAND there to rename it)"
    ]
    found = problems(editor.add_site(read(checkout), "ember", []))
    assert found == [
        "local: site 'ember': field 'name': settings/ember.py cannot be parsed: it holds a NUL "
        "byte (line 2) (already so before this change)"
    ]


def test_apply_writes_the_new_text_and_keeps_the_mode(checkout):
    path = checkout / "inventories" / "local" / CATALOGUE
    path.chmod(0o640)
    change = editor.add_domains(read(checkout), "harbor", ["new.localhost"])
    assert editor.apply(change) == [path]
    assert path.read_text() == change.after
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(os.listdir(path.parent)) == ["sites.yml"]  # no temporary file left


def test_apply_refuses_when_the_file_changed_meanwhile(checkout):
    path = checkout / "inventories" / "local" / CATALOGUE
    change = editor.add_domains(read(checkout), "harbor", ["new.localhost"])
    path.write_text(ODD + "# edited meanwhile\n")
    with pytest.raises(editor.EditError, match="changed while this command ran"):
        editor.apply(change)
    assert path.read_text() == ODD + "# edited meanwhile\n"


def test_apply_a_new_site_creates_its_files_then_the_catalogue(checkout):
    change = editor.add_site(read(checkout), "acme", ["acme.localhost"])
    written = editor.apply(change)
    assert written[-1] == checkout / "inventories" / "local" / CATALOGUE
    for rel, text in change.files.items():
        assert (checkout / rel).read_text() == text
    assert not list(checkout.glob(".sitekit-new-*"))
    assert (checkout / "settings" / "acme.py").stat().st_mode & 0o444 == 0o444


def test_apply_refuses_a_change_with_problems(checkout):
    change = editor.add_domains(read(checkout), "nosuch", ["new.localhost"])
    with pytest.raises(editor.EditError):
        editor.apply(change)
