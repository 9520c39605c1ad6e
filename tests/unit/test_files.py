"""sitekit.runtime.files: a file is replaced whole or not at all."""

import os
import stat

import pytest

from sitekit.runtime.files import create_directory, replacing, write_atomic


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    path.chmod(0o640)
    write_atomic(path, "new\n")
    assert path.read_text() == "new\n"
    assert mode(path) == 0o640
    write_atomic(path, b"bytes\n", 0o600)
    assert path.read_bytes() == b"bytes\n"
    assert mode(path) == 0o600
    assert os.listdir(tmp_path) == ["a.txt"]


def test_a_new_file_gets_the_mode_of_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert mode(tmp_path / "new.txt") == 0o640


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), replacing(path) as handle:
        handle.write(b"half")
        raise RuntimeError("stop")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_create_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "site"
    create_directory(target, {"a.txt": "a", "sub/b.txt": "b"}, staging=tmp_path)
    assert (target / "sub" / "b.txt").read_text() == "b"
    assert sorted(os.listdir(tmp_path)) == ["site"]
    taken = tmp_path / "taken"
    (taken / "x").mkdir(parents=True)  # a directory that is not empty cannot be replaced
    with pytest.raises(OSError):
        create_directory(taken, {"a.txt": "a"}, staging=tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["site", "taken"]
    assert os.listdir(taken) == ["x"]
