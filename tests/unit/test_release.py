"""Releases: a content-addressed id and a reproducible archive."""

import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from sitekit import release
from sitekit.cli import main


@pytest.fixture
def tree(tmp_path):
    """A minimal release tree, plus files that are not part of a release."""
    root = tmp_path / "tree"
    files = {
        "manage.py": "#!/usr/bin/env python\nprint('manage')\n",
        "requirements.txt": "Django==5.0\n",
        "project/__init__.py": "",
        "project/core/views.py": "def home():\n    return 'home'\n",
        "settings/__init__.py": "",
        "settings/harbor.py": "SITE_ID = 1\n",
        "sitekit/__init__.py": "",
        # not shipped
        "README.md": "readme\n",
        "tests/test_x.py": "def test(): pass\n",
        "inventories/local/hosts.yml": "all: {}\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "manage.py").chmod(0o755)
    (root / "project/core/views.py").chmod(0o644)
    return root


SHIPPED = [
    "manage.py",
    "project/__init__.py",
    "project/core/views.py",
    "requirements.txt",
    "settings/__init__.py",
    "settings/harbor.py",
    "sitekit/__init__.py",
]


# --- release id ----------------------------------------------------------------------------


def test_release_files_are_the_shipped_paths_in_order(tree):
    assert [p.as_posix() for p in release.release_files(tree)] == SHIPPED


def test_release_id_is_stable_for_the_same_tree(tree, tmp_path):
    rid = release.release_id(tree)
    assert len(rid) == 12
    assert int(rid, 16) >= 0  # hex digits
    assert release.release_id(tree) == rid
    copy = tmp_path / "elsewhere"
    shutil.copytree(tree, copy)
    assert release.release_id(copy) == rid  # the location does not matter
    os.utime(copy / "settings/harbor.py", (1, 1))
    assert release.release_id(copy) == rid  # nor do timestamps


def test_release_id_changes_with_content_and_comes_back(tree):
    rid = release.release_id(tree)
    views = tree / "project/core/views.py"
    original = views.read_text()
    views.write_text(original + "# changed\n")
    changed = release.release_id(tree)
    assert changed != rid
    views.write_text(original)
    assert release.release_id(tree) == rid


def test_release_id_changes_with_the_executable_bit(tree):
    rid = release.release_id(tree)
    views = tree / "project/core/views.py"
    views.chmod(0o755)
    assert release.release_id(tree) != rid
    views.chmod(0o644)
    assert release.release_id(tree) == rid


def test_release_id_changes_when_a_file_is_added_renamed_or_removed(tree):
    rid = release.release_id(tree)
    extra = tree / "project/core/extra.py"
    extra.write_text("")
    with_extra = release.release_id(tree)
    assert with_extra != rid
    extra.rename(tree / "project/core/other.py")
    assert release.release_id(tree) not in (rid, with_extra)
    (tree / "project/core/other.py").unlink()
    assert release.release_id(tree) == rid


def test_release_id_ignores_caches_and_files_outside_the_release(tree):
    rid = release.release_id(tree)
    cache = tree / "project/core/__pycache__"
    cache.mkdir()
    (cache / "views.cpython-311.pyc").write_bytes(b"\x00compiled")
    (tree / "sitekit/stray.pyc").write_bytes(b"\x00compiled")
    (tree / "settings/harbor.py~").write_text("backup")
    (tree / "project/.pytest_cache").mkdir()
    (tree / "project/.pytest_cache/x").write_text("x")
    (tree / "README.md").write_text("changed\n")
    (tree / "tests/test_x.py").write_text("changed\n")
    assert release.release_id(tree) == rid
    assert [p.as_posix() for p in release.release_files(tree)] == SHIPPED


@pytest.mark.parametrize("missing", ["manage.py", "requirements.txt", "settings", "sitekit"])
def test_release_needs_every_shipped_path(tree, missing):
    path = tree / missing
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    with pytest.raises(release.ReleaseError, match=f"{missing} is missing: a release needs"):
        release.release_id(tree)


# --- archive -------------------------------------------------------------------------------


def test_archive_is_byte_for_byte_reproducible(tree, tmp_path):
    rid = release.release_id(tree)
    first = tmp_path / "one" / f"{rid}.tar.gz"
    second = tmp_path / "two" / f"{rid}.tar.gz"
    first.parent.mkdir()
    second.parent.mkdir()
    release.write_archive(tree, first, rid)
    # a later build of the same content: other timestamps, a fresh bytecode cache
    for path in tree.rglob("*"):
        os.utime(path, (2_000_000_000, 2_000_000_000))
    (tree / "sitekit/__pycache__").mkdir()
    (tree / "sitekit/__pycache__/x.pyc").write_bytes(b"x")
    release.write_archive(tree, second, rid)
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.rglob("*.partial"))


def test_archive_bytes_do_not_depend_on_the_file_name(tree, tmp_path):
    rid = release.release_id(tree)
    release.write_archive(tree, tmp_path / f"{rid}.tar.gz", rid)
    release.write_archive(tree, tmp_path / "renamed.tar.gz", rid)
    data = (tmp_path / f"{rid}.tar.gz").read_bytes()
    assert data == (tmp_path / "renamed.tar.gz").read_bytes()
    assert b".partial" not in data


