"""A large catalogue: what `sitekit check` and the editing commands do with one is what they do
with a small one (the speed is bench/cli_scale.py's to measure, not a test's).

An edit of a large catalogue round-trips only the lines of the entry it touches; it must give
the very text the whole-file round trip gives. The readings remembered between runs (the
catalogue's data, the settings modules' SITE_IDs) must never be used once stale.
"""

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from sitekit import editor, inventory, loader, siteids
from sitekit.editor import document
from tests.harness import write_settings

REPO = Path(__file__).resolve().parents[2]
CATALOGUE = Path("group_vars/all/sites.yml")
COUNT = 259  # sites: more than document.WINDOW_FROM; the last one present

HEAD = """\
---
# A large catalogue with comments in odd places, flow and block lists and quoted strings.

sitekit_pools:
  shared: {workers: 2}
sitekit_sites:   # every site of this environment
"""


def entry(i):
    name = f"site{i:04d}"
    if i % 3 == 0:
        return (f"  # {name}: a block list of quoted strings\n  - name: \"{name}\"\n"
                f"    domains:\n      - \"{name}.localhost\"      # canonical\n"
                f"      # its www name\n      - \"www.{name}.localhost\"\n    pool: shared\n")
    if i % 3 == 1:
        return (f"  - name: {name}              # settings/{name}.py\n"
                f"    domains: [{name}.localhost, www.{name}.localhost]   # the first is "
                f"canonical\n    workers: 2\n\n")
    return (f"  - name: {name}\n    domains: [{name}.localhost, 'old-{name}.localhost']\n"
            f"    workers: 3\n    state: \"absent\"   # kept for its domains\n")


TEXT = HEAD + "".join(entry(i) for i in range(1, COUNT + 1)) + (
    "# end of the catalogue\nother_setting: keep me   # another variable\n")
NAMES = [f"site{i:04d}" for i in range(1, COUNT + 1)]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """What sitekit remembers goes to a directory of the test's own."""
    monkeypatch.setenv("SITEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(siteids, "REMEMBER_FROM", 1024)  # TEXT is remembered
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A checkout's inventories (the large catalogue in `local`) and a settings module per
    site."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "inventories", root / "inventories")
    (root / "inventories" / "local" / CATALOGUE).write_text(TEXT)
    write_settings(root / "settings", [{"name": n} for n in NAMES])
    (root / "project" / "sites").mkdir(parents=True)
    return root


def plan(project, command, *args, whole=False, monkeypatch=None):
    source = editor.Source("local", project / "inventories" / "local" / CATALOGUE, TEXT, project)
    if whole:
        monkeypatch.setattr(document, "WINDOW_FROM", 10**9)
    return command(source, *args)


EDITS = [
    ("add to a flow list", editor.add_domains, ("site0100", ["shop.site0100.localhost"])),
    ("add to a block list", editor.add_domains, ("site0099", ["shop.site0099.localhost"])),
    ("add to the last site", editor.add_domains, ("site0259", ["x.site0259.localhost"])),
    ("add to the first site", editor.add_domains, ("site0001", ["x.site0001.localhost"])),
    ("remove the canonical domain", editor.remove_domains, ("site0099",
                                                            ["site0099.localhost"])),
    ("remove a site", editor.remove_site, ("site0130",)),
    ("make an absent site present", editor.add_site, ("site0131", ["site0131.localhost"])),
    ("move a site to the pool", editor.move_site, ("site0130", "shared")),
]


def test_the_catalogue_is_large_enough_to_be_edited_in_a_window():
    assert COUNT >= document.WINDOW_FROM
    assert yaml.safe_load(TEXT)["sitekit_sites"][129]["name"] == "site0130"


@pytest.mark.parametrize(("what", "command", "args"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edit_of_a_large_catalogue_is_the_whole_file_round_trip_s(
        project, monkeypatch, what, command, args):
    read = []
    real = document._round_trip_yaml
    monkeypatch.setattr(document, "_round_trip_yaml", lambda text: read.append(text) or
                        real(text))
    windowed = plan(project, command, *args)
    assert windowed.ok, windowed.problems
    assert windowed.changed
    # the round-trip model read a few lines of the file, not the file
    assert read and all(text.count("\n") < 20 for text in read), read
    whole = plan(project, command, *args, whole=True, monkeypatch=monkeypatch)
    assert whole.ok
    assert windowed.after == whole.after
    assert (windowed.notes, windowed.summary) == (whole.notes, whole.summary)


def test_a_new_site_in_a_large_catalogue_goes_last_as_it_would_in_a_small_one(
        project, monkeypatch):
    args = ("brandnew", ["brandnew.localhost", "www.brandnew.localhost"])
    windowed = plan(project, editor.add_site, *args)
    whole = plan(project, editor.add_site, *args, whole=True, monkeypatch=monkeypatch)
    assert windowed.ok and whole.ok
    assert windowed.after == whole.after
    assert windowed.after.endswith("  - name: brandnew\n    domains: [brandnew.localhost, "
                                   "www.brandnew.localhost]\n    workers: 2\n    state: present\n"
                                   "\n# end of the catalogue\nother_setting: keep me   # another "
                                   "variable\n")


def test_an_entry_that_would_be_reformatted_is_refused_naming_its_line(project):
    lines = TEXT.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if "- name: site0100" in line) + 2
    assert lines[index] == "    workers: 2\n"
    lines[index] = "    workers: 2   \n"
    source = editor.Source("local", project / "inventories" / "local" / CATALOGUE,
                           "".join(lines), project)
    change = editor.add_domains(source, "site0100", ["shop.site0100.localhost"])
    assert not change.ok
    assert (f"cannot be edited by this command without also reformatting line {index + 1} "
            "('workers: 2'): it ends with white space") in str(change.problems[0])
    # another site's entry is edited: that line is not touched
    assert editor.add_domains(source, "site0103", ["x.site0103.localhost"]).ok


# --- a domain list too long for one line -------------------------------------------------


def yamllint(text, tmp_path):
    path = tmp_path / "sites.yml"
    path.write_text(text)
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "yamllint"), "-c",
                           str(REPO / ".yamllint"), str(path)],
                          capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout


