"""sync_sites and seed_demo against the test database."""

import json
from io import StringIO

import pytest
from django.contrib.sites.models import Site
from django.core.management import call_command
from django.core.management.base import CommandError

from project.core.models import Announcement

pytestmark = pytest.mark.django_db

ALL = {"harbor": "harbor.localhost", "meadow": "meadow.localhost", "ember": "ember.localhost"}


def run(command, path):
    out = StringIO()
    call_command(command, catalogue=path, stdout=out)
    return out.getvalue().splitlines()


def domains():
    return dict(Site.objects.values_list("id", "domain"))


# --- sync_sites ---------------------------------------------------------------------


def test_sync_sites_creates_and_updates(catalogue):
    # The sites migration leaves example.com as SITE_ID 1 (harbor).
    assert domains() == {1: "example.com"}
    lines = run("sync_sites", catalogue(ALL))
    assert lines == [
        "harbor: updated (id=1, domain=harbor.localhost)",
        "meadow: created (id=2, domain=meadow.localhost)",
        "ember: created (id=3, domain=ember.localhost)",
        "sites: 2 created, 1 updated, 0 unchanged",
    ]
    assert domains() == {1: "harbor.localhost", 2: "meadow.localhost", 3: "ember.localhost"}
    assert dict(Site.objects.values_list("id", "name")) == {1: "Harbor", 2: "Meadow", 3: "Ember"}


def test_sync_sites_is_idempotent(catalogue):
    path = catalogue(ALL)
    run("sync_sites", path)
    lines = run("sync_sites", path)
    assert lines[-1] == "sites: 0 created, 0 updated, 3 unchanged"
    assert "harbor: unchanged (id=1, domain=harbor.localhost)" in lines


def test_sync_sites_updates_a_changed_domain(catalogue):
    run("sync_sites", catalogue(ALL))
    lines = run("sync_sites", catalogue({**ALL, "meadow": "meadow.example.org"}))
    assert "meadow: updated (id=2, domain=meadow.example.org)" in lines
    assert lines[-1] == "sites: 0 created, 1 updated, 2 unchanged"
    assert domains()[2] == "meadow.example.org"


def test_sync_sites_restores_a_renamed_site(catalogue):
    run("sync_sites", catalogue(ALL))
    Site.objects.filter(id=3).update(name="renamed by hand")
    lines = run("sync_sites", catalogue(ALL))
    assert lines[-1] == "sites: 0 created, 1 updated, 2 unchanged"
    assert Site.objects.get(id=3).name == "Ember"


def test_sync_sites_leaves_absent_sites_untouched(catalogue):
    run("sync_sites", catalogue(ALL))
    ember = Site.objects.get(id=3)
    Announcement.objects.create(site=ember, title="keep me")
    lines = run(
        "sync_sites",
        catalogue({**ALL, "ember": {"domain": "ember.elsewhere.test", "state": "absent"}}),
    )
    assert "ember: absent, left untouched" in lines
    assert lines[-1] == "sites: 0 created, 0 updated, 2 unchanged"
    assert domains()[3] == "ember.localhost"
    assert Announcement.objects.filter(site_id=3, title="keep me").exists()


def test_sync_sites_never_creates_absent_sites(catalogue):
    lines = run("sync_sites", catalogue({"ember": {"domain": "x.localhost", "state": "absent"}}))
    assert lines[-1] == "sites: 0 created, 0 updated, 0 unchanged"
    assert domains() == {1: "example.com"}


def test_sync_sites_swaps_domains(catalogue):
    run("sync_sites", catalogue(ALL))
    Announcement.objects.create(site_id=1, title="harbor item")
    swapped = {**ALL, "harbor": "meadow.localhost", "meadow": "harbor.localhost"}
    lines = run("sync_sites", catalogue(swapped))
    assert lines[-1] == "sites: 0 created, 2 updated, 1 unchanged"
    assert domains() == {1: "meadow.localhost", 2: "harbor.localhost", 3: "ember.localhost"}
    # Rows keep their ids (and so their data); only the domains moved.
    assert Announcement.objects.get(title="harbor item").site_id == 1


def test_sync_sites_rotates_domains_and_creates(catalogue):
    run("sync_sites", catalogue({"harbor": "a.localhost", "meadow": "b.localhost"}))
    lines = run(
        "sync_sites",
        catalogue({"harbor": "b.localhost", "meadow": "c.localhost", "ember": "a.localhost"}),
    )
    assert lines[-1] == "sites: 1 created, 2 updated, 0 unchanged"
    assert domains() == {1: "b.localhost", 2: "c.localhost", 3: "a.localhost"}