def test_archive_holds_the_release_and_its_id(tree, tmp_path):
    rid = release.release_id(tree)
    archive = tmp_path / f"{rid}.tar.gz"
    release.write_archive(tree, archive, rid)
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == sorted([*SHIPPED, "RELEASE"])
        assert tar.extractfile("RELEASE").read() == f"{rid}\n".encode()
        assert tar.extractfile("settings/harbor.py").read() == b"SITE_ID = 1\n"
        assert stat.S_IMODE(members["manage.py"].mode) == 0o755
        assert stat.S_IMODE(members["project/core/views.py"].mode) == 0o644
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members.values()} == {
            (0, 0, 0, "", "")
        }


# --- build with a wheelhouse (a fake interpreter stands in for pip) ------------------------


@pytest.fixture
def fake_python(tmp_path):
    """An executable that records its arguments and writes a wheel where pip would."""
    log = tmp_path / "fake-python.log"
    script = tmp_path / "fake-python"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            if [ "$1" = "-c" ]; then echo "${{FAKE_TARGET:-cpython-311-linux-x86_64}}"; exit 0; fi
            echo "$@" >> "{log}"
            if [ -n "$FAKE_PIP_FAIL" ]; then echo "pip: no network" >&2; exit 1; fi
            while [ $# -gt 0 ]; do
              if [ "$1" = "--wheel-dir" ]; then dir="$2"; fi
              shift
            done
            touch "$dir/django-5.0-py3-none-any.whl" "$dir/pip-26.3-py3-none-any.whl"
            """
        )
    )
    script.chmod(0o755)
    return SimpleNamespace(path=str(script), log=log)


def calls(fake_python):
    return fake_python.log.read_text().splitlines() if fake_python.log.exists() else []


def test_build_writes_archive_and_wheelhouse_once(tree, tmp_path, fake_python):
    out = tmp_path / "build"
    built = release.build(tree, out, python=fake_python.path)
    rid = release.release_id(tree)
    assert built.release_id == rid
    assert built.archive == out / f"{rid}.tar.gz"
    assert built.archive.is_file()
    assert built.changed is True
    wheelhouse = built.wheelhouse
    assert (wheelhouse / "django-5.0-py3-none-any.whl").is_file()
    assert (wheelhouse / "requirements.txt").read_text() == "Django==5.0\n"
    assert len(calls(fake_python)) == 1
    assert "-m pip wheel" in calls(fake_python)[0]
    # and the installer a host runs from the wheelhouse, into a virtualenv without pip
    assert calls(fake_python)[0].endswith(f" {release.INSTALLER}")
    assert built.as_dict()["installer"] == "pip-26.3-py3-none-any.whl"

    again = release.build(tree, out, python=fake_python.path)
    assert again.changed is False
    assert (again.archive, again.wheelhouse) == (built.archive, built.wheelhouse)
    assert len(calls(fake_python)) == 1  # nothing fetched again


def test_the_wheelhouse_ships_as_one_tar_that_unpacks_to_it_marker_last(tree, tmp_path,
                                                                         fake_python):
    built = release.build(tree, tmp_path / "build", python=fake_python.path)
    tar_path = built.wheelhouse_archive
    assert tar_path == built.wheelhouse.parent / f"{built.wheelhouse.name}.tar"
    assert built.as_dict()["wheelhouse_archive"] == str(tar_path)
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
        # a host that finds the marker has the whole of it: the marker is unpacked last
        assert [m.name for m in members] == [built.wheelhouse.name] + [
            f"{built.wheelhouse.name}/{name}" for name in
            ("django-5.0-py3-none-any.whl", "pip-26.3-py3-none-any.whl", "requirements.txt",
             ".complete")]
        tar.extractall(tmp_path / "host")
    shipped = tmp_path / "host" / built.wheelhouse.name
    assert sorted(p.name for p in shipped.iterdir()) == sorted(
        p.name for p in built.wheelhouse.iterdir())
    for path in built.wheelhouse.iterdir():
        assert (shipped / path.name).read_bytes() == path.read_bytes()
    # written once; a wheelhouse built before the tar existed gets one
    stamp = tar_path.stat().st_mtime_ns
    assert release.build(tree, tmp_path / "build", python=fake_python.path).changed is False
    assert tar_path.stat().st_mtime_ns == stamp
    tar_path.unlink()
    assert release.build(tree, tmp_path / "build", python=fake_python.path).changed is True
    assert tar_path.is_file()
    # a wheelhouse built again gets a new tar, never the old one
    shutil.rmtree(built.wheelhouse)
    tar_path.write_bytes(b"stale")
    assert release.build(tree, tmp_path / "build", python=fake_python.path).changed is True
    with tarfile.open(tar_path) as tar:
        assert tar.getnames()[-1] == f"{built.wheelhouse.name}/.complete"


def test_a_wheelhouse_without_the_installer_is_refused_and_built_again(tree, tmp_path,
                                                                        fake_python):
    script = Path(fake_python.path)
    script.write_text(script.read_text().replace(' "$dir/pip-26.3-py3-none-any.whl"', ""))
    with pytest.raises(release.ReleaseError, match=r"left no pip==26\.3 wheel"):
        release.build(tree, tmp_path / "build", python=fake_python.path)
    # nothing is marked complete: once pip leaves the installer, the wheelhouse is built
    script.write_text(script.read_text().replace(
        '"$dir/django-5.0-py3-none-any.whl"',
        '"$dir/django-5.0-py3-none-any.whl" "$dir/pip-26.3-py3-none-any.whl"'))
    built = release.build(tree, tmp_path / "build", python=fake_python.path)
    assert built.as_dict()["installer"] == "pip-26.3-py3-none-any.whl"
    assert (built.wheelhouse / ".complete").is_file() and len(calls(fake_python)) == 2


def test_the_wheelhouse_is_for_the_building_interpreter_and_platform(tree, tmp_path,
                                                                     fake_python, monkeypatch):
    out = tmp_path / "build"
    built = release.build(tree, out, python=fake_python.path)
    assert built.as_dict()["python_target"] == "cpython-311-linux-x86_64"
    # what each host's release_python prints with the same code, checked before installing
    code = built.as_dict()["python_target_code"]
    here = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert here == f"{sys.implementation.cache_tag}-{sysconfig.get_platform()}"
    # another interpreter or platform gets a wheelhouse of its own, never the other's
    monkeypatch.setenv("FAKE_TARGET", "cpython-312-macosx-14.0-arm64")
    other = release.build(tree, out, python=fake_python.path)
    assert other.python_target == "cpython-312-macosx-14.0-arm64"
    assert other.wheelhouse != built.wheelhouse and other.changed is True
    assert len(calls(fake_python)) == 2
    monkeypatch.setenv("FAKE_TARGET", "")
    script = Path(fake_python.path)
    script.write_text(script.read_text().replace('then echo', 'then exit 3; echo'))
    with pytest.raises(release.ReleaseError, match=r"cannot run .* to learn what it builds"):
        release.build(tree, out, python=fake_python.path)
    with pytest.raises(release.ReleaseError, match=r"cannot run /nonexistent/python3 to learn "
                       "what it builds wheels for: No such file or directory"):
        release.build(tree, out, python="/nonexistent/python3")


def test_code_change_makes_a_new_archive_but_reuses_the_wheelhouse(tree, tmp_path, fake_python):
    out = tmp_path / "build"
    first = release.build(tree, out, python=fake_python.path)
    (tree / "project/core/views.py").write_text("changed\n")
    second = release.build(tree, out, python=fake_python.path)
    assert second.release_id != first.release_id
    assert second.changed is True
    assert second.wheelhouse == first.wheelhouse
    assert len(calls(fake_python)) == 1
    assert first.archive.is_file() and second.archive.is_file()


def test_requirements_change_makes_a_new_wheelhouse(tree, tmp_path, fake_python):
    out = tmp_path / "build"
    first = release.build(tree, out, python=fake_python.path)
    (tree / "requirements.txt").write_text("Django==5.1\n")
    second = release.build(tree, out, python=fake_python.path)
    assert second.wheelhouse != first.wheelhouse
    assert len(calls(fake_python)) == 2


def test_failed_wheelhouse_says_why_and_is_retried(tree, tmp_path, fake_python, monkeypatch):
    out = tmp_path / "build"
    monkeypatch.setenv("FAKE_PIP_FAIL", "1")
    with pytest.raises(release.ReleaseError, match="building the wheelhouse failed") as caught:
        release.build(tree, out, python=fake_python.path)
    assert "pip: no network" in str(caught.value)
    monkeypatch.delenv("FAKE_PIP_FAIL")
    built = release.build(tree, out, python=fake_python.path)
    assert (built.wheelhouse / ".complete").is_file()
    assert len(calls(fake_python)) == 2


def test_cli_release_id_and_build(tree, tmp_path, fake_python, capsys):
    # the CLI finds a checkout by its inventories/ and settings/
    project = ["--project", str(tree)]
    assert main([*project, "release", "id"]) == 0
    rid = release.release_id(tree)
    assert capsys.readouterr().out == f"{rid}\n"

    out = tmp_path / "build"
    args = [*project, "release", "build", "--out", str(out), "--python", fake_python.path]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["release_id"] == rid
    assert data["archive"] == str(out / f"{rid}.tar.gz")
    assert data["changed"] is True

    assert main(args) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"release {rid} already built: {out / f'{rid}.tar.gz'}\n")
    assert "wheelhouse: " in text


def test_cli_release_build_failure_exits_one(tree, tmp_path, fake_python, capsys, monkeypatch):
    monkeypatch.setenv("FAKE_PIP_FAIL", "1")
    args = ["--project", str(tree), "release", "build", "--out", str(tmp_path / "b")]
    assert main([*args, "--python", fake_python.path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sitekit: building the wheelhouse failed")
    assert "pip: no network" in err