@pytest.mark.parametrize("count", [20, COUNT])
def test_a_flow_list_that_would_outgrow_a_line_becomes_a_block_list(
        project, tmp_path, monkeypatch, count):
    monkeypatch.setattr(document, "WINDOW_FROM", count)
    text = TEXT
    source = editor.Source("local", project / "inventories" / "local" / CATALOGUE, text, project)
    for sub in ("shop", "blog", "news", "help"):
        change = editor.add_domains(source, "site0100", [f"{sub}.site0100.localhost"])
        assert change.ok, change.problems
        source = editor.Source(source.env, source.path, change.after, source.project_root)
    assert yamllint(text, tmp_path)[0] == 0
    assert yamllint(source.text, tmp_path) == (0, "")
    entry_text = source.text.split("  - name: site0100", 1)[1].split("  - name:", 1)[0]
    assert entry_text.splitlines()[:4] == [
        "              # settings/site0100.py",
        "    domains:   # the first is canonical",
        "      - site0100.localhost",
        "      - www.site0100.localhost",
    ]
    assert yaml.safe_load(source.text)["sitekit_sites"][99]["domains"][-1] == (
        "help.site0100.localhost")


def test_a_new_site_whose_domains_would_not_fit_on_a_line_gets_a_block_list(project):
    source = editor.Source("local", project / "inventories" / "local" / CATALOGUE, TEXT, project)
    domains = [f"{sub}.a-long-site-name.localhost" for sub in ("www", "shop", "blog", "news")]
    change = editor.add_site(source, "longone", ["a-long-site-name.localhost", *domains])
    assert change.ok, change.problems
    assert "    domains:\n      - a-long-site-name.localhost\n      - www.a-long" in change.after


# --- what is remembered between runs --------------------------------------------------------


def test_a_remembered_catalogue_reads_as_the_catalogue(cache):
    first = loader.load(TEXT)
    assert first.ok and list(cache.glob("yaml-*.json"))
    again = loader.load(TEXT)
    assert again.data == first.data == yaml.safe_load(TEXT)
    again.data["sitekit_sites"].clear()  # each reading is the caller's own
    assert loader.load(TEXT).data == first.data


def test_only_what_json_gives_back_exactly_is_remembered(cache):
    dated = TEXT.replace("other_setting: keep me", "other_setting: 2024-02-29")
    found = loader.load(dated)
    assert str(found.data["other_setting"]) == "2024-02-29"
    assert not list(cache.glob("yaml-*.json"))
    assert loader.load(dated).data == found.data


def test_a_flawed_catalogue_is_never_remembered(cache):
    flawed = TEXT.replace("other_setting: keep me", "other_setting: 1\nother_setting: 2")
    assert not loader.load(flawed).ok
    assert not list(cache.glob("yaml-*.json"))
    assert "given twice" in str(loader.load(flawed).flaws[0])


