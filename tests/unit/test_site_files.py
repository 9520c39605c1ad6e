"""The sitekit.deploy.site_files action: every site's files in one task, run by ansible-playbook.

Each test runs a small real playbook against localhost (no mocks of Ansible): files and
directories appear with their modes, a second run changes nothing, check mode writes nothing
and says what it would change, and a secret file's contents never reach the output; with
install, a staged copy goes live only once its test accepts it.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sitekit import model

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK_BIN = Path(sys.executable).with_name("ansible-playbook")

SECRET = "s3cret-value-that-must-not-leak"


def _play(tmp: Path, sites: list[dict], greeting: str = "hello", secret: str = SECRET) -> Path:
    (tmp / "templates").mkdir(exist_ok=True)
    (tmp / "templates" / "page.j2").write_text("{{ greeting }} from {{ site.name }}\n")
    (tmp / "templates" / "secret.j2").write_text("KEY={{ secret }}-{{ site.name }}\n")
    play = [
        {
            "name": "site files",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "out": str(tmp / "out"),
                "greeting": greeting,
                "secret": secret,
                "site_dir": "{{ out }}/{{ site.name }}",
                "page_file": "{{ site_dir }}/page.txt",
                "secret_file": "{{ site_dir }}/site.env",
            },
            "tasks": [
                {
                    "name": "Make the output directory",
                    "ansible.builtin.file": {
                        "path": "{{ out }}",
                        "state": "directory",
                        "mode": "0755",
                    },
                },
                {
                    "name": "Render every site's files",
                    "sitekit.deploy.site_files": {
                        "sites": sites,
                        "files": [
                            {
                                "name": "dir",
                                "state": "directory",
                                "path_var": "site_dir",
                                "mode": "0750",
                            },
                            {
                                "name": "page",
                                "template": "page.j2",
                                "path_var": "page_file",
                                "mode": "0644",
                            },
                            {
                                "name": "env",
                                "template": "secret.j2",
                                "path_var": "secret_file",
                                "mode": "0600",
                                "secret": True,
                            },
                        ],
                    },
                    "register": "rendered",
                },
                {
                    "name": "Show what changed",
                    "ansible.builtin.debug": {
                        "msg": "CHANGED_SITES={{ rendered.changed_sites | to_json | b64encode }}"
                        " RENDERED={{ rendered.rendered | to_json | b64encode }}"
                        " SENT={{ rendered.contents_sent }}"
                        " CALLS={{ rendered.module_calls }}"
                    },
                },
            ],
        }
    ]
    path = tmp / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _run(playbook: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible" / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
        # the control machine's record of what the host holds: the test's own
        SITEKIT_CACHE_DIR=str(playbook.parent / "cache"),
    )
    return subprocess.run(
        [
            str(PLAYBOOK_BIN),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(playbook),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            *extra,
        ],
        cwd=playbook.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _edit(playbook: Path, variables: dict, page: dict | None = None, more_files=(), **task_args):
    """Set play variables, keys of the page spec, more specs and task arguments in *playbook*."""
    spec = yaml.safe_load(playbook.read_text())
    spec[0]["vars"].update(variables)
    task = spec[0]["tasks"][1]["sitekit.deploy.site_files"]
    task["files"][1].update(page or {})
    task["files"] += list(more_files)
    task.update(task_args)
    playbook.write_text(yaml.safe_dump(spec, sort_keys=False))


def _recap(output: str) -> dict[str, int]:
    line = next(x for x in output.splitlines() if x.startswith("localhost") and "ok=" in x)
    return {k: int(v) for k, v in (p.split("=") for p in line.split(":", 1)[1].split())}


def _changed_sites(output: str) -> dict:
    line = next(x for x in output.splitlines() if "CHANGED_SITES=" in x)
    encoded = line.split("CHANGED_SITES=", 1)[1].strip().strip("'\"")
    return json.loads(base64.b64decode(encoded))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def sites():
    return [{"name": "harbor"}, {"name": "meadow"}]


def test_renders_every_site_with_modes_then_changes_nothing(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    out = tmp_path / "out"
    for name in ("harbor", "meadow"):
        assert (out / name / "page.txt").read_text() == f"hello from {name}\n"
        assert (out / name / "site.env").read_text() == f"KEY={SECRET}-{name}\n"
        assert _mode(out / name) == 0o750
        assert _mode(out / name / "page.txt") == 0o644
        assert _mode(out / name / "site.env") == 0o600
    assert _changed_sites(first.stdout) == {
        "dir": ["harbor", "meadow"],
        "page": ["harbor", "meadow"],
        "env": ["harbor", "meadow"],
    }
    assert SECRET not in first.stdout + first.stderr

    second = _run(playbook)
    assert second.returncode == 0
    assert _recap(second.stdout)["changed"] == 0
    assert _changed_sites(second.stdout) == {"dir": [], "page": [], "env": []}


def test_only_what_differs_is_rewritten_and_a_mode_drift_is_repaired(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    assert _run(playbook).returncode == 0
    out = tmp_path / "out"
    (out / "meadow" / "page.txt").write_text("edited by hand\n")
    (out / "harbor" / "site.env").chmod(0o644)
    untouched = (out / "harbor" / "page.txt").stat().st_ino

    again = _run(playbook)
    assert again.returncode == 0
    assert _changed_sites(again.stdout) == {"dir": [], "page": ["meadow"], "env": ["harbor"]}
    assert (out / "meadow" / "page.txt").read_text() == "hello from meadow\n"
    assert _mode(out / "harbor" / "site.env") == 0o600
    assert (out / "harbor" / "page.txt").stat().st_ino == untouched


def test_check_mode_writes_nothing_and_diff_hides_secrets(tmp_path, sites):
    assert _run(_play(tmp_path, sites)).returncode == 0
    out = tmp_path / "out"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    other = "another-secret-value-never-shown"
    playbook = _play(tmp_path, [*sites, {"name": "ember"}], greeting="welcome", secret=other)
    planned = _run(playbook, "--check", "--diff", "-v")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (out / "ember").exists()
    assert "-hello from harbor" in planned.stdout
    assert "+welcome from harbor" in planned.stdout
    assert f"{out}/harbor/site.env: changed (secret: contents not shown)" in planned.stdout
    assert f"{out}/ember/site.env: created (secret: contents not shown)" in planned.stdout
    for secret in (SECRET, other):
        assert secret not in planned.stdout + planned.stderr
    assert _changed_sites(planned.stdout)["page"] == ["harbor", "meadow", "ember"]


def test_an_unknown_owner_fails_the_task_and_names_it(tmp_path):
    playbook = _play(tmp_path, [{"name": "harbor"}])
    _edit(playbook, {"nobody_here": "sk-no-such-user"}, {"owner_var": "nobody_here"})
    result = _run(playbook)
    assert result.returncode != 0
    assert "sk-no-such-user" in result.stdout


def test_a_host_file_renders_once_and_prune_removes_only_what_no_site_has(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    # one file of the host in the same call, rendered once with its own entry bound to `site`
    index = {"name": "index", "sites": [{"name": "host"}], "template": "page.j2",
             "path_var": "out ~ '/index.txt'", "mode": "0640"}
    _edit(playbook, {}, more_files=[index],
          prune=[{"path": "{{ out }}", "patterns": ["*.txt"], "keep": ["keep-*"]}])
    out = tmp_path / "out"
    out.mkdir()
    for name in ("gone.txt", "keep-me.txt", "other.log"):
        (out / name).write_text("left by an earlier run\n")

    planned = _run(playbook, "--check", "--diff")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert (out / "gone.txt").exists(), "check mode removed a file"

    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    assert (out / "index.txt").read_text() == "hello from host\n"
    assert _mode(out / "index.txt") == 0o640
    assert _changed_sites(first.stdout)["index"] == ["host"]
    assert sorted(p.name for p in out.iterdir()) == [
        "harbor", "index.txt", "keep-me.txt", "meadow", "other.log"]

    second = _run(playbook)
    assert second.returncode == 0
    assert _recap(second.stdout)["changed"] == 0


def test_a_spec_with_where_renders_for_the_matching_sites_only(tmp_path):
    sites = [{"name": "harbor", "kind": "pool"}, {"name": "meadow", "kind": "site"},
             {"name": "ember", "kind": "pool"}]
    playbook = _play(tmp_path, sites)
    pools = {"name": "pools", "where": {"kind": "pool"}, "template": "page.j2",
             "path_var": "out ~ '/' ~ site.name ~ '.pool.txt'", "mode": "0644"}
    _edit(playbook, {}, more_files=[pools])
    run = _run(playbook)
    assert run.returncode == 0, run.stdout[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.pool.txt")) == ["ember.pool.txt",
                                                                "harbor.pool.txt"]
    assert (out / "harbor.pool.txt").read_text() == "hello from harbor\n"
    assert _changed_sites(run.stdout)["pools"] == ["harbor", "ember"]
    _edit(playbook, {}, more_files=[{**pools, "name": "bad", "where": ["kind"]}])
    bad = _run(playbook)
    assert bad.returncode != 0 and "where must be a dict (field: value)" in bad.stdout


def test_a_spec_reads_its_own_list_of_the_model_in_place(tmp_path, sites):
    dirs = [{"name": "harbor", "kind": "pool"}, {"name": "meadow", "kind": "site"},
            {"name": "ember", "kind": "pool"}]
    playbook = _play(tmp_path, sites)
    # the preflight's result as the sitekit role registers it, and its vars' name for the list
    role_vars = yaml.safe_load((ROOT / "roles" / "sitekit" / "vars" / "main.yml").read_text())
    _edit(playbook, {"sitekit_preflight": {"model": model.publish({"sitekit_media_dirs": dirs})},
                     "sitekit_media_dirs": role_vars["sitekit_media_dirs"]})
    media = {"name": "media", "sites_from": "sitekit_media_dirs", "where": {"kind": "pool"},
             "template": "page.j2", "path_var": "out ~ '/' ~ site.name ~ '.media.txt'",
             "mode": "0644"}
    spec = yaml.safe_load(playbook.read_text())
    spec[0]["tasks"][1]["sitekit.deploy.site_files"]["files"].append(media)
    playbook.write_text(yaml.safe_dump(spec, sort_keys=False))
    run = _run(playbook)
    assert run.returncode == 0, run.stdout[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("*.media.txt")) == ["ember.media.txt",
                                                                 "harbor.media.txt"]
    assert (out / "ember.media.txt").read_text() == "hello from ember\n"
    assert _changed_sites(run.stdout)["media"] == ["harbor", "ember"]
    assert (out / "harbor" / "page.txt").exists()  # the task's own sites, as before
    # the empty name: the spec renders for no entry (not for the task's sites)
    media["sites_from"] = ""
    del media["where"]
    spec[0]["tasks"][1]["sitekit.deploy.site_files"]["files"][-1] = media
    playbook.write_text(yaml.safe_dump(spec, sort_keys=False))
    none = _run(playbook)
    assert none.returncode == 0, none.stdout[-3000:]
    assert "media" not in _changed_sites(none.stdout)  # no file of it at all
    assert not (out / "meadow.media.txt").exists()


def test_a_spec_reads_its_own_list_of_the_model_or_says_why_not(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    media = {"name": "media", "sites_from": "sitekit_media_dirs", "template": "page.j2",
             "path_var": "out ~ '/' ~ site.name ~ '.media.txt'", "mode": "0644"}
    _edit(playbook, {}, more_files=[{**media, "sites": sites}])
    both = _run(playbook)
    assert both.returncode != 0
    assert "files[3]: give sites or sites_from, not both" in both.stdout
    playbook = _play(tmp_path, sites)
    _edit(playbook, {}, more_files=[media])
    unpublished = _run(playbook)
    assert unpublished.returncode != 0
    assert ("files[3].sites_from: sitekit_media_dirs is not a variable of the preflight's "
            "model") in unpublished.stdout
    assert not list((tmp_path / "out").glob("*.media.txt"))


def test_a_file_its_validate_command_refuses_is_not_written(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    assert _run(playbook).returncode == 0
    _edit(playbook, {"greeting": "refused"}, {"validate": "grep -q hello %s"})
    refused = _run(playbook)
    assert refused.returncode != 0
    assert f"{tmp_path}/out/harbor/page.txt: grep -q hello" in refused.stdout
    assert "refused it" in refused.stdout
    assert (tmp_path / "out" / "harbor" / "page.txt").read_text() == "hello from harbor\n"
    assert not [p for p in (tmp_path / "out" / "harbor").iterdir() if p.name.startswith(".")]


# install: the call renders into a staging copy (a mirror of the live layout) and installs it
# only once a test accepts it, the way the nginx role stages, runs nginx -t, installs and
# reloads. The "test" accepts the staged copy unless it contains the word "broken"; the
# "reload" appends a line to a file, so a test can count the reloads.


def _install_play(tmp: Path, main: str, sites: dict[str, str]) -> Path:
    """A play rendering *main* as stage/main.conf and each site's text as stage/sites/NAME.conf,
    then installing the staged copy into live/."""
    stage, live = tmp / "stage", tmp / "live"
    (tmp / "templates").mkdir(exist_ok=True)
    (tmp / "templates" / "text.j2").write_text("{{ site.text }}\n")
    play = [
        {
            "name": "install",
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Stage the configuration and install it once it passes the test",
                    "sitekit.deploy.site_files": {
                        "sites": [{"name": n, "text": t} for n, t in sites.items()],
                        "files": [
                            {"name": "stage", "state": "directory", "sites": [{"name": "s"}],
                             "path_var": f"'{stage}'", "mode": "0755"},
                            {"name": "sites_dir", "state": "directory", "sites": [{"name": "s"}],
                             "path_var": f"'{stage}/sites'", "mode": "0755"},
                            {"name": "main", "template": "text.j2",
                             "sites": [{"name": "main", "text": main}],
                             "path_var": f"'{stage}/main.conf'", "mode": "0644"},
                            {"name": "site", "template": "text.j2",
                             "path_var": f"'{stage}/sites/' ~ site.name ~ '.conf'",
                             "mode": "0644"},
                        ],
                        "prune": [{"path": str(stage / "sites"), "patterns": ["*.conf"]}],
                        "install": {
                            "files": [
                                {"src": str(stage / "main.conf"), "dest": str(live / "main.conf")}
                            ],
                            "dirs": [
                                {
                                    "src": str(stage / "sites"),
                                    "dest": str(live / "sites"),
                                    "patterns": ["*.conf"],
                                }
                            ],
                            "test": ["sh", "-c", f"echo testing >&2; ! grep -r broken {stage}"],
                            "reload": ["sh", "-c", f"echo reloaded >> {tmp / 'reloads'}"],
                        },
                    },
                    "register": "installed",
                },
                {
                    "name": "Show what was installed",
                    "ansible.builtin.debug": {
                        "msg": "INSTALLED={{ installed | to_json | b64encode }}"
                    },
                },
            ],
        }
    ]
    path = tmp / "play.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _installed(output: str) -> dict:
    line = next(x for x in output.splitlines() if "INSTALLED=" in x)
    encoded = line.split("INSTALLED=", 1)[1].strip().strip("'\"")
    return json.loads(base64.b64decode(encoded))


def _live(tmp: Path) -> dict[str, str]:
    live = tmp / "live"
    return {str(p.relative_to(live)): p.read_text() for p in sorted(live.rglob("*")) if p.is_file()}


def _reloads(tmp: Path) -> int:
    path = tmp / "reloads"
    return len(path.read_text().splitlines()) if path.exists() else 0


GOOD_MAIN, GOOD_SITES = "main v1", {"a": "a v1", "b": "b v1"}
GOOD_LIVE = {"main.conf": "main v1\n", "sites/a.conf": "a v1\n", "sites/b.conf": "b v1\n"}


def _deployed(tmp: Path) -> Path:
    """A live directory with a file the install does not manage, then a first installation."""
    (tmp / "live" / "sites").mkdir(parents=True)
    (tmp / "live" / "sites" / "README").write_text("not managed\n")
    playbook = _install_play(tmp, GOOD_MAIN, GOOD_SITES)
    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    return playbook


def test_install_installs_what_passed_its_test_then_changes_nothing(tmp_path):
    playbook = _deployed(tmp_path)
    assert _live(tmp_path) == {**GOOD_LIVE, "sites/README": "not managed\n"}
    assert _reloads(tmp_path) == 1
    again = _run(playbook)
    assert again.returncode == 0
    assert _recap(again.stdout)["changed"] == 0
    result = _installed(again.stdout)
    assert (result["installed"], result["uninstalled"], result["reloaded"]) == ([], [], False)
    assert "test_output" not in result  # nothing differs: the test does not even run
    assert _reloads(tmp_path) == 1


def test_install_changes_and_removals_go_live_after_the_test(tmp_path):
    playbook = _deployed(tmp_path)
    live = tmp_path / "live"
    untouched = (live / "sites" / "a.conf").stat().st_ino
    playbook = _install_play(tmp_path, "main v2", {"a": "a v1", "c": "c"})
    run = _run(playbook)
    assert run.returncode == 0, run.stdout[-3000:]
    assert _live(tmp_path) == {
        "main.conf": "main v2\n",
        "sites/a.conf": "a v1\n",
        "sites/c.conf": "c\n",
        "sites/README": "not managed\n",  # does not match the patterns: left alone
    }
    assert (live / "sites" / "a.conf").stat().st_ino == untouched
    result = _installed(run.stdout)
    assert result["test_output"] == "testing"
    assert sorted(result["installed"]) == [f"{live}/main.conf", f"{live}/sites/c.conf"]
    assert result["uninstalled"] == [f"{live}/sites/b.conf"]
    assert result["reloaded"] is True
    assert _reloads(tmp_path) == 2


def test_install_puts_back_a_live_file_edited_by_hand_even_of_the_same_size(tmp_path):
    playbook = _deployed(tmp_path)
    live, stage = tmp_path / "live" / "sites" / "a.conf", tmp_path / "stage" / "sites" / "a.conf"
    # installed with the staged file's time: the next runs compare them by their metadata
    assert live.stat().st_mtime_ns == stage.stat().st_mtime_ns
    live.write_text("a v9\n")  # as long as "a v1\n"
    run = _run(playbook)
    assert run.returncode == 0, run.stdout[-3000:]
    assert _installed(run.stdout)["installed"] == [str(live)]
    assert live.read_text() == "a v1\n"
    assert _reloads(tmp_path) == 2
    again = _run(playbook)
    assert _recap(again.stdout)["changed"] == 0 and _reloads(tmp_path) == 2
    # the same bytes with a time of their own (installed before the times were kept): not a
    # change, and given the staged time
    os.utime(live, ns=(0, 0))
    kept = _run(playbook)
    assert _recap(kept.stdout)["changed"] == 0 and _reloads(tmp_path) == 2
    assert live.stat().st_mtime_ns == stage.stat().st_mtime_ns


def test_install_a_staged_copy_its_test_refuses_installs_nothing(tmp_path):
    _deployed(tmp_path)
    before = _live(tmp_path)
    refused = _run(_install_play(tmp_path, "main v2", {"a": "a broken"}))
    assert refused.returncode != 0
    assert "the new configuration failed its test" in refused.stdout
    assert "nothing was installed, the running configuration is unchanged" in refused.stdout
    assert "testing" in refused.stdout  # the test's own output is shown
    assert _live(tmp_path) == before  # not even the valid main.conf, nor b.conf's removal
    assert _reloads(tmp_path) == 1

    fixed = _run(_install_play(tmp_path, GOOD_MAIN, GOOD_SITES))  # the next run restages it
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert _recap(fixed.stdout)["changed"] == 0  # the live files are what it stages again
    assert _live(tmp_path) == before
    assert _reloads(tmp_path) == 1


def test_install_in_check_mode_stages_tests_and_installs_nothing(tmp_path):
    _deployed(tmp_path)
    before = _live(tmp_path)
    staged = {p: p.read_bytes() for p in (tmp_path / "stage").rglob("*") if p.is_file()}
    planned = _run(_install_play(tmp_path, "main v2", {"a": "a broken"}), "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert _recap(planned.stdout)["changed"] == 1
    result = _installed(planned.stdout)
    assert sorted(result["changed_files"]) == [
        f"{tmp_path}/stage/main.conf", f"{tmp_path}/stage/sites/a.conf"]
    assert result["removed_files"] == [f"{tmp_path}/stage/sites/b.conf"]
    assert "test_output" not in result
    assert (result["installed"], result["uninstalled"]) == ([], [])
    assert _live(tmp_path) == before
    assert {p: p.read_bytes() for p in (tmp_path / "stage").rglob("*") if p.is_file()} == staged
    assert _reloads(tmp_path) == 1


def test_variables_that_depend_on_the_site_are_rendered_for_each_site(tmp_path):
    """What the template names is resolved once per task only when it is the same for every
    site: a variable naming the site, even behind a default or through another variable, is
    still rendered for each."""
    playbook = _play(tmp_path, [{"name": "harbor", "title": "Harbor"}, {"name": "meadow"}])
    (tmp_path / "templates" / "page.j2").write_text(
        "{{ greeting }} from {{ label }} ({{ banner }}, {{ fixed }})\n")
    _edit(playbook, {"label": "{{ site.title | default('untitled') }}",
                     "banner": "{{ shout }}", "shout": "{{ site.name | upper }}",
                     "fixed": "{{ greeting | upper }}"})
    result = _run(playbook)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    assert (out / "harbor" / "page.txt").read_text() == "hello from Harbor (HARBOR, HELLO)\n"
    assert (out / "meadow" / "page.txt").read_text() == "hello from untitled (MEADOW, HELLO)\n"


def test_many_sites_render_as_ansible_renders_them_by_plain_jinja2_where_it_can(tmp_path):
    """Ansible renders the first, middle and last site and the first of each shape (the fields
    it has, which are empty); plain Jinja2 renders the others when it gives those the same
    bytes: through an extended template, Ansible's filters, a filter's list (never a generator
    object) in a branch no sampled site takes, a missing value and a trailing newline. A
    template naming a variable that depends on the site is rendered by Ansible for every site,
    with the same result."""
    names = [f"site{i}" for i in range(30)]
    sites = [{"name": n, "domains": [f"{n}.test", f"www.{n}.test"], "note": None,
              **({"title": n.upper()} if i % 2 else {})} for i, n in enumerate(names)]
    playbook = _play(tmp_path, sites)
    # paths as the roles give them: fixed variables and the site's own fields
    spec = yaml.safe_load(playbook.read_text())
    for entry, tail in zip(spec[0]["tasks"][1]["sitekit.deploy.site_files"]["files"],
                           ("", " ~ '/page.txt'", " ~ '/site.env'"), strict=True):
        entry["path_var"] = "out ~ '/' ~ site.name" + tail
    playbook.write_text(yaml.safe_dump(spec, sort_keys=False))
    templates = tmp_path / "templates"
    (templates / "base.j2").write_text(
        "# {{ greeting }}\n{% block body %}{% endblock %}\nnote=[{{ site.note }}]\n\n")
    (templates / "page.j2").write_text(
        '{% extends "base.j2" %}{% block body %}'
        "{{ site.domains | join(' ') }} {{ site.name | quote }} {{ site.name | to_json }}"
        "{% if site.title is defined %} {{ site.title | lower }}{% endif %}"
        "{% if site.name.endswith('7') %} {{ site.domains | map('upper') }}{% endif %}"
        "{% endblock %}")

    def page(i, n):
        # (trim_blocks takes the newline after a block tag; the base's last newline is not kept)
        upper = f" ['{n.upper()}.TEST', 'WWW.{n.upper()}.TEST']" if n.endswith("7") else ""
        return (f"# hello\n{n}.test www.{n}.test {n} \"{n}\"" + (f" {n}" if i % 2 else "")
                + upper + "note=[]\n")

    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    out = tmp_path / "out"
    assert {n: (out / n / "page.txt").read_text() for n in names} == {
        n: page(i, n) for i, n in enumerate(names)}
    assert {n: (out / n / "site.env").read_text() for n in names} == {
        n: f"KEY={SECRET}-{n}\n" for n in names}
    assert {_mode(out / n / "site.env") for n in names} == {0o600}
    rendered = json.loads(base64.b64decode(_output_of(first.stdout, "RENDERED=")))
    # 3 specs (directory, page, env) of 30 sites; Ansible renders sites 0 (no title), 1 (the
    # first with one), 15 and 29 of each: site7, site17 and site27 are plain Jinja2's
    assert rendered == {"ansible": 12, "jinja2": 78}
    again = _run(playbook)
    assert _recap(again.stdout)["changed"] == 0

    # a variable that depends on the site: Ansible renders every page
    _edit(playbook, {"label": "{{ site.title | default('untitled') }}"})
    (templates / "page.j2").write_text(
        "{{ greeting }} from {% if label is defined %}{{ label }}{% endif %}\n")
    per_site = _run(playbook)
    assert per_site.returncode == 0, per_site.stdout[-3000:]
    assert {n: (out / n / "page.txt").read_text() for n in names} == {
        n: f"hello from {n.upper() if i % 2 else 'untitled'}\n" for i, n in enumerate(names)}
    rendered = json.loads(base64.b64decode(_output_of(per_site.stdout, "RENDERED=")))
    assert rendered == {"ansible": 38, "jinja2": 52}


def test_sites_and_sites_from_are_one_or_the_other(tmp_path, sites):
    playbook = _play(tmp_path, sites)
    _edit(playbook, {}, sites_from="sitekit_present_sites")
    both = _run(playbook)
    assert both.returncode != 0
    assert "give sites or sites_from, not both" in both.stdout
    _edit(playbook, {}, sites=None)
    spec = yaml.safe_load(playbook.read_text())
    del spec[0]["tasks"][1]["sitekit.deploy.site_files"]["sites"]
    playbook.write_text(yaml.safe_dump(spec, sort_keys=False))
    unpublished = _run(playbook)
    assert unpublished.returncode != 0
    assert "sites_from: sitekit_present_sites is not a variable of the preflight's model" in (
        unpublished.stdout)
    assert not (tmp_path / "out" / "harbor").exists()


def _output_of(output: str, marker: str) -> str:
    line = next(x for x in output.splitlines() if marker in x)
    return line.split(marker, 1)[1].split()[0].strip("'\"")


def test_many_files_go_by_digest_and_only_what_differs_is_sent_and_written(tmp_path):
    """Past DIGESTS_FROM files the host is first sent each file's digest: a file it has is
    left alone, one that differs on the host (edited by hand) is sent and repaired, and check
    mode without diff says it would change without sending or writing anything."""
    names = [f"s{i:03d}" for i in range(210)]  # 630 files and directories
    playbook = _play(tmp_path, [{"name": n} for n in names])
    out = tmp_path / "out"

    first = _run(playbook)
    assert first.returncode == 0, first.stdout[-3000:]
    assert {(out / n / "page.txt").read_text() for n in names} == {
        f"hello from {n}\n" for n in names}
    assert (out / "s209" / "site.env").read_text() == f"KEY={SECRET}-s209\n"
    # no record yet: every page by digest, then whole (the host has none); a secret always
    # goes whole
    assert (_sent(first.stdout), _calls(first.stdout)) == (420, 2)
    again = _run(playbook)
    assert _recap(again.stdout)["changed"] == 0
    assert (_sent(again.stdout), _calls(again.stdout)) == (210, 1)  # the secrets alone

    edited = out / "s105" / "page.txt"
    edited.write_text("edited by hand\n")
    (out / "s007" / "page.txt").unlink()
    planned = _run(playbook, "--check")
    assert planned.returncode == 0, planned.stdout[-3000:]
    assert sorted(_changed_sites(planned.stdout)["page"]) == ["s007", "s105"]
    assert (_sent(planned.stdout), _calls(planned.stdout)) == (210, 1)  # no page's content
    assert edited.read_text() == "edited by hand\n"
    assert not (out / "s007" / "page.txt").exists()

    repaired = _run(playbook)
    assert repaired.returncode == 0, repaired.stdout[-3000:]
    assert sorted(_changed_sites(repaired.stdout)["page"]) == ["s007", "s105"]
    assert _changed_sites(repaired.stdout)["env"] == []
    assert edited.read_text() == "hello from s105\n"
    assert (out / "s007" / "page.txt").read_text() == "hello from s007\n"
    # the two went by digest first (the record has them), then whole in a second call
    assert (_sent(repaired.stdout), _calls(repaired.stdout)) == (212, 2)
    assert SECRET not in repaired.stdout


def test_files_changed_since_the_host_confirmed_them_go_whole_in_one_call(tmp_path):
    """The control machine records the digests of the files the host confirmed holding: what
    renders otherwise since is sent whole in the first (and only) call, the rest by digest;
    without a record (another control machine) everything goes by digest, and nothing changes."""
    names = [f"s{i:03d}" for i in range(210)]
    playbook = _play(tmp_path, [{"name": n} for n in names])
    out = tmp_path / "out"
    assert _run(playbook).returncode == 0

    _edit(playbook, {"greeting": "welcome"})
    planned = _run(playbook, "--check")  # check mode sends digests: what differs is all it says
    assert sorted(_changed_sites(planned.stdout)["page"]) == names
    assert (_sent(planned.stdout), _calls(planned.stdout)) == (210, 1)
    assert (out / "s104" / "page.txt").read_text() == "hello from s104\n"
    changed = _run(playbook)
    assert changed.returncode == 0, changed.stdout[-3000:]
    assert sorted(_changed_sites(changed.stdout)["page"]) == names
    assert (out / "s104" / "page.txt").read_text() == "welcome from s104\n"
    assert (_sent(changed.stdout), _calls(changed.stdout)) == (420, 1)

    records = list((tmp_path / "cache" / "site-files").iterdir())
    assert len(records) == 1
    records[0].write_text("not json")  # as good as none: every file by digest
    lost = _run(playbook)
    assert lost.returncode == 0, lost.stdout[-3000:]
    assert _recap(lost.stdout)["changed"] == 0
    assert (_sent(lost.stdout), _calls(lost.stdout)) == (210, 1)
    again = _run(playbook)
    assert (_sent(again.stdout), _calls(again.stdout)) == (210, 1)


def _calls(output: str) -> int:
    return int(_output_of(output, "CALLS="))


def _sent(output: str) -> int:
    return int(_output_of(output, "SENT="))
