"""The edits: ``sitekit domain add|remove`` and ``sitekit site add|remove|move``.

Each reads the catalogue file (and, for a new site, the codebase) and returns a
:class:`~sitekit.editor.change.Change`; nothing is written until
:func:`sitekit.editor.write.apply`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sitekit.catalogue import RESOURCE_FIELDS, Problem
from sitekit.echo import shown
from sitekit.editor.change import DEPLOY_HINT, Change, Source, refused, subject
from sitekit.editor.checks import (
    check_brand,
    check_name,
    domain_owners,
    find_entry,
    finish,
    normalise_domains,
    one_entry,
    ownership_problems,
)
from sitekit.editor.document import load
from sitekit.editor.scaffold import (
    brand_of,
    default_brand,
    next_site_id,
    package_is_scaffold,
    scaffold,
)
from sitekit.runtime.rules import SITE_ID_MAX

# --- sitekit domain add / remove ---------------------------------------------------------


def add_domains(source: Source, site: str, given: Sequence[str]) -> Change:
    """Append ``given`` (as typed; normalised here) to ``site``'s domains."""
    env = source.env
    domains, notes, problems = normalise_domains(env, site, given, "add")
    doc, index, found = find_entry(
        source, site, f"add a site with: sitekit site add {env} {site} DOMAIN..."
    )
    if doc is None:
        return refused(source, notes, found)
    if index is None:
        return refused(source, notes, found + problems)
    entry = doc.expected[index]
    if entry.get("state", "present") == "absent":
        problems.insert(
            0,
            Problem(
                env,
                site,
                "state",
                f"site is absent; re-add it with `sitekit site add {env} {site}` "
                "(it keeps its domains), then add domains",
            ),
        )
        return refused(source, notes, problems)
    current = entry.get("domains") if isinstance(entry.get("domains"), list) else []
    new = [d for d in domains if d not in current]
    problems += ownership_problems(env, site, new, doc.expected, index)
    if problems:
        return refused(source, notes, problems)
    for domain in domains:
        if domain in current:
            notes.append(f"{subject(env, site)}: '{domain}' is already one of its domains")
    if not new:
        return Change(source, source.text, notes)
    for domain in new:
        doc.append_domain(index, domain)
    summary = [
        f"{subject(env, site)}: added {', '.join(new)}",
        f"the next deploy of {env} serves {'them' if len(new) > 1 else 'it'} "
        f"({DEPLOY_HINT.format(env=env)})",
    ]
    return finish(doc, notes, summary)


def remove_domains(source: Source, site: str, given: Sequence[str]) -> Change:
    """Remove ``given`` (as typed; normalised here) from ``site``'s domains."""
    env = source.env
    domains, notes, problems = normalise_domains(env, site, given, "remove")
    doc, index, found = find_entry(source, site, "nothing to remove")
    if doc is None:
        return refused(source, notes, found)
    if index is None:
        return refused(source, notes, found + problems)
    entry = doc.expected[index]
    current = list(entry.get("domains")) if isinstance(entry.get("domains"), list) else []
    owners = domain_owners(doc.expected, index)
    for domain in domains:
        if domain in current:
            continue
        if domain in owners:
            where = f"it belongs to site '{owners[domain][0]}'"
        else:
            close = difflib.get_close_matches(domain, current, n=1)
            where = f"did you mean '{close[0]}'? " if close else ""
            where += f"its domains: {', '.join(current) or 'none'}"
        problems.append(
            Problem(env, site, "domains", f"'{domain}' is not one of this site's domains ({where})")
        )
    present = entry.get("state", "present") == "present"
    remaining = [d for d in current if d not in domains]
    if present and not remaining and not problems:
        problems.append(
            Problem(
                env,
                site,
                "domains",
                "cannot remove the last domain of a present site (a site needs at least one; "
                f"the first is its canonical domain); to take the site down use: "
                f"sitekit site remove {env} {site}",
            )
        )
    if problems:
        return refused(source, notes, problems)
    for domain in domains:
        doc.remove_domain(index, doc.expected[index]["domains"].index(domain))
    summary = [f"{subject(env, site)}: removed {', '.join(domains)}"]
    if current and remaining and current[0] != remaining[0]:
        summary.append(
            f"{subject(env, site)}: '{remaining[0]}' is now its canonical domain (the first; "
            "the next deploy writes it to the Sites table)"
        )
    if present:
        summary.append(
            f"the next deploy of {env} stops serving "
            f"{'them' if len(domains) > 1 else 'it'} ({DEPLOY_HINT.format(env=env)})"
        )
    return finish(doc, notes, summary)



# --- sitekit site add / remove / move ----------------------------------------------------


