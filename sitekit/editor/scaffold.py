"""The code of a new site, scaffolded from the template files in ``site_template/``.

The templates are modelled on harbor's files. Each ``*-tpl`` file is rendered with
:class:`string.Template`; ``site_name`` in its path becomes the site's name. The values:

* ``$name``: the site's name; ``$site_id``: its SITE_ID; ``$class_name``: its AppConfig class;
* ``$brand_literal``, ``$verbose_literal``: the brand and the app's verbose name as Python
  string literals; ``$brand_xml``, ``$initial``: the brand and its first letter, escaped for
  XML;
* ``$primary``, ``$accent``, ``$background``, ``$surface``, ``$text``: the colours of
  :func:`palette`.
"""

from __future__ import annotations

import ast
import colorsys
import hashlib
import html
import json
from importlib.resources import files
from pathlib import Path
from string import Template

from sitekit.runtime.rules import (
    RESERVED_NAMES,
    SITE_ID_MAX,
    claimed_site_id,
    parse_module,
    site_modules,
    valid_name,
)

#: The directory of the template files, beside this module.
SITE_TEMPLATE = "site_template"
#: The files of a new site (each from ``SITE_TEMPLATE/<path>-tpl``), in the order they are
#: listed to the user.
SITE_FILES = (
    "settings/site_name.py",
    "project/sites/site_name/__init__.py",
    "project/sites/site_name/apps.py",
    "project/sites/site_name/urls.py",
    "project/sites/site_name/jinja2/site_name/base.html",
    "project/sites/site_name/static/site_name/site.css",
    "project/sites/site_name/static/site_name/logo.svg",
)


def default_brand(name: str) -> str:
    """``meadow`` -> ``Meadow``, ``north_shore`` -> ``North Shore``."""
    return " ".join(word.capitalize() for word in name.split("_") if word)


def next_site_id(project_root: Path) -> int | None:
    """One more than the highest SITE_ID of any site's settings module; None when that is more
    than :data:`~sitekit.runtime.rules.SITE_ID_MAX`.

    Gaps are not reused: a SITE_ID whose module was deleted may still own rows in the database.
    A module that cannot be parsed still owns the SITE_ID its text sets; one that sets no
    usable SITE_ID owns none (see :func:`~sitekit.runtime.rules.claimed_site_id`).
    """
    ids = [0]
    for path in site_modules(project_root / "settings"):
        site_id = claimed_site_id(path)
        if site_id is not None:
            ids.append(site_id)
    return max(ids) + 1 if max(ids) < SITE_ID_MAX else None


def palette(name: str) -> dict[str, str]:
    """Brand colours derived from the site name: a dark primary, a contrasting accent."""
    hue = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 360 / 360

    def colour(h: float, lightness: float, saturation: float) -> str:
        r, g, b = colorsys.hls_to_rgb(h % 1.0, lightness, saturation)
        return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"

    return {
        "primary": colour(hue, 0.30, 0.55),
        "accent": colour(hue + 0.45, 0.55, 0.70),
        "background": colour(hue, 0.96, 0.35),
        "surface": "#ffffff",
        "text": colour(hue, 0.16, 0.45),
    }


def scaffold(name: str, brand: str, site_id: int) -> dict[str, str]:
    """The files of a new site, relative to the checkout: path -> content."""
    initial = next((ch for ch in brand if ch.isalnum()), name[0]).upper()
    values = {
        "name": name,
        "site_id": site_id,
        "class_name": "".join(word.capitalize() for word in name.split("_") if word) + "Config",
        # A JSON string is a valid Python string literal.
        "brand_literal": json.dumps(brand, ensure_ascii=False),
        "verbose_literal": json.dumps(f"{brand} site", ensure_ascii=False),
        "brand_xml": html.escape(brand),
        "initial": html.escape(initial),
        **palette(name),
    }
    templates = files(__package__) / SITE_TEMPLATE
    site: dict[str, str] = {}
    for rel in SITE_FILES:
        text = (templates / f"{rel}-tpl").read_text(encoding="utf-8")
        site[rel.replace("site_name", name)] = Template(text).substitute(values)
    return site


def brand_of(path: Path) -> str | None:
    """SITEKIT_BRAND['name'] of a settings module, read without importing it (None when the
    module cannot be parsed or sets no literal brand)."""
    tree, _ = parse_module(path)
    if tree is None:
        return None
    for node in reversed(tree.body):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "SITEKIT_BRAND" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            name = value.get("name") if isinstance(value, dict) else None
            return name if isinstance(name, str) else None
    return None


def unlisted_code(project_root: Path, listed: set[str]) -> dict[str, list[str]]:
    """The sites whose code is in the codebase but whose name is not in ``listed`` (the names
    of every environment's catalogue): name -> its settings module and package, as paths
    relative to the checkout (a package ends with '/'). What an interrupted ``sitekit site
    add`` leaves looks like this."""
    found: dict[str, list[str]] = {}
    for path in site_modules(project_root / "settings"):
        found.setdefault(path.stem, []).append(f"settings/{path.name}")
    sites = project_root / "project" / "sites"
    for path in sorted(sites.iterdir()) if sites.is_dir() else []:
        if path.is_dir() and valid_name(path.name) and path.name not in RESERVED_NAMES:
            found.setdefault(path.name, []).append(f"project/sites/{path.name}/")
    return {name: paths for name, paths in sorted(found.items()) if name not in listed}


def package_is_scaffold(package: Path, files: dict[str, str]) -> bool:
    """Whether the directory ``package`` (``project/sites/<name>``) holds exactly the files
    of ``files`` (a new site's files, relative to the checkout) that belong in it, with their
    content, and nothing else but Python's caches: what an interrupted ``sitekit site add``
    of the same site and brand left."""
    prefix = package.relative_to(package.parents[2]).as_posix() + "/"
    expected = {rel[len(prefix) :]: text for rel, text in files.items() if rel.startswith(prefix)}
    found: dict[str, str] = {}
    try:
        for path in package.rglob("*"):
            rel = path.relative_to(package)
            if "__pycache__" in rel.parts or path.is_dir():
                continue
            found[rel.as_posix()] = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return found == expected
