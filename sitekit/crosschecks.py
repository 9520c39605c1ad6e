"""The checks of a catalogue that look beyond its own entries: the file it was read from (the
reader's flaws, located), the codebase's settings modules (SITE_IDs shared with a module of
another site) and the other environments' catalogues (a domain belongs to one environment).
:func:`sitekit.catalogue.validate` runs them with its own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sitekit.echo import shown
from sitekit.loader import Loaded
from sitekit.problems import SITES_VAR, Problem, site_label
from sitekit.runtime.rules import claimed_site_id, site_modules


def site_id_problems(env: str, root: Path, site_ids: list[tuple[str, int]]) -> list[Problem]:
    """SITE_IDs that two settings modules share, where one is a site of this catalogue.

    ``site_ids`` are the catalogue's sites and their SITE_IDs; every other site module in
    ``root/settings`` counts with the SITE_ID it claims (even when it cannot be parsed: see
    :func:`~sitekit.runtime.rules.claimed_site_id`). One problem per shared SITE_ID, on the
    last of the catalogue's sites that has it, naming every module that sets it.
    """
    listed = dict(site_ids)
    claimed: dict[str, int] = {}
    for path in site_modules(root / "settings"):
        if path.stem not in listed:
            site_id = claimed_site_id(path)
            if site_id is not None:
                claimed[path.stem] = site_id
    free = max([0, *listed.values(), *claimed.values()]) + 1
    problems = []
    holders: dict[int, list[str]] = {}
    for name, site_id in site_ids:
        holders.setdefault(site_id, []).append(name)
    claimants: dict[int, list[str]] = {}
    for name, site_id in claimed.items():
        claimants.setdefault(site_id, []).append(name)
    for site_id, listed_names in holders.items():
        names = list(dict.fromkeys(listed_names)) + sorted(claimants.get(site_id, ()))
        if len(names) < 2:
            continue
        modules = [f"settings/{name}.py" for name in names]
        both = "both" if len(modules) == 2 else "all"
        problems.append(
            Problem(
                env,
                [n for n in names if n in listed][-1],
                "name",
                f"{', '.join(modules[:-1])} and {modules[-1]} {both} set SITE_ID {site_id}: "
                "each site needs its own row in the Sites table (give all but one of them a "
                f"new SITE_ID; the next free one is {free})",
            )
        )
    return problems


def _configured_domains(raw: Any) -> list[tuple[int, Any, str, str]]:
    """(index, entry, state, domain) of each domain string of a raw catalogue, once per site."""
    found = []
    for index, entry in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(entry, dict) or not isinstance(entry.get("domains"), list):
            continue
        state = entry.get("state", "present")
        seen: set[str] = set()
        for domain in entry["domains"]:
            if isinstance(domain, str) and domain not in seen:
                seen.add(domain)
                found.append((index, entry, state, domain))
    return found


@dataclass(frozen=True)
class Unreadable:
    """In ``others`` (of :func:`validate`): a neighbouring environment whose catalogue cannot be
    read. Its domains cannot be compared; the result warns that they were not (checking that
    environment says why)."""


def cross_environment_problems(env: str, raw: Any, others: Mapping[str, Any]) -> list[Problem]:
    """Domains of ``env``'s catalogue ``raw`` that another environment's catalogue also lists.

    ``others`` maps the names of the other environments to their raw catalogues (or
    :class:`Unreadable`, whose domains are not compared). DNS points a
    name at one environment, so a domain in two environments' catalogues is always a mistake
    in one of them (a production domain pasted into staging would put production's name into
    staging's Sites table). Sites of every state count, as within one environment; wildcards
    count by their exact string.
    """
    elsewhere: dict[str, list[tuple[str, str, str]]] = {}
    for other in sorted(others):
        for index, entry, state, domain in _configured_domains(others[other]):
            elsewhere.setdefault(domain, []).append((other, site_label(entry, index), state))
    problems = []
    for index, entry, _state, domain in _configured_domains(raw):
        if domain not in elsewhere:
            continue
        places = [
            f"{shown(other)} (site {shown(site)}{', absent' if state == 'absent' else ''})"
            for other, site, state in elsewhere[domain]
        ]
        noun = "environment" if len(places) == 1 else "environments"
        problems.append(
            Problem(
                env,
                site_label(entry, index),
                "domains",
                f"{shown(domain)} is already configured in {noun} {', '.join(places)}; "
                "a domain belongs to one environment only",
            )
        )
    return problems


def file_problems(env: str, loaded: Loaded, label: str) -> list[Problem]:
    """What keeps a YAML file of an environment from being read (the loader's flaws,
    :mod:`sitekit.loader`), as problems: a flaw in a site of a catalogue names the site and
    the field, any other the field (the keys that lead to it), and each its line of ``label``
    (the file as shown to the user)."""
    partial = loaded.partial
    entries = partial.get(SITES_VAR) if isinstance(partial, dict) else None
    problems = []
    for flaw in loaded.flaws:
        path, site = flaw.path, ""
        if not path:
            problems.append(Problem(env, "", "", f"{label} {flaw.message}"))
            continue
        if len(path) > 1 and path[0] == SITES_VAR and isinstance(path[1], int):
            index = path[1]
            entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
            site, path = site_label(entry, index), path[2:]
        problems.append(
            Problem(env, site, _field_of(path), f"{flaw.message} (line {flaw.line} of {label})")
        )
    return problems


def _field_of(path: tuple[str | int, ...]) -> str:
    """A path of keys and list positions as a field: ``domains[2]``, ``sitekit_pools.shared``."""
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else f".{step}" if text else step
    return text