def test_a_settings_module_changed_since_it_was_read_is_read_again(project, monkeypatch, cache):
    monkeypatch.setattr(siteids, "SETTLE", -1.0)  # remember even what was just written
    inv = inventory.Inventory("local", project / "inventories" / "local", project)
    assert inventory.check(inv).ok
    assert list(cache.glob("site-ids-*.json"))
    module = project / "settings" / "site0002.py"
    before = module.read_text()
    stat = module.stat()
    try:
        # site0002 takes site0001's SITE_ID, in a file of the same size and times
        module.write_text(before.replace("SITE_ID = 1002", "SITE_ID = 1001"))
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        result = inventory.check(inv)
        assert not result.ok
        assert "set SITE_ID 1001" in str(result.problems[0])
    finally:
        module.write_text(before)
    assert inventory.check(inv).ok


def test_without_a_cache_directory_everything_is_read(project, monkeypatch, tmp_path):
    monkeypatch.setenv("SITEKIT_CACHE_DIR", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a directory")
    inv = inventory.Inventory("local", project / "inventories" / "local", project)
    assert inventory.check(inv).ok
    assert loader.load(TEXT).ok


def test_check_names_a_large_pool_by_its_count_and_first_sites(project, capsys):
    from sitekit.cli import main

    assert main(["--project", str(project), "check", "local"]) == 0
    pooled = [n for i, n in enumerate(NAMES, 1) if i % 3 == 0]
    present = [n for i, n in enumerate(NAMES, 1) if i % 3 != 2]
    assert capsys.readouterr().out == (
        f"local: OK: {COUNT} sites ({len(present)} present), {2 * len(present)} domains; "
        f"pool shared: {len(pooled)} sites: site0003, site0006, site0009 and "
        f"{len(pooled) - 3} more\n")


# --- an edited text read from the remembered reading of its base ----------------------------


def reading(loaded):
    return loaded.ok, loaded.data, [(f.line, f.path, f.message) for f in loaded.flaws]


def edit(text, after_line, *new_lines, drop=0):
    """``text`` with ``new_lines`` after the first line holding ``after_line`` (and the ``drop``
    lines that followed it removed)."""
    lines = text.split("\n")
    index = next(i for i, line in enumerate(lines) if after_line in line) + 1
    return "\n".join(lines[:index] + list(new_lines) + lines[index + drop:])


# each read from the base's reading and the entry's own lines: (the line after which lines
# go, the lines, how many lines they replace)
WITHIN_AN_ENTRY = {
    "a domain in a block list": ('      - "www.site0099.localhost"',
                                 ['      - "x.site0099.localhost"'], 0),
    "a line at the end of an entry": ("    pool: shared", ["    workers: 4"], 0),
    "a domain in a flow list": ("- name: site0100",
                                ["    domains: [site0100.localhost, x.localhost]"], 1),
    "a domain of the last site": ("- name: site0259",
                                  ["    domains: [site0259.localhost, x.localhost]"], 1),
    "a domain removed": ('    domains:', [], 1),
    "a comment at the margin": ('      - "www.site0099.localhost"', ["# a note"], 0),
    "a block scalar within an entry": ("- name: site0100", ["    note: |", "      text",
                                                            "      more"], 0),
    # a block scalar ending the entry keeps its line break, and a kept one its blank lines
    "a literal scalar ending an entry": ("    pool: shared", ["    note: |", "      text"], 0),
    "a kept scalar ending an entry": ("    pool: shared", ["    note: |+", "      text", ""], 0),
    "a folded domain ending an entry": ("    pool: shared", ["    other:", "      - >",
                                                            "        x.site0003.localhost"], 0),
    "a stripped scalar ending an entry": ("    pool: shared", ["    note: >-", "      text"], 0),
    "a block scalar ending the last entry": ("# end of the catalogue", ["    note: |",
                                                                     "      text"], 0),
}
# each read whole: the same reading (flaws in their place) as without a base
OTHERWISE = {
    "a key given twice": ("- name: site0100", "    workers: 3"),
    "a key at the margin": ('      - "www.site0099.localhost"', "stray: 1"),
    "the end of the document": ('      - "www.site0099.localhost"', "..."),
    "another document": ('      - "www.site0099.localhost"', "---"),
    "an open quotation": ('      - "www.site0099.localhost"', '      - "x.site0099'),
    "an alias of another entry": ('      - "www.site0099.localhost"', "      - *missing"),
    "a new entry": ("    pool: shared", "  - name: extra", "    domains: [extra.localhost]"),
    "a line at the list's column": ("    pool: shared", "  # fine", "  x: 1"),
    "a tab": ('      - "www.site0099.localhost"', "\t  - x.localhost"),
    "a carriage return": ('      - "www.site0099.localhost"', '      - "x.localhost"\r'),
    "a date": ('      - "www.site0099.localhost"', "      - 2024-02-30"),
    "a pool's setting": ("  shared: {workers: 2}", "  other: {workers: 1}"),
    "a directive's tag": ("    pool: shared", '    workers: !!int "3"'),
}


@pytest.mark.parametrize("change", WITHIN_AN_ENTRY.values(), ids=WITHIN_AN_ENTRY.keys())
def test_an_edit_within_an_entry_reads_as_the_whole_text_without_reading_it(
        cache, monkeypatch, change):
    assert loader.load(TEXT).ok  # the base, remembered
    after_line, lines, drop = change
    edited = edit(TEXT, after_line, *lines, drop=drop)
    assert edited != TEXT
    read = []
    real = loader._load
    monkeypatch.setattr(loader, "_load", lambda text: read.append(text) or real(text))
    fast = loader.load(edited, base=TEXT)
    assert reading(fast) == reading(real(edited))
    # the edited text was not read whole: only the entry's lines were
    assert fast.ok and len(read) == 1 and read[0].count("\n") < 12, read
    # and remembered: the next reading of the edited text reads nothing
    read.clear()
    assert reading(loader.load(edited)) == reading(fast) and read == []


@pytest.mark.parametrize("change", OTHERWISE.values(), ids=OTHERWISE.keys())
def test_an_edit_of_another_kind_reads_as_the_whole_text(cache, change):
    base = TEXT
    if "!!" in change[-1]:  # a base whose tags mean something else
        base = "%TAG !! tag:example.com,2000:\n" + TEXT
    assert loader.load(base).ok
    edited = edit(base, *change)
    assert reading(loader.load(edited, base=base)) == reading(loader._load(edited))


def test_edits_read_one_after_another_from_each_others_reading(cache, monkeypatch):
    # the layout remembered for each edited text is where its entries moved to
    text = TEXT
    assert loader.load(text).ok
    read = []
    real = loader._load
    monkeypatch.setattr(loader, "_load", lambda text: read.append(text) or real(text))
    for name in ("site0003", "site0200", "site0001", "site0259", "site0150"):
        quoted = f'"{name}"' if int(name[4:]) % 3 == 0 else name
        after = edit(text, f"- name: {quoted}", f"    brand: Brand of {name}", "    # new")
        fast = loader.load(after, base=text)
        assert reading(fast) == reading(real(after)), name
        text = after
    # each edited text was read as its entry's lines alone
    assert len(read) == 5 and all(t.count("\n") < 12 for t in read), read
    sites = loader.load(text).data["sitekit_sites"]
    assert [s["name"] for s in sites if "brand" in s] == [
        "site0001", "site0003", "site0150", "site0200", "site0259"]


def test_any_edit_reads_as_the_whole_text(cache, monkeypatch):
    # lines of every kind, a few at a time, anywhere: the reading from the base is the whole
    # text's reading whenever it is taken (and it is taken: the base stays remembered)
    monkeypatch.setattr(siteids, "_KEEP", 1000)
    read = []
    real = loader._load
    monkeypatch.setattr(loader, "_load", lambda text: read.append(text) or real(text))
    fast = 0
    kinds = ["", "# c", "...", "---", "%YAML 1.1", "- x", "  - name: z", "  - name: site0050",
             "    - a", "      - b", "  x: 1", "    workers: 9", "    k: 'open", "    k: |",
             "      more", "\t- t", "      - *a", "      - &a x", "    ? k", "    : v", "]",
             "    d: [a,", "      b]", "    e: {x: 1", "  ", "    - 2024-02-30", "x: y",
             '      - "q', "    note: >-", "  # at the list's column", "    pool: shared",
             "    k: |+", "    - >", "      text"]
    rng = random.Random(16)
    assert loader.load(TEXT).ok
    lines = TEXT.split("\n")
    for _ in range(300):
        at = rng.randrange(len(lines))
        new = [rng.choice(kinds) for _ in range(rng.randint(0, 3))]
        edited = "\n".join(lines[:at] + new + lines[at + rng.randint(0, 2):])
        read.clear()
        got = loader.load(edited, base=TEXT)
        # read from the base: only the edited entry's lines were read
        fast += bool(read) and all(t.count("\n") < 20 for t in read)
        assert reading(got) == reading(real(edited)), (at, new)
    print(f"{fast} of 300 edits read from the base")
    assert fast >= 60, fast
