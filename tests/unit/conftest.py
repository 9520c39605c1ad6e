"""Fixtures for the unit tests of the sitekit package and the Ansible filter plugin."""

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path):
    """A throwaway sitekit checkout: the real ``settings/`` and an empty ``inventories/``.

    ``project.env("bad", sites_yaml, main_yaml=None)`` writes an environment's inventory
    and returns the project root.
    """
    root = tmp_path / "checkout"
    root.mkdir()
    shutil.copytree(REPO / "settings", root / "settings")
    (root / "inventories").mkdir()

    class Project:
        path = root

        def env(self, name, sites_yaml, main_yaml=None):
            group_vars = root / "inventories" / name / "group_vars" / "all"
            group_vars.mkdir(parents=True, exist_ok=True)
            (group_vars / "sites.yml").write_text(textwrap.dedent(sites_yaml))
            if main_yaml is not None:
                (group_vars / "main.yml").write_text(textwrap.dedent(main_yaml))
            return root

    return Project()


@pytest.fixture
def copy_checkout(tmp_path):
    """``copy_checkout(*envs)``: a copy of what the editing commands read and write (manage.py,
    settings/, project/ and the inventories of ``envs``) under tmp_path; returns its root."""

    def copy(*envs):
        root = tmp_path / "checkout"
        root.mkdir()
        shutil.copy2(REPO / "manage.py", root / "manage.py")
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in ("settings", "project"):
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        for env in envs:
            shutil.copytree(REPO / "inventories" / env, root / "inventories" / env)
        return root

    return copy
