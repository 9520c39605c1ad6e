"""A release that cannot go live never does: the previous one keeps serving every site.

Each test deploys a broken release onto the shared stack while requests run against every
domain: the playbook fails saying what failed and that the live release keeps serving, every
site still answers from the previous release with the same masters, and no request fails. Then
the next good deploy goes live; the last test returns the stack to this checkout's release.
"""

from __future__ import annotations

import os
import sqlite3
import time

import pytest

from bench.load import describe, gaps, summary
from tests.e2e.stack import masters, release_checkout, release_id

pytestmark = pytest.mark.e2e

FAILING_MIGRATION = '''\
from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("core", "{latest}")]
    operations = [
        migrations.CreateModel(name="Doomed", fields=[("id", models.AutoField(primary_key=True))]),
        migrations.RunPython(fail, migrations.RunPython.noop),
    ]
'''


def deploy_under_load(stack, sites, project, *extra):
    """The playbook's run under load; the figures of the requests sent while it ran, after
    checking that every 2 s of it had answered requests on every site (so that "0 failed"
    cannot come from a window in which nothing was asked)."""
    with stack.load(sites) as load:
        time.sleep(1)
        started = time.monotonic()
        run = stack.playbook(*extra, project=project)
        ended = time.monotonic()
        time.sleep(1)
    during = load.between(started, ended)
    figures = summary(during)
    print(describe("requests while the deploy ran", figures))
    for site in sites:
        mine = [s for s in during if s.host in site["domains"]]
        assert gaps(mine, started, ended, step=2.0) == [], site["name"]
    return run, figures


def assert_still_live(stack, sites, live, pids):
    for site in sites:
        for domain in site["domains"]:
            assert stack.health(domain)["release"] == live
    assert os.readlink(stack.root / "current").endswith("/" + live)
    assert (stack.root / "RELEASE").read_text().strip() == live
    assert masters(stack) == pids


def test_a_failing_migration_stops_the_deploy_and_the_live_release_keeps_serving(
    stack, sites, tmp_path
):
    live = stack.health(sites[0]["domains"][0])["release"]
    pids = masters(stack)
    project = release_checkout(tmp_path / "checkout", "a release whose migration fails")
    migrations = project / "project" / "core" / "migrations"
    latest = max(p.stem for p in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
    (migrations / "9999_doomed.py").write_text(FAILING_MIGRATION.replace("{latest}", latest))
    broken = release_id(project)

    run, figures = deploy_under_load(stack, sites, project)

    assert run.returncode != 0
    assert (f"Apply database migrations (once per deploy, shared database) failed in release "
            f"{broken}: it does not go live, the live release {live} keeps serving every site."
            ) in " ".join(run.output.split())
    assert "RuntimeError: this migration fails on purpose" in run.output
    assert_still_live(stack, sites, live, pids)
    assert figures["sent"] > 20
    assert figures["failed"] == 0, figures
    # the migration ran in a transaction: neither recorded nor its table left behind
    with sqlite3.connect(stack.root / "var" / "db.sqlite3") as db:
        assert not db.execute(
            "SELECT 1 FROM django_migrations WHERE app='core' AND name='9999_doomed'").fetchall()
        assert not db.execute(
            "SELECT 1 FROM sqlite_master WHERE name='core_doomed'").fetchall()
    # the release stays installed, never live: deploying it again (once what failed outside it
    # is fixed) starts from its migrations; the next good deploy's retention clears it away
    assert (stack.root / "releases" / broken / ".installed").is_file()
    assert (stack.root / "releases" / live).is_dir()


def test_settings_that_raise_on_import_stop_the_deploy_naming_the_site(stack, sites, tmp_path):
    live = stack.health(sites[0]["domains"][0])["release"]
    pids = masters(stack)
    victim = sites[1]["name"]
    project = release_checkout(tmp_path / "checkout", "a release whose settings raise")
    with open(project / "settings" / f"{victim}.py", "a") as f:
        f.write('\nraise RuntimeError("these settings fail on purpose")\n')
    broken = release_id(project)

    run, figures = deploy_under_load(stack, sites, project)

    assert run.returncode != 0
    output = " ".join(run.output.split())
    assert f"Release {broken} could not be installed; the live release is unchanged." in output
    assert f"settings.{victim}: does not load: RuntimeError: these settings fail on purpose" in (
        output)
    assert_still_live(stack, sites, live, pids)
    assert not (stack.root / "releases" / broken).exists()  # the incomplete release is removed
    assert figures["sent"] > 20
    assert figures["failed"] == 0, figures


def test_the_next_good_deploy_goes_live_then_the_checkouts_release_again(stack, sites, tmp_path):
    """With ``release_keep=1`` the good deploy's retention removes every other release, the
    failed one left installed above included, but never the live one nor the one it replaced."""
    pids = masters(stack)
    live = stack.health(sites[0]["domains"][0])["release"]
    project = release_checkout(tmp_path / "checkout", "the next good release")
    good = release_id(project)
    releases = stack.root / "releases"

    run, figures = deploy_under_load(stack, sites, project, "-e", "release_keep=1")

    assert run.returncode == 0, run.output[-4000:]
    assert_still_live(stack, sites, good, pids)
    assert figures["failed"] == 0, figures
    assert (stack.root / "PREVIOUS_RELEASE").read_text().strip() == live
    assert sorted(p.name for p in releases.iterdir()) == sorted([good, live])

    run = stack.playbook()
    assert run.returncode == 0, run.output[-4000:]
    assert_still_live(stack, sites, stack.built_id, pids)
