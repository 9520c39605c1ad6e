"""The checks every edit shares: the domains a user typed, who owns a domain, which entry a
name means, a new site's name and brand, and the validation of the whole edited catalogue (the
same as ``sitekit check``)."""

from __future__ import annotations

import difflib
import keyword
from collections.abc import Sequence
from typing import Any

from sitekit.catalogue import POOLS_VAR, Problem, validate
from sitekit.domains import DomainError, normalize_domain
from sitekit.echo import clean, shown
from sitekit.editor.change import Change, Source, subject
from sitekit.editor.document import Document, load
from sitekit.inventory import CATALOGUE_VAR, InventoryError, load_catalogue, validation_context
from sitekit.runtime.rules import RESERVED_NAMES, SITE_NAME_RE

#: The longest brand name: it becomes the name of the site's row in the Sites table.
BRAND_MAX = 50


def normalise_domains(
    env: str, site: str, given: Sequence[str], verb: str
) -> tuple[list[str], list[str], list[Problem]]:
    """Normalise the domains a user typed: (domains in order, notes, problems)."""
    domains: list[str] = []
    spelled: dict[str, list[str]] = {}
    notes: list[str] = []
    problems: list[Problem] = []
    for text in given:
        try:
            domain = normalize_domain(text)
        except DomainError as exc:
            problems.append(Problem(env, site, "domains", f"cannot {verb} {shown(text)}: {exc}"))
            continue
        if domain != text:
            why = " (internationalised names are stored as punycode)" if not text.isascii() else ""
            notes.append(f"{subject(env, site)}: {shown(text)} normalised to '{domain}'{why}")
        if domain in spelled:
            spelled[domain].append(text)
        else:
            spelled[domain] = [text]
            domains.append(domain)
    done = {"add": "added", "remove": "removed"}[verb]
    for domain, texts in spelled.items():
        if len(texts) > 1:
            as_typed = ", ".join(map(shown, texts))
            notes.append(
                f"{subject(env, site)}: '{domain}' was given {len(texts)} times ({as_typed}); "
                f"it is {done} once"
            )
    return domains, notes, problems


def domain_owners(raw: list[Any], skip: int | None = None) -> dict[str, tuple[str, str]]:
    """Domain -> (site name, state) for every entry but ``skip``."""
    owners: dict[str, tuple[str, str]] = {}
    for index, entry in enumerate(raw):
        if index == skip or not isinstance(entry, dict):
            continue
        domains = entry.get("domains")
        for domain in domains if isinstance(domains, list) else []:
            if isinstance(domain, str):
                owners.setdefault(
                    domain, (_text(entry.get("name")), _text(entry.get("state", "present")))
                )
    return owners


def _text(value: Any) -> str:
    """A name or state of an entry as a message writes it (it may be anything until the
    catalogue is validated)."""
    return clean(value) if isinstance(value, str) else shown(value)


def ownership_problems(
    env: str, site: str, domains: Sequence[str], raw: list[Any], skip: int | None
) -> list[Problem]:
    problems = []
    owners = domain_owners(raw, skip)
    for domain in domains:
        if domain in owners:
            owner, state = owners[domain]
            how = (
                f"remove it there first: sitekit domain remove {env} {owner} {domain}"
                if state == "present"
                else f"that site is absent but keeps its domains; remove it there first: "
                f"sitekit domain remove {env} {owner} {domain}"
            )
            problems.append(
                Problem(
                    env,
                    site,
                    "domains",
                    f"'{domain}' already belongs to site '{owner}' ({state}); {how}",
                )
            )
    return problems


def finish(
    doc: Document,
    notes: list[str],
    summary: list[str],
    *,
    new_site: str | None = None,
    files: dict[str, str] | None = None,
) -> Change:
    """Render the edited document, validate the whole catalogue, and build the change."""
    source = doc.source
    after, problems = doc.render()
    warnings: list[str] = []
    if not problems:
        problems, warnings = _validate(source, after, new_site, doc.expected)
    notes = notes + warnings
    if problems:
        return Change(source, source.text, notes, [], problems)
    return Change(source, after, notes, summary, [], files or {})


