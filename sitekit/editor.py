"""Editing an environment's site catalogue, and scaffolding the code of a new site.

``sitekit domain add|remove`` and ``sitekit site add|remove`` are planned here. Planning reads
the catalogue file and, for a new site, the codebase, and returns a :class:`Change`: the file's
text before and after, the files a new site needs, what to tell the user, and the problems that
refuse the edit. Nothing is written until :func:`apply`.

How an edit keeps the file as it was:

* the file is edited through ruamel.yaml's round-trip model, so comments, key order, flow or
  block lists and quoting stay; a file that the model cannot reproduce byte for byte even
  without an edit (a list spread over several lines, unusual spacing) is refused rather than
  reformatted;
* comment lines that follow the place where a line is added or removed stay where they were,
  relative to the lines around them; only the removed line's own comment goes with it;
* the new text is read back with the same YAML reader as ``sitekit check`` and the deploy, and
  must hold exactly the intended data; then the whole catalogue is validated
  (:func:`sitekit.catalogue.validate`).
"""

from __future__ import annotations

import ast
import colorsys
import difflib
import hashlib
import html
import io
import json
import keyword
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from sitekit.catalogue import POOLS_VAR, RESOURCE_FIELDS, Problem, validate
from sitekit.domains import DomainError, normalize_domain
from sitekit.inventory import (
    CATALOGUE_FILE,
    CATALOGUE_VAR,
    Inventory,
    InventoryError,
    other_catalogues,
)
from sitekit.runtime.rules import RESERVED_NAMES, SITE_NAME_RE, settings_site_id

#: The longest brand name: it becomes the name of the site's row in the Sites table.
BRAND_MAX = 50

DEPLOY_HINT = "ansible-playbook -i inventories/{env} ansible/site.yml"


class EditError(Exception):
    """An edit that was planned but could not be written."""


# --- what a command would do -------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """An environment's catalogue file as read: where it is and its exact text."""

    env: str
    path: Path
    text: str
    project_root: Path

    @property
    def label(self) -> str:
        """The file's path as shown to the user (relative to the checkout when inside it)."""
        try:
            return self.path.relative_to(self.project_root).as_posix()
        except ValueError:
            return str(self.path)

    @property
    def inventory_dir(self) -> Path:
        """The environment's inventory directory (``inventories/<env>``)."""
        return self.path.parents[len(CATALOGUE_FILE.parts) - 1]


@dataclass
class Change:
    """A planned edit: the catalogue text after it, the files to create and what to say.

    ``notes`` are said before the diff (what was normalised, what already was so);
    ``summary`` after it (what changed, what the next deploy will do). A change with
    ``problems`` is refused: nothing of it may be written.
    """

    source: Source
    after: str
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changed(self) -> bool:
        return self.ok and (self.after != self.source.text or bool(self.files))

    def diff(self) -> str:
        """A unified diff of the catalogue file ('' when its text does not change)."""
        if not self.ok:
            return ""
        lines = difflib.unified_diff(
            self.source.text.splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile=f"a/{self.source.label}",
            tofile=f"b/{self.source.label}",
        )
        return "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)


def read_source(inv: Inventory) -> Source:
    """Read an environment's catalogue file exactly as it is on disk (line endings included)."""
    path = inv.catalogue_path
    if not path.is_file():
        raise InventoryError(f"{inv.name}: no catalogue file {path}")
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError(f"{inv.name}: {path} cannot be read: {exc}") from None
    return Source(inv.name, path, text, inv.project_root)


def _where(env: str, site: str = "") -> str:
    return f"{env}: site '{site}'" if site else env


# --- the catalogue as an editable round-trip document ------------------------------------


def _token(value: str) -> CommentToken:
    return CommentToken(value, CommentMark(0))


def _is_block(value: Any) -> bool:
    return (
        isinstance(value, CommentedMap | CommentedSeq)
        and len(value) > 0
        and not value.fa.flow_style()
    )


Slot = tuple[Any, Any, int]


def _tail_slot(node: Any) -> Slot | None:
    """Where ruamel keeps the comment that follows ``node``'s last line.

    That comment holds the last line's own end-of-line comment and every comment or blank
    line up to the next node, whatever that node's level.
    """
    if isinstance(node, CommentedMap) and node:
        key = list(node)[-1]
        return _tail_slot(node[key]) if _is_block(node[key]) else (node, key, 2)
    if isinstance(node, CommentedSeq) and node:
        index = len(node) - 1
        return _tail_slot(node[index]) if _is_block(node[index]) else (node, index, 0)
    return None