def test_sync_sites_refuses_domain_of_unmanaged_row(catalogue):
    run("sync_sites", catalogue(ALL))
    Site.objects.create(id=40, domain="legacy.localhost", name="Legacy")
    path = catalogue({**ALL, "meadow": "legacy.localhost", "ember": "new.localhost"})
    with pytest.raises(CommandError, match=r"legacy\.localhost belongs to site id=40"):
        run("sync_sites", path)
    # Nothing was applied: the failed run is one transaction.
    assert domains() == {
        1: "harbor.localhost",
        2: "meadow.localhost",
        3: "ember.localhost",
        40: "legacy.localhost",
    }


def test_sync_sites_refuses_duplicate_domains(catalogue):
    with pytest.raises(CommandError, match="domain"):
        run("sync_sites", catalogue({**ALL, "meadow": "harbor.localhost"}))
    assert domains() == {1: "example.com"}


def test_sync_sites_refuses_duplicate_site_ids(catalogue):
    path = catalogue({"harbor": "harbor.localhost", "copy": {
        "domain": "copy.localhost", "settings_module": "settings.harbor"}})
    with pytest.raises(CommandError, match="SITE_ID=1"):
        run("sync_sites", path)


def test_sync_sites_uses_settings_module_and_default_state(tmp_path):
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"sites": [
        {"name": "ember", "domain": "Ember.Localhost", "settings_module": "settings.ember"},
    ]}))
    lines = run("sync_sites", str(path))
    assert lines == [
        "ember: created (id=3, domain=ember.localhost)",
        "sites: 1 created, 0 updated, 0 unchanged",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"sites": {}}', '"sites" list'),
        ('{"sites": [{"name": "Bad Name", "domain": "x.localhost"}]}', "invalid name"),
        ('{"sites": [{"name": "harbor"}]}', "missing domain"),
        ('{"sites": [{"name": "harbor", "domain": "h.localhost", "state": "gone"}]}', "state"),
        ('{"sites": [{"name": "nowhere", "domain": "n.localhost"}]}', "cannot import"),
        ('{"sites": [{"name": "harbor", "domain": "bad domain"}]}', "harbor:"),
    ],
)
def test_sync_sites_rejects_bad_catalogues(tmp_path, content, message):
    path = tmp_path / "catalogue.json"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("sync_sites", str(path))
    assert domains() == {1: "example.com"}


def test_sync_sites_missing_catalogue(tmp_path):
    with pytest.raises(CommandError, match="cannot read catalogue"):
        run("sync_sites", str(tmp_path / "missing.json"))


def test_sync_sites_clears_the_site_cache(catalogue, settings):
    settings.SITE_ID = 1
    Site.objects.clear_cache()
    assert Site.objects.get_current().domain == "example.com"
    run("sync_sites", catalogue(ALL))
    assert Site.objects.get_current().domain == "harbor.localhost"


# That a row created after sync_sites takes an id past the catalogue's is checked where the
# sequence exists, on PostgreSQL: tests/rehearsal (SQLite continues past the largest id itself).


# --- seed_demo ----------------------------------------------------------------------


def test_seed_demo_creates_one_welcome_per_site(catalogue):
    path = catalogue(ALL)
    run("sync_sites", path)
    lines = run("seed_demo", path)
    assert lines[-1] == "announcements: 3 created"
    for site_id, brand in ((1, "Harbor"), (2, "Meadow"), (3, "Ember")):
        (announcement,) = Announcement.objects.filter(site_id=site_id)
        assert announcement.title == f"Welcome to {brand}"
        assert brand in announcement.body


def test_seed_demo_is_idempotent(catalogue):
    path = catalogue(ALL)
    run("sync_sites", path)
    run("seed_demo", path)
    lines = run("seed_demo", path)
    assert lines[-1] == "announcements: 0 created"
    assert Announcement.objects.count() == 3


def test_seed_demo_leaves_sites_with_announcements_alone(catalogue):
    path = catalogue(ALL)
    run("sync_sites", path)
    Announcement.objects.create(site_id=2, title="real news")
    lines = run("seed_demo", path)
    assert lines[-1] == "announcements: 2 created"
    assert list(Announcement.objects.filter(site_id=2).values_list("title", flat=True)) == [
        "real news"
    ]