def _validate(source: Source, after: str, new_site: str | None,
              expected: list[Any]) -> tuple[list[Problem], list[str]]:
    """Problems of the catalogue ``after`` would hold (the same check as ``sitekit check``),
    and its warnings (what could not be checked), as notes.

    ``new_site`` is a site whose settings module is about to be created: the validator cannot
    see it yet, and its SITE_ID is free by construction.
    """
    try:
        context = validation_context(source.inventory_dir)
    except InventoryError as exc:
        return [Problem(source.env, "", "", str(exc).removeprefix(f"{source.env}: "))], []
    data, unread = load_catalogue(source.env, after, source.label, base=source.text)
    if data is None:
        return unread, []
    raw, pools = data[CATALOGUE_VAR], data.get(POOLS_VAR)
    if (raw or []) != expected:  # the edited text must hold exactly the intended data
        return [Problem(source.env, "", "", f"{source.label} cannot be edited safely by this "
                        "command (the edited text would not read back as intended); edit it "
                        "by hand")], []
    result = validate(raw, env=source.env, project_root=source.project_root, pools=pools,
                      **context)
    warnings = [f"warning: {warning}" for warning in result.warnings]
    problems = [
        p
        for p in result.problems
        if not (
            p.site == new_site
            and p.field == "name"
            and p.message.startswith("no settings module for this site")
        )
    ]
    if problems:
        data, _ = load_catalogue(source.env, source.text, source.label)
        earlier = {
            str(p)
            for p in validate(
                data[CATALOGUE_VAR] if data else [],
                env=source.env,
                project_root=source.project_root,
                pools=data.get(POOLS_VAR) if data else None,
                **context,
            ).problems
        }
        problems = [
            Problem(p.env, p.site, p.field, f"{p.message} (already so before this change)")
            if str(p) in earlier
            else p
            for p in problems
        ]
    return problems, warnings


def _unknown_site(env: str, name: str, raw: list[Any], hint: str) -> Problem:
    names = [_text(e.get("name")) for e in raw if isinstance(e, dict) and e.get("name")]
    close = difflib.get_close_matches(name, names, n=1)
    suggestion = f"did you mean '{close[0]}'? " if close else ""
    known = ", ".join(names) or "none"
    return Problem(env, name, "", f"no such site in {env} ({suggestion}sites: {known}); {hint}")


def one_entry(doc: Document, env: str, name: str, hint: str) -> tuple[int | None, list[Problem]]:
    found = doc.entries(name)
    if not found:
        return None, [_unknown_site(env, name, doc.expected, hint)]
    if len(found) > 1:
        return None, [
            Problem(
                env,
                name,
                "name",
                f"the catalogue lists this site {len(found)} times; merge the entries by hand "
                "first",
            )
        ]
    return found[0], []


def find_entry(
    source: Source, name: str, hint: str
) -> tuple[Document | None, int | None, list[Problem]]:
    """The catalogue as a document and the index of ``name``'s one entry, or why not: no
    document when the file cannot be edited, no index when the catalogue does not list the
    site once (``hint`` says what to do when it is missing)."""
    doc, problems = load(source, name)
    if doc is None:
        return None, None, problems
    index, problems = one_entry(doc, source.env, name, hint)
    return doc, index, problems


def check_name(env: str, name: str) -> list[Problem]:
    if not SITE_NAME_RE.match(name) or keyword.iskeyword(name):
        return [
            Problem(
                env,
                name,
                "name",
                f"{shown(name)} is not a valid site name: use 1 to 29 characters, lower-case "
                "letters, "
                "digits and '_', starting with a letter (it names a Python module, a socket and "
                "a unix user)",
            )
        ]
    if name in RESERVED_NAMES:
        return [Problem(env, name, "name", f"'{name}' is reserved (settings/{name}.py is shared)")]
    return []


def check_brand(env: str, name: str, brand: str) -> list[Problem]:
    if not brand.strip():
        return [Problem(env, name, "brand", "must not be empty")]
    if any(not ch.isprintable() for ch in brand):
        return [Problem(env, name, "brand", f"{shown(brand)} contains control characters")]
    if len(brand.strip()) > BRAND_MAX:
        return [
            Problem(
                env,
                name,
                "brand",
                f"is {len(brand.strip())} characters long; the limit is {BRAND_MAX} "
                "(it names the site's row in the Sites table)",
            )
        ]
    return []