def _get(slot: Slot | None) -> CommentToken | None:
    if slot is None:
        return None
    holder, key, index = slot
    entry = holder.ca.items.get(key)
    return entry[index] if entry and len(entry) > index else None


def _set(slot: Slot, token: CommentToken) -> None:
    holder, key, index = slot
    entry = holder.ca.items.setdefault(key, [None, None, None, None])
    entry[index] = token


def _split_tail(value: str, deeper_than: int | None) -> tuple[str, str]:
    """Split a trailing comment into what stays with its line and what follows it.

    What stays: the line's own end-of-line comment, and the comment lines right after it that
    are indented deeper than ``deeper_than`` (they belong inside the node that ends there).
    """
    head, newline, rest = value.partition("\n")
    lines = rest.splitlines(keepends=True)
    kept = 0
    if deeper_than is not None:
        for line in lines:
            text = line.lstrip(" ")
            if not text.startswith("#") or len(line) - len(text) <= deeper_than:
                break
            kept += 1
    return head + newline + "".join(lines[:kept]), "".join(lines[kept:])


def _append_comment(slot: Slot, text: str) -> None:
    token = _get(slot)
    if token is None:
        _set(slot, _token("\n" + text))
    else:
        token.value = token.value + text


class _Document:
    """The catalogue file in ruamel.yaml's round-trip model, plus the plain data it must hold.

    Every edit is made twice: on the model, keeping comments and styles, and on ``expected``,
    the plain data; :meth:`render` checks that the text it produces reads back as ``expected``.
    """

    def __init__(self, source: Source, rt: YAML, data: Any, expected: list[Any]):
        self.source = source
        self.lines = source.text.splitlines()
        self.rt = rt
        self.data = data
        self.expected = expected
        self._column_fixes: list[Callable[[], None]] = []

    @property
    def sites(self) -> CommentedSeq:
        sites = self.data[CATALOGUE_VAR]
        if sites is None or (isinstance(sites, CommentedSeq) and not sites):
            # An empty catalogue (`sitekit_sites:` or `sitekit_sites: []`) gets a block list.
            sites = CommentedSeq()
            self.data[CATALOGUE_VAR] = sites
        return sites

    def entries(self, name: str) -> list[int]:
        return [
            i
            for i, entry in enumerate(self.expected)
            if isinstance(entry, dict) and entry.get("name") == name
        ]

    # -- edits --------------------------------------------------------------------------

    def append_domain(self, index: int, domain: str) -> None:
        entry = self.sites[index]
        seq = entry.get("domains")
        if not isinstance(seq, CommentedSeq):
            seq = CommentedSeq()
            seq.fa.set_flow_style()
            self.set_field(index, "domains", seq)
        styles = {type(item) for item in seq}
        value: Any = domain
        if len(styles) == 1 and issubclass(next(iter(styles)), ScalarString):
            value = next(iter(styles))(domain)  # same quoting as the domains already there
        if _is_block(seq):
            before = _tail_slot(seq)
            seq.append(value)
            self._move_tail(before, (seq, len(seq) - 1, 0), seq.lc.col)
        else:
            self._fix_flow_comment(entry, "domains")
            seq.append(value)
        self.expected[index]["domains"].append(domain)

    def remove_domain(self, index: int, position: int) -> None:
        entry = self.sites[index]
        seq = entry["domains"]
        if _is_block(seq):
            token = _get((seq, position, 0))
            _, following = _split_tail(token.value, None) if token else ("", "")
            if following:
                if position > 0:
                    _append_comment((seq, position - 1, 0), following)
                elif len(seq) > 1:
                    start = seq.ca.comment[0] if seq.ca.comment else None
                    if start is None:
                        start = _token("\n")
                        seq.ca.comment = [start, None]
                        _set((entry, "domains", 2), start)
                    start.value += following
                else:
                    _append_comment((entry, "domains", 2), following)
        else:
            self._fix_flow_comment(entry, "domains")
        del seq[position]
        if not seq:
            # An emptied list is written `[]`, its comments after it.
            seq.fa.set_flow_style()
            start = seq.ca.comment[0] if seq.ca.comment else None
            seq.ca.comment = None
            if start is not None and _get((entry, "domains", 2)) is None:
                _set((entry, "domains", 2), start)
        del self.expected[index]["domains"][position]

    def set_field(self, index: int, key: str, value: Any) -> None:
        entry = self.sites[index]
        if key in entry:
            old = entry[key]
            if isinstance(old, ScalarString) and isinstance(value, str):
                value = type(old)(value)  # keep the value's quoting
            entry[key] = value
        else:
            before = _tail_slot(entry) if not entry.fa.flow_style() else None
            entry[key] = value
            if before is not None:
                self._move_tail(before, (entry, key, 2), entry.lc.col)
        self.expected[index][key] = value if not isinstance(value, CommentedSeq) else list(value)

    def delete_field(self, index: int, key: str) -> None:
        """Remove ``key`` and its line; the comments and blank lines after that line stay."""
        entry = self.sites[index]
        keys = list(entry)
        token = _get((entry, key, 2))
        del entry[key]
        del self.expected[index][key]
        position = keys.index(key)
        if token is None or position == 0 or entry.fa.flow_style():
            return
        _own, _newline, following = token.value.partition("\n")
        if following:
            previous = keys[position - 1]
            value = entry[previous]
            slot = _tail_slot(value) if _is_block(value) else (entry, previous, 2)
            if slot is not None:
                _append_comment(slot, following)

    def append_entry(self, fields: dict[str, Any], flow_domains: bool) -> None:
        sites = self.sites
        entry = CommentedMap()
        for key, value in fields.items():
            if key == "domains":
                value = CommentedSeq(value)
                if flow_domains:
                    value.fa.set_flow_style()
            entry[key] = value
        before = _tail_slot(sites)
        # Entries separated by a blank line get one before the new entry too.
        separated = False
        if len(sites) >= 2:
            token = _get(_tail_slot(sites[-2]))
            separated = token is not None and _split_tail(token.value, None)[1].startswith("\n")
        sites.append(entry)
        self.expected.append({k: list(v) if isinstance(v, list) else v for k, v in fields.items()})
        if before is not None:
            self._move_tail(before, _tail_slot(entry), sites.lc.col, blank_line=separated)

    # -- comment bookkeeping ------------------------------------------------------------

    def _move_tail(
        self, old: Slot | None, new: Slot | None, deeper_than: int, blank_line: bool = False
    ) -> None:
        """After adding a node behind ``old``'s line: the comments that followed that line
        and belong to what comes next now follow the new node."""
        token = _get(old)
        if token is None or new is None:
            return
        kept, moved = _split_tail(token.value, deeper_than)
        if blank_line and not kept.endswith("\n\n"):
            kept += "\n"
        token.value = kept
        if moved:
            _set(new, _token("\n" + moved))

    def _fix_flow_comment(self, entry: CommentedMap, key: str) -> None:
        """Keep the distance between a one-line flow list and its end-of-line comment when
        the list grows past the comment's column (ruamel would leave one space)."""
        token = _get((entry, key, 2))
        seq = entry[key]
        if token is None or token.value.startswith("\n") or seq.lc.line >= len(self.lines):
            return
        line = self.lines[seq.lc.line]
        column = token.column
        gap = column - len(line[:column].rstrip())

        def fix() -> None:
            flat = CommentedSeq(list(seq))
            flat.fa.set_flow_style()
            measure = YAML()
            measure.width = self.rt.width
            out = io.StringIO()
            measure.dump(flat, out)
            width = seq.lc.col + len(out.getvalue().splitlines()[0])
            token.start_mark = CommentMark(max(column, width + gap))

        self._column_fixes.append(fix)

    # -- output -------------------------------------------------------------------------

    def render(self) -> tuple[str, list[Problem]]:
        for fix in self._column_fixes:
            fix()
        out = io.StringIO()
        self.rt.dump(self.data, out)
        text = out.getvalue()
        try:
            reread = yaml.safe_load(text)[CATALOGUE_VAR] or []
        except (yaml.YAMLError, TypeError, KeyError) as exc:
            reread = exc
        if reread != self.expected:
            return self.source.text, [
                Problem(
                    self.source.env,
                    "",
                    "",
                    f"{self.source.label} cannot be edited safely by this command (the edited "
                    "text would not read back as intended); edit it by hand",
                )
            ]
        return text, []