def test_seed_demo_skips_absent_sites_and_missing_rows(catalogue):
    run("sync_sites", catalogue({"harbor": "harbor.localhost"}))
    path = catalogue({
        "harbor": "harbor.localhost",
        "meadow": "meadow.localhost",  # present, but sync_sites has not created its row
        "ember": {"domain": "ember.localhost", "state": "absent"},
    })
    Site.objects.create(id=3, domain="ember.localhost", name="Ember")
    lines = run("seed_demo", path)
    assert "meadow: skipped, no Site row with id=2 (run sync_sites first)" in lines
    assert lines[-1] == "announcements: 1 created"
    assert list(Announcement.objects.values_list("site_id", flat=True)) == [1]


# --- sync_sites in bulk ---------------------------------------------------------------------

BULK = 300  # sites of the bulk tests (each with a settings module of its own)


@pytest.fixture
def many_sites(tmp_path, monkeypatch):
    """BULK generated sites: their settings modules (package ``bulksites``, SITE_IDs from
    1001) and a function writing a catalogue of them, each domain from ``domain_of``."""
    package = tmp_path / "bulksites"
    package.mkdir()
    (package / "__init__.py").write_text("")
    names = [f"bulk{i:04d}" for i in range(1, BULK + 1)]
    for index, name in enumerate(names, start=1):
        (package / f"{name}.py").write_text(
            f"SITE_ID = {1000 + index}\nSITEKIT_BRAND = {{'name': 'Brand {name}'}}\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(domain_of=lambda name: f"{name}.localhost", path=tmp_path / "bulk.json"):
        path.write_text(json.dumps({"sites": [
            {"name": name, "domain": domain_of(name), "settings_module": f"bulksites.{name}"}
            for name in names]}))
        return str(path)

    return names, write


def run_counting(path, quiet=True):
    """sync_sites, quietly: its output lines and the SQL statements it ran."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    out = StringIO()
    with CaptureQueriesContext(connection) as queries:
        call_command("sync_sites", catalogue=path, quiet=quiet, stdout=out)
    return out.getvalue().splitlines(), [q["sql"] for q in queries.captured_queries]


def writes(statements):
    return [s for s in statements if s.lstrip().upper().startswith(("INSERT", "UPDATE",
                                                                      "DELETE"))]


def test_sync_sites_creates_many_sites_in_bulk(many_sites):
    names, write = many_sites
    lines, statements = run_counting(write())
    assert lines == [f"sites: {BULK} created, 0 updated, 0 unchanged"]
    rows = {s.id: (s.domain, s.name) for s in Site.objects.filter(id__gt=1000)}
    assert rows == {1000 + i: (f"{n}.localhost", f"Brand {n}") for i, n in enumerate(names, 1)}
    # a few statements, not one per site
    assert len(writes(statements)) <= BULK // 100 + 2, writes(statements)


def test_a_second_sync_of_many_sites_changes_and_writes_nothing(many_sites):
    _, write = many_sites
    path = write()
    run_counting(path)
    lines, statements = run_counting(path)
    assert lines == [f"sites: 0 created, 0 updated, {BULK} unchanged"]
    assert writes(statements) == []
    assert len(statements) <= 4, statements  # the one read, and the transaction around it


def test_many_changed_domains_are_updated_in_bulk_and_only_theirs(many_sites):
    names, write = many_sites
    run_counting(write())
    # every third site moves to a new domain; two sites swap theirs
    moved = set(names[::3])
    swap = {names[1]: f"{names[2]}.localhost", names[2]: f"{names[1]}.localhost"}

    def domain_of(name):
        return swap.get(name) or (f"new-{name}.localhost" if name in moved else f"{name}.localhost")

    lines, statements = run_counting(write(domain_of))
    changed = len(moved | set(swap))
    assert lines == [f"sites: 0 created, {changed} updated, {BULK - changed} unchanged"]
    rows = dict(Site.objects.filter(id__gt=1000).values_list("id", "domain"))
    assert rows == {1000 + i: domain_of(n) for i, n in enumerate(names, 1)}
    assert len(writes(statements)) <= 2 * (changed // 100 + 2), writes(statements)
    lines, _ = run_counting(write(domain_of), quiet=False)
    assert lines[-1] == f"sites: 0 created, 0 updated, {BULK} unchanged"
    assert len(lines) == BULK + 1  # without --quiet: a line per site
