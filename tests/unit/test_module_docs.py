"""Every module of the sitekit.deploy collection documents itself in YAML that parses, as
``ansible-doc`` reads it (a ``word: word`` inside a plain line is a mapping, and fails)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

MODULES = (Path(__file__).resolve().parents[2] / "ansible" / "collections" / "ansible_collections"
           / "sitekit" / "deploy" / "plugins" / "modules")


def _block(text: str, name: str) -> str | None:
    marker = f'{name} = r"""'
    if marker not in text:
        return None
    return text.split(marker, 1)[1].split('"""', 1)[0]


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.py")), ids=lambda p: p.stem)
def test_module_documentation_parses(path):
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(_block(text, "DOCUMENTATION"))
    assert doc["module"] == path.stem
    assert doc["short_description"] and doc["description"]
    for name in ("RETURN", "EXAMPLES"):
        block = _block(text, name)
        if block is not None:
            yaml.safe_load(block)