def _round_trip_yaml(text: str) -> YAML:
    try:
        _, indent, offset = load_yaml_guess_indent(text)
    except RoundTripError:
        indent, offset = None, None
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 1_000_000  # never fold a long line
    rt.indent(mapping=2, sequence=indent or 4, offset=offset if offset is not None else 2)
    content = [line for line in text.splitlines() if line.strip() and line.lstrip()[0] != "#"]
    rt.explicit_start = bool(content) and (content[0] == "---" or content[0].startswith("--- "))
    rt.explicit_end = bool(content) and content[-1].rstrip() == "..."
    return rt


def _load(source: Source) -> tuple[_Document | None, list[Problem]]:
    """The catalogue file as an editable document, or why it cannot be edited."""
    env, label = source.env, source.label

    def refuse(message: str, field_name: str = "") -> tuple[None, list[Problem]]:
        return None, [Problem(env, "", field_name, message)]

    try:
        plain = yaml.safe_load(source.text)
    except yaml.YAMLError as exc:
        return refuse(f"{label} is not valid YAML: {exc}")
    if not isinstance(plain, dict) or CATALOGUE_VAR not in plain:
        return refuse(f"{label} does not define '{CATALOGUE_VAR}'")
    sites = plain[CATALOGUE_VAR]
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        return refuse(f"must be a list of sites, got {sites!r}", CATALOGUE_VAR)

    rt = _round_trip_yaml(source.text)
    try:
        data = rt.load(source.text)
        out = io.StringIO()
        rt.dump(data, out)
    except RoundTripError as exc:
        return refuse(f"{label} cannot be edited by this command: {exc}")
    if out.getvalue() != source.text:
        old = source.text.splitlines(keepends=True)
        new = out.getvalue().splitlines(keepends=True)
        number = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
            min(len(old), len(new)),
        )
        shown = old[number] if number < len(old) else "(the end of the file)"
        return refuse(
            f"{label} cannot be edited by this command without also reformatting line "
            f"{number + 1} ({shown.strip()!r}). Write that line in the "
            "usual layout (one line per list, one space after ':', LF line endings) or make "
            "the change by hand"
        )
    return _Document(source, rt, data, sites), []