def add_site(
    source: Source,
    name: str,
    given: Sequence[str],
    *,
    workers: int | None = None,
    brand: str | None = None,
) -> Change:
    """Add ``name`` to the catalogue (or bring an absent entry back), scaffolding its code when
    the codebase has no ``settings/<name>.py``."""
    env, root = source.env, source.project_root
    problems = check_name(env, name)
    if problems:
        return refused(source, [], problems)
    if brand is not None:
        problems += check_brand(env, name, brand)
        brand = brand.strip()
    domains, notes, domain_problems = normalise_domains(env, name, given, "add")
    problems += domain_problems
    doc, load_problems = load(source, name)
    if doc is None:
        return refused(source, notes, load_problems + problems)

    found = doc.entries(name)
    if len(found) > 1:
        _, more = one_entry(doc, env, name, "")
        return refused(source, notes, more + problems)
    index = found[0] if found else None
    entry = doc.expected[index] if index is not None else None
    current: list[str] = []
    if entry is not None and isinstance(entry.get("domains"), list):
        current = list(entry["domains"])
    if entry is not None and entry.get("state", "present") == "present":
        same_workers = workers is None or workers == entry.get(
            "workers", RESOURCE_FIELDS["workers"].default
        )
        if same_workers and not problems and all(d in current for d in domains):
            notes.append(f"{subject(env, name)}: already present with these domains")
            return Change(source, source.text, notes)
        problems.append(
            Problem(
                env,
                name,
                "name",
                f"site is already present in {env}; add domains with: "
                f"sitekit domain add {env} {name} DOMAIN... (other fields are edited in "
                f"{source.label})",
            )
        )
        return refused(source, notes, problems)

    final = current + [d for d in domains if d not in current]
    if not final:
        problems.append(
            Problem(
                env,
                name,
                "domains",
                "give at least one domain (the first becomes the site's canonical domain)",
            )
        )
    problems += ownership_problems(env, name, final, doc.expected, index)

    settings = root / "settings" / f"{name}.py"
    app_dir = root / "project" / "sites" / name
    files: dict[str, str] = {}
    site_id = None
    if settings.exists():
        existing = brand_of(settings)
        if brand is not None and brand != existing:
            problems.append(
                Problem(
                    env,
                    name,
                    "brand",
                    f"settings/{name}.py already exists "
                    f"{'with brand ' + shown(existing) if existing else '(with no brand read)'}; "
                    "--brand only names a new site (edit SITEKIT_BRAND there to rename it)",
                )
            )
    elif not problems:
        site_id = next_site_id(root)
        if site_id is None:
            problems.append(
                Problem(
                    env,
                    name,
                    "name",
                    f"no SITE_ID is left for a new site: a settings module in settings/ "
                    f"already uses {SITE_ID_MAX}, the highest id the Sites table holds",
                )
            )
        else:
            files = scaffold(name, brand or default_brand(name), site_id)
            problems += _existing_package(env, name, app_dir, files, notes)
    if problems:
        return refused(source, notes, problems)

    summary: list[str]
    if index is None:
        previous = doc.sites[-1] if len(doc.sites) else None
        flow = True
        if isinstance(previous, CommentedMap) and isinstance(previous.get("domains"), CommentedSeq):
            flow = bool(previous["domains"].fa.flow_style())
        fields: dict[str, Any] = {
            "name": name,
            "domains": final,
            "workers": workers if workers is not None else RESOURCE_FIELDS["workers"].default,
            "state": "present",
        }
        doc.append_entry(fields, flow)
        summary = [f"{subject(env, name)}: added with {', '.join(final)} (canonical: {final[0]})"]
    else:
        for domain in final[len(current) :]:
            doc.append_domain(index, domain)
        doc.set_field(index, "state", "present")
        if workers is not None:
            doc.set_field(index, "workers", workers)
        summary = [
            f"{subject(env, name)}: present again, with its fields kept; domains: "
            f"{', '.join(final)} (canonical: {final[0]})"
        ]
    if files:
        summary.append(
            f"{subject(env, name)}: new to the codebase: SITE_ID {site_id}, brand "
            f"{(brand or default_brand(name))!r}; commit the new files with the catalogue"
        )
    summary.append(f"the next deploy of {env} starts it ({DEPLOY_HINT.format(env=env)})")
    return finish(doc, notes, summary, new_site=name if files else None, files=files)


def _existing_package(
    env: str, name: str, app_dir: Path, files: dict[str, str], notes: list[str]
) -> list[Problem]:
    """A new site's package that is already there (without its settings module). When it is
    exactly what ``files`` would create (an interrupted ``sitekit site add`` of this site and
    brand left it), it is kept and taken out of ``files``; anything else refuses the edit."""
    rel = f"project/sites/{name}"
    if app_dir.with_suffix(".py").exists():
        return [
            Problem(env, name, "name", f"{rel}.py exists but settings/{name}.py does not; "
                    f"remove {rel}.py first (or write settings/{name}.py by hand)")
        ]
    if not app_dir.exists():
        return []
    if app_dir.is_dir() and package_is_scaffold(app_dir, files):
        for key in [k for k in files if k.startswith(f"{rel}/")]:
            del files[key]
        notes.append(
            f"{subject(env, name)}: {rel}/ is what an interrupted `sitekit site add` left; "
            f"it is kept, and settings/{name}.py completes it"
        )
        return []
    return [
        Problem(
            env,
            name,
            "name",
            f"{rel}/ exists but settings/{name}.py does not, and it is not what this command "
            f"would create (written by hand, or left by an interrupted `sitekit site add` "
            f"with another --brand): remove {rel}/ and run this command again, or write "
            f"settings/{name}.py by hand",
        )
    ]


def remove_site(source: Source, name: str) -> Change:
    """Mark ``name`` absent; its domains, fields, code and data stay."""
    env = source.env
    doc, index, problems = find_entry(source, name, "nothing to remove")
    if doc is None or index is None:
        return refused(source, [], problems)
    entry = doc.expected[index]
    if entry.get("state", "present") == "absent":
        return Change(source, source.text, [f"{subject(env, name)}: already absent"])
    doc.set_field(index, "state", "absent")
    domains = entry.get("domains") if isinstance(entry.get("domains"), list) else []
    summary = [
        f"{subject(env, name)}: now absent (its domains and fields stay in {source.label})",
        f"the next deploy of {env} ({DEPLOY_HINT.format(env=env)}), on every host:",
        "  - stops its gunicorn master and removes its supervisor program",
        f"  - removes its nginx server block (no longer served: {', '.join(domains) or 'none'})",
        "  - removes its env file, gunicorn configuration, socket (run directory) and logs",
        f"  - in system mode, removes its unix user and group sk-{name}",
        f"kept: its rows in the database (its Site row and content), its code (settings/{name}.py, "
        f"project/sites/{name}/)",
        f"bring it back with: sitekit site add {env} {name}",
    ]
    return finish(doc, [], summary)


def move_site(source: Source, name: str, pool: str | None, workers: int | None = None) -> Change:
    """Put ``name`` in ``pool`` (its resource fields go: the pool's master has its own), or,
    with ``pool`` None, give it its own master again (with ``workers`` when given)."""
    env = source.env
    doc, index, problems = find_entry(source, name, "nothing to move")
    if doc is None or index is None:
        return refused(source, [], problems)
    entry = doc.expected[index]
    where = subject(env, name)
    current = entry.get("pool")
    if current == pool and (pool or workers is None or entry.get("workers") == workers):
        state = f"already in pool {shown(pool)}" if pool else "already served by its own master"
        return Change(source, source.text, [f"{where}: {state}"])
    present = entry.get("state", "present") == "present"
    deploy = f"the next deploy of {env} ({DEPLOY_HINT.format(env=env)}), on every host:"
    if pool:
        dropped = [f"{key}: {shown(entry[key])}" for key in RESOURCE_FIELDS if key in entry]
        for key in RESOURCE_FIELDS:
            if key in entry:
                doc.delete_field(index, key)
        doc.set_field(index, "pool", pool)
        summary = [f"{where}: now in pool '{pool}'"]
        if dropped:
            summary.append(
                f"its own resources go ({', '.join(dropped)}): the pool's master has its own "
                f"(sitekit_pools.{pool})"
            )
        steps = [
            f"  - starts the master of pool '{pool}' if it is not running, or reloads it "
            f"gracefully with {name} among its sites",
            f"  - points {name}'s nginx server block at that master's socket",
            f"  - then stops {name}'s own master (once nginx no longer sends it requests)",
        ]
    else:
        if current is not None:
            doc.delete_field(index, "pool")
        if workers is not None:
            doc.set_field(index, "workers", workers)
        summary = [
            f"{where}: now served by its own master"
            if present
            else f"{where}: to be served by its own master when it is present again"
        ]
        steps = [
            f"  - starts {name}'s own master (sitekit-{name})",
            f"  - points {name}'s nginx server block at its socket",
        ]
        if current is not None:
            steps.append(
                f"  - then reloads the master of pool {shown(current)} without {name} (or stops "
                "it, when it has no site left)"
            )
    if present:
        summary += [deploy, *steps]
    else:
        summary.append(
            f"{where}: it is absent, so the next deploy starts and stops no master for it; "
            f"bring it back with: sitekit site add {env} {name}"
        )
    return finish(doc, [], summary)