# --- shared checks -----------------------------------------------------------------------


def _normalise(
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
            problems.append(Problem(env, site, "domains", f"cannot {verb} '{text}': {exc}"))
            continue
        if domain != text:
            why = " (internationalised names are stored as punycode)" if not text.isascii() else ""
            notes.append(f"{_where(env, site)}: '{text}' normalised to '{domain}'{why}")
        if domain in spelled:
            spelled[domain].append(text)
        else:
            spelled[domain] = [text]
            domains.append(domain)
    done = {"add": "added", "remove": "removed"}[verb]
    for domain, texts in spelled.items():
        if len(texts) > 1:
            as_typed = ", ".join(f"'{t}'" for t in texts)
            notes.append(
                f"{_where(env, site)}: '{domain}' was given {len(texts)} times ({as_typed}); "
                f"it is {done} once"
            )
    return domains, notes, problems


def _owners(raw: list[Any], skip: int | None = None) -> dict[str, tuple[str, str]]:
    """Domain -> (site name, state) for every entry but ``skip``."""
    owners: dict[str, tuple[str, str]] = {}
    for index, entry in enumerate(raw):
        if index == skip or not isinstance(entry, dict):
            continue
        domains = entry.get("domains")
        for domain in domains if isinstance(domains, list) else []:
            if isinstance(domain, str):
                owners.setdefault(
                    domain, (str(entry.get("name")), str(entry.get("state", "present")))
                )
    return owners


def _ownership_problems(
    env: str, site: str, domains: Sequence[str], raw: list[Any], skip: int | None
) -> list[Problem]:
    problems = []
    owners = _owners(raw, skip)
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


def _finish(
    doc: _Document,
    notes: list[str],
    summary: list[str],
    *,
    new_site: str | None = None,
    files: dict[str, str] | None = None,
) -> Change:
    """Render the edited document, validate the whole catalogue, and build the change."""
    source = doc.source
    after, problems = doc.render()
    if not problems:
        problems = _validate(source, after, new_site)
    if problems:
        return Change(source, source.text, notes, [], problems)
    return Change(source, after, notes, summary, [], files or {})


def _validate(source: Source, after: str, new_site: str | None) -> list[Problem]:
    """Problems of the catalogue ``after`` would hold (the same check as ``sitekit check``).

    ``new_site`` is a site whose settings module is about to be created: the validator cannot
    see it yet, and its SITE_ID is free by construction.
    """
    others = other_catalogues(source.inventory_dir)
    data = yaml.safe_load(after)
    raw, pools = data[CATALOGUE_VAR], data.get(POOLS_VAR)
    result = validate(
        raw, env=source.env, project_root=source.project_root, others=others, pools=pools
    )
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
        data = yaml.safe_load(source.text)
        earlier = {
            str(p)
            for p in validate(
                data[CATALOGUE_VAR],
                env=source.env,
                project_root=source.project_root,
                others=others,
                pools=data.get(POOLS_VAR),
            ).problems
        }
        problems = [
            Problem(p.env, p.site, p.field, f"{p.message} (already so before this change)")
            if str(p) in earlier
            else p
            for p in problems
        ]
    return problems


def _refused(source: Source, notes: list[str], problems: list[Problem]) -> Change:
    return Change(source, source.text, notes, [], problems)


def _unknown_site(env: str, name: str, raw: list[Any], hint: str) -> Problem:
    names = [str(e.get("name")) for e in raw if isinstance(e, dict) and e.get("name")]
    close = difflib.get_close_matches(name, names, n=1)
    suggestion = f"did you mean '{close[0]}'? " if close else ""
    known = ", ".join(names) or "none"
    return Problem(env, name, "", f"no such site in {env} ({suggestion}sites: {known}); {hint}")


def _one_entry(doc: _Document, env: str, name: str, hint: str) -> tuple[int | None, list[Problem]]:
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


# --- sitekit domain add / remove ---------------------------------------------------------


def add_domains(source: Source, site: str, given: Sequence[str]) -> Change:
    """Append ``given`` (as typed; normalised here) to ``site``'s domains."""
    env = source.env
    domains, notes, problems = _normalise(env, site, given, "add")
    doc, load_problems = _load(source)
    if doc is None:
        return _refused(source, notes, load_problems)
    index, found = _one_entry(
        doc, env, site, f"add a site with: sitekit site add {env} {site} DOMAIN..."
    )
    if index is None:
        return _refused(source, notes, found + problems)
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
        return _refused(source, notes, problems)
    current = entry.get("domains") if isinstance(entry.get("domains"), list) else []
    new = [d for d in domains if d not in current]
    problems += _ownership_problems(env, site, new, doc.expected, index)
    if problems:
        return _refused(source, notes, problems)
    for domain in domains:
        if domain in current:
            notes.append(f"{_where(env, site)}: '{domain}' is already one of its domains")
    if not new:
        return Change(source, source.text, notes)
    for domain in new:
        doc.append_domain(index, domain)
    summary = [
        f"{_where(env, site)}: added {', '.join(new)}",
        f"the next deploy of {env} serves {'them' if len(new) > 1 else 'it'} "
        f"({DEPLOY_HINT.format(env=env)})",
    ]
    return _finish(doc, notes, summary)


def remove_domains(source: Source, site: str, given: Sequence[str]) -> Change:
    """Remove ``given`` (as typed; normalised here) from ``site``'s domains."""
    env = source.env
    domains, notes, problems = _normalise(env, site, given, "remove")
    doc, load_problems = _load(source)
    if doc is None:
        return _refused(source, notes, load_problems)
    index, found = _one_entry(doc, env, site, "nothing to remove")
    if index is None:
        return _refused(source, notes, found + problems)
    entry = doc.expected[index]
    current = list(entry.get("domains")) if isinstance(entry.get("domains"), list) else []
    owners = _owners(doc.expected, index)
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
        return _refused(source, notes, problems)
    for domain in domains:
        doc.remove_domain(index, doc.expected[index]["domains"].index(domain))
    summary = [f"{_where(env, site)}: removed {', '.join(domains)}"]
    if current and remaining and current[0] != remaining[0]:
        summary.append(
            f"{_where(env, site)}: '{remaining[0]}' is now its canonical domain (the first; "
            "the next deploy writes it to the Sites table)"
        )
    if present:
        summary.append(
            f"the next deploy of {env} stops serving "
            f"{'them' if len(domains) > 1 else 'it'} ({DEPLOY_HINT.format(env=env)})"
        )
    return _finish(doc, notes, summary)


# --- sitekit site add / remove -----------------------------------------------------------


def default_brand(name: str) -> str:
    """``meadow`` -> ``Meadow``, ``north_shore`` -> ``North Shore``."""
    return " ".join(word.capitalize() for word in name.split("_") if word)


def check_name(env: str, name: str) -> list[Problem]:
    if not SITE_NAME_RE.match(name) or keyword.iskeyword(name):
        return [
            Problem(
                env,
                name,
                "name",
                f"{name!r} is not a valid site name: use 1 to 29 characters, lower-case letters, "
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
        return [Problem(env, name, "brand", f"{brand!r} contains control characters")]
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


def next_site_id(project_root: Path) -> int:
    """One more than the highest SITE_ID of any settings module.

    Gaps are not reused: a SITE_ID whose module was deleted may still own rows in the database.
    """
    ids = [0]
    for path in sorted((project_root / "settings").glob("*.py")):
        site_id, _ = settings_site_id(path)
        if site_id is not None:
            ids.append(site_id)
    return max(ids) + 1


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


# The files of a new site, modelled on harbor's. ``$name`` and friends are filled in by
# :func:`scaffold`; values that come from the user arrive already quoted or escaped.
SCAFFOLD: dict[str, Template] = {
    "settings/$name.py": Template(
        '''"""The $name site: its SITE_ID and brand (created by `sitekit site add`)."""

from .base import *

SITE_ID = $site_id
SITEKIT_SITE = "$name"
ROOT_URLCONF = "project.sites.$name.urls"
# This site's own cookies (project.core checks it): never read by another site.
SESSION_COOKIE_NAME = f"{SITEKIT_SITE}_sessionid"
CSRF_COOKIE_NAME = f"{SITEKIT_SITE}_csrftoken"
SITEKIT_BRAND = {
    "name": $brand_literal,
    "tagline": "",
    "colors": {
        "primary": "$primary",
        "accent": "$accent",
        "background": "$background",
        "surface": "$surface",
        "text": "$text",
    },
    "logo": "$name/logo.svg",
}
'''
    ),
    "project/sites/$name/__init__.py": Template(
        '''"""The $name site: templates, static files and URLs."""
'''
    ),
    "project/sites/$name/apps.py": Template(
        """from django.apps import AppConfig


class $class_name(AppConfig):
    name = "project.sites.$name"
    label = "site_$name"
    verbose_name = $verbose_literal
"""
    ),
    "project/sites/$name/urls.py": Template(
        """from django.urls import include, path

urlpatterns = [
    path("", include("project.core.urls")),
]

handler404 = "project.core.views.page_not_found"
handler500 = "project.core.views.server_error"
"""
    ),
    "project/sites/$name/jinja2/$name/base.html": Template(
        """{% extends "base.html" %}

{% block brand_style %}
{{ super() }}
  <link rel="stylesheet" href="{{ static('$name/site.css') }}">
{% endblock %}

{% block logo %}<img class="brand-logo" src="{{ static('$name/logo.svg') }}" alt="">{% endblock %}

{% block footer %}
    <p>{{ brand.name }}{% if site %} &middot; {{ site.domain }}{% endif %}</p>
{% endblock %}
"""
    ),
    "project/sites/$name/static/$name/site.css": Template(
        """/* $name: the site's own look, on top of core/base.css and the brand colours. */
body.site-$name { font-family: system-ui, "Segoe UI", Roboto, sans-serif; }

.site-$name .site-header { border-bottom: 4px solid var(--brand-accent); }
.site-$name .brand-name { color: var(--brand-primary); letter-spacing: 0.05em; }
.site-$name .announcement { border-left: 6px solid var(--brand-primary); }
.site-$name .announcement-title { color: var(--brand-primary); }
.site-$name .site-footer { background: var(--brand-primary); color: var(--brand-background); }
"""
    ),
    "project/sites/$name/static/$name/logo.svg": Template(
        """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" role="img" aria-label="$brand_xml">
  <circle cx="32" cy="32" r="31" fill="$primary" stroke="$accent" stroke-width="2"/>
  <text x="32" y="43" text-anchor="middle" font-family="Georgia, serif" font-size="30" fill="$accent">$initial</text>
</svg>
"""  # noqa: E501
    ),
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
    return {
        Template(path).substitute(values): template.substitute(values)
        for path, template in SCAFFOLD.items()
    }


def _brand_of(path: Path) -> str | None:
    """SITEKIT_BRAND['name'] of a settings module, read without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, SyntaxError):
        return None
    for node in reversed(tree.body):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "SITEKIT_BRAND" for t in node.targets
        ):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value.get("name") if isinstance(value, dict) else None
    return None


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
        return _refused(source, [], problems)
    if brand is not None:
        problems += check_brand(env, name, brand)
        brand = brand.strip()
    domains, notes, domain_problems = _normalise(env, name, given, "add")
    problems += domain_problems
    doc, load_problems = _load(source)
    if doc is None:
        return _refused(source, notes, load_problems + problems)

    found = doc.entries(name)
    if len(found) > 1:
        _, more = _one_entry(doc, env, name, "")
        return _refused(source, notes, more + problems)
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
            notes.append(f"{_where(env, name)}: already present with these domains")
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
        return _refused(source, notes, problems)

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
    problems += _ownership_problems(env, name, final, doc.expected, index)

    settings = root / "settings" / f"{name}.py"
    app_dir = root / "project" / "sites" / name
    files: dict[str, str] = {}
    site_id = None
    if settings.exists():
        existing = _brand_of(settings)
        if brand is not None and brand != existing:
            problems.append(
                Problem(
                    env,
                    name,
                    "brand",
                    f"settings/{name}.py already exists with brand {existing!r}; --brand only "
                    "names a new site (edit SITEKIT_BRAND there to rename it)",
                )
            )
    else:
        if app_dir.exists() or app_dir.with_suffix(".py").exists():
            problems.append(
                Problem(
                    env,
                    name,
                    "name",
                    f"project/sites/{name} exists but settings/{name}.py does not; create the "
                    "settings module by hand, or remove that code first",
                )
            )
        if not problems:
            site_id = next_site_id(root)
            files = scaffold(name, brand or default_brand(name), site_id)
    if problems:
        return _refused(source, notes, problems)

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
        summary = [f"{_where(env, name)}: added with {', '.join(final)} (canonical: {final[0]})"]
    else:
        for domain in final[len(current) :]:
            doc.append_domain(index, domain)
        doc.set_field(index, "state", "present")
        if workers is not None:
            doc.set_field(index, "workers", workers)
        summary = [
            f"{_where(env, name)}: present again, with its fields kept; domains: "
            f"{', '.join(final)} (canonical: {final[0]})"
        ]
    if files:
        summary.append(
            f"{_where(env, name)}: new to the codebase: SITE_ID {site_id}, brand "
            f"{(brand or default_brand(name))!r}; commit the new files with the catalogue"
        )
    summary.append(f"the next deploy of {env} starts it ({DEPLOY_HINT.format(env=env)})")
    return _finish(doc, notes, summary, new_site=name if files else None, files=files)


def remove_site(source: Source, name: str) -> Change:
    """Mark ``name`` absent; its domains, fields, code and data stay."""
    env = source.env
    doc, problems = _load(source)
    if doc is None:
        return _refused(source, [], problems)
    index, problems = _one_entry(doc, env, name, "nothing to remove")
    if index is None:
        return _refused(source, [], problems)
    entry = doc.expected[index]
    if entry.get("state", "present") == "absent":
        return Change(source, source.text, [f"{_where(env, name)}: already absent"])
    doc.set_field(index, "state", "absent")
    domains = entry.get("domains") if isinstance(entry.get("domains"), list) else []
    summary = [
        f"{_where(env, name)}: now absent (its domains and fields stay in {source.label})",
        f"the next deploy of {env} ({DEPLOY_HINT.format(env=env)}), on every host:",
        "  - stops its gunicorn master and removes its supervisor program",
        f"  - removes its nginx server block (no longer served: {', '.join(domains) or 'none'})",
        "  - removes its env file, gunicorn configuration, socket (run directory) and logs",
        f"  - in system mode, removes its unix user and group sk-{name}",
        f"kept: its rows in the database (its Site row and content), its code (settings/{name}.py, "
        f"project/sites/{name}/)",
        f"bring it back with: sitekit site add {env} {name}",
    ]
    return _finish(doc, [], summary)


def move_site(source: Source, name: str, pool: str | None, workers: int | None = None) -> Change:
    """Put ``name`` in ``pool`` (its resource fields go: the pool's master has its own), or,
    with ``pool`` None, give it its own master again (with ``workers`` when given)."""
    env = source.env
    doc, problems = _load(source)
    if doc is None:
        return _refused(source, [], problems)
    index, problems = _one_entry(doc, env, name, "nothing to move")
    if index is None:
        return _refused(source, [], problems)
    entry = doc.expected[index]
    where = _where(env, name)
    current = entry.get("pool")
    if current == pool and (pool or workers is None or entry.get("workers") == workers):
        state = f"already in pool '{pool}'" if pool else "already served by its own master"
        return Change(source, source.text, [f"{where}: {state}"])
    deploy = f"the next deploy of {env} ({DEPLOY_HINT.format(env=env)}), on every host:"
    if pool:
        dropped = [f"{key}: {entry[key]}" for key in RESOURCE_FIELDS if key in entry]
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
        summary += [
            deploy,
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
        summary = [f"{where}: now served by its own master"]
        summary += [
            deploy,
            f"  - starts {name}'s own master (sitekit-{name})",
            f"  - points {name}'s nginx server block at its socket",
        ]
        if current is not None:
            summary.append(
                f"  - then reloads the master of pool '{current}' without {name} (or stops it, "
                "when it has no site left)"
            )
    return _finish(doc, [], summary)


# --- writing -------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` in one rename; keep its mode (and owner, as root)."""
    path = path.resolve()
    old = path.stat() if path.exists() else None
    if mode is None:
        mode = stat.S_IMODE(old.st_mode) if old else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if old is not None and os.geteuid() == 0:
            os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _remove(paths: list[Path]) -> None:
    for path in reversed(paths):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _create_files(root: Path, files: dict[str, str], made: list[Path]) -> list[Path]:
    """Create a new site's files: its package appears in one rename, then its settings module
    (so a half-written site is never importable). What it creates is recorded in ``made``."""
    created: list[Path] = []
    file_mode = 0o666 & ~_umask()
    dir_mode = 0o777 & ~_umask()
    packages: dict[Path, dict[Path, str]] = {}
    singles: dict[Path, str] = {}
    for rel, text in files.items():
        parts = Path(rel).parts
        if parts[:2] == ("project", "sites") and len(parts) > 3:
            packages.setdefault(root.joinpath(*parts[:3]), {})[Path(*parts[3:])] = text
        else:
            singles[root / rel] = text
    for target, members in packages.items():
        if target.exists():
            raise EditError(f"{target} appeared while this command ran")
        staging = Path(tempfile.mkdtemp(dir=root, prefix=f".sitekit-new-{target.name}-"))
        try:
            for rel, text in members.items():
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                (staging / rel).write_text(text, encoding="utf-8")
                os.chmod(staging / rel, file_mode)
            for directory in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
                os.chmod(directory, dir_mode)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        made.append(target)
        created += [target / rel for rel in members]
    for path, text in singles.items():
        if path.exists():
            raise EditError(f"{path} appeared while this command ran")
        write_atomic(path, text, file_mode)
        made.append(path)
        created.append(path)
    return created


def apply(change: Change) -> list[Path]:
    """Write a planned change: new files first, then the catalogue. Returns what was written."""
    if not change.ok:
        raise EditError("a change with problems cannot be written")
    source = change.source
    try:
        current = source.path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"{source.label} cannot be read again: {exc}") from None
    if current != source.text:
        raise EditError(
            f"{source.label} changed while this command ran; nothing was written: run it again"
        )
    written: list[Path] = []
    made: list[Path] = []
    try:
        if change.files:
            written += _create_files(source.project_root, change.files, made)
        if change.after != source.text:
            write_atomic(source.path, change.after)
            written.append(source.path)
    except (OSError, EditError) as exc:
        _remove(made)  # all or nothing: no new site's code without its catalogue entry
        message = f"writing failed: {exc}" if isinstance(exc, OSError) else str(exc)
        raise EditError(f"{message}; nothing was written") from None
    return written
