"""The catalogue file as an editable round-trip document.

The file is edited through ruamel.yaml's round-trip model, so comments, key order, flow or
block lists and quoting stay; a file that the model cannot reproduce byte for byte even without
an edit (a list spread over several lines, unusual spacing) is refused rather than reformatted.
Comment lines that follow the place where a line is added or removed stay where they were,
relative to the lines around them; only the removed line's own comment goes with it. The new
text is read back with the same YAML reader as ``sitekit check`` and the deploy, and must hold
exactly the intended data.

A large catalogue (:data:`WINDOW_FROM` sites or more) is not read whole by the round-trip
model, which takes seconds per thousand sites: only the lines of the entry being edited (for a
new site, of the last two entries) are, as a document of their own; every other line of the
file is kept byte for byte, and the whole edited text must still read back as intended.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import ScalarString
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from sitekit.catalogue import Problem
from sitekit.echo import EXPLANATION_LIMIT, clean, shown
from sitekit.editor.change import Source
from sitekit.inventory import CATALOGUE_VAR, load_catalogue

#: From this many sites on, an edit round-trips only the lines of the entries it touches.
WINDOW_FROM = 200
#: The longest line an edit writes (yamllint's line-length in this checkout): a one-line flow
#: list of domains that would grow past it becomes a block list, one domain per line.
LINE_LIMIT = 120

# --- where ruamel keeps comments ---------------------------------------------------------


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


# --- the document ------------------------------------------------------------------------


class Document:
    """The catalogue file in ruamel.yaml's round-trip model, plus the plain data it must hold.

    Every edit is made twice: on the model, keeping comments and styles, and on ``expected``,
    the plain data; :meth:`render` checks that the text it produces reads back as ``expected``.
    """

    def __init__(self, source: Source, rt: YAML, data: Any, expected: list[Any],
                 window: Window | None = None):
        self.source = source
        #: A file without a final newline is written without one too.
        self.final_newline = source.text.endswith("\n")
        #: Only these lines of the file are in the round-trip model (None: all of them).
        self.window = window
        self.lines = (window.text if window else source.text).splitlines()
        self.rt = rt
        self.data = data
        self.expected = expected
        self._column_fixes: list[Callable[[], None]] = []

    def _at(self, index: int) -> int:
        """Where the catalogue's entry ``index`` is in the model."""
        if self.window is None:
            return index
        if not self.window.first <= index < self.window.first + self.window.count:
            raise IndexError(f"entry {index} is outside the lines being edited")
        return index - self.window.first

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
        entry = self.sites[self._at(index)]
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
            fixes = len(self._column_fixes)
            self._fix_flow_comment(entry, "domains")
            seq.append(value)
            if len(seq) > 1 and self._flow_width(entry, seq) > LINE_LIMIT:
                seq.fa.set_block_style()  # one domain per line, as yamllint wants it
                del self._column_fixes[fixes:]
                self._comment_after_key(entry, "domains")
        self.expected[index]["domains"].append(domain)

    def _comment_after_key(self, entry: CommentedMap, key: str) -> None:
        """The end-of-line comment of a one-line list that became a block list: after its key,
        as far from it as it was from the list's end."""
        token = _get((entry, key, 2))
        seq = entry[key]
        if token is None or token.value.startswith("\n") or seq.lc.line >= len(self.lines):
            return
        line = self.lines[seq.lc.line]
        gap = max(1, token.column - len(line[: token.column].rstrip()))
        key_end = line.index(f"{key}:") + len(key) + 1 if f"{key}:" in line else seq.lc.col
        token.start_mark = CommentMark(key_end + gap)

    def _flow_end(self, seq: CommentedSeq) -> int:
        """The column where the one-line flow list ``seq`` ends, as it will be written."""
        flat = CommentedSeq(list(seq))
        flat.fa.set_flow_style()
        measure = YAML()
        measure.width = self.rt.width
        out = io.StringIO()
        measure.dump(flat, out)
        return seq.lc.col + len(out.getvalue().splitlines()[0])

    def _flow_width(self, entry: CommentedMap, seq: CommentedSeq) -> int:
        """How long the line of ``entry``'s one-line flow list ``seq`` is (its comment
        included)."""
        width = self._flow_end(seq)
        token = _get((entry, "domains", 2))
        if token is not None and not token.value.startswith("\n"):
            comment = token.value.partition("\n")[0].strip()
            width = max(width + 2, token.column) + len(comment)
        return width

    def remove_domain(self, index: int, position: int) -> None:
        entry = self.sites[self._at(index)]
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
        entry = self.sites[self._at(index)]
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
        entry = self.sites[self._at(index)]
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
                # `    domains: [...]` under `  - name:`: the list's indentation plus its key
                column = self.rt.sequence_dash_offset + 2 + len("domains: ")
                if flow_domains and column + len(f"[{', '.join(value)}]") <= LINE_LIMIT:
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
            token.start_mark = CommentMark(max(column, self._flow_end(seq) + gap))

        self._column_fixes.append(fix)

    # -- output -------------------------------------------------------------------------

    def render(self) -> tuple[str, list[Problem]]:
        reread: Any = None
        try:
            for fix in self._column_fixes:
                fix()
            out = io.StringIO()
            self.rt.dump(self.data, out)
            text = out.getvalue()
            expected = self.expected
            if self.window is not None:
                # the edited entries, read back on their own; the whole text is read back
                # and validated by the caller (sitekit.editor.checks.finish)
                expected = self.expected[self.window.first :]
                if self.window.last + 1 < len(self.window.starts):
                    expected = self.expected[self.window.first : self.window.last + 1]
                reread_window, _ = load_catalogue(self.source.env, text, self.source.label)
                text = self.window.splice(text)
                if reread_window is not None:
                    reread = reread_window[CATALOGUE_VAR] or []
            if not self.final_newline:
                text = text.removesuffix("\n")
            if self.window is None:
                data, _ = load_catalogue(self.source.env, text, self.source.label)
                if data is not None:
                    reread = data[CATALOGUE_VAR] or []
        except Exception:  # whatever the round-trip model raises: the edit is not made
            reread = None
        if reread is None or reread != expected:
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


# --- a window on a large file -------------------------------------------------------------

_HEADER = f"{CATALOGUE_VAR}:\n"


class Window:
    """The lines of entries ``first`` to ``last`` of the catalogue's block list of sites (with
    the comments and blank lines that follow them), as a document of their own: ``text`` is
    that document (the list's key, then those lines)."""

    def __init__(self, lines: list[str], starts: list[int], end: int, first: int, last: int):
        self.lines, self.starts, self.first, self.last = lines, starts, first, last
        self.begin = starts[first]
        self.stop = starts[last + 1] if last + 1 < len(starts) else end
        self.text = _HEADER + "".join(lines[self.begin : self.stop])

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def splice(self, edited: str) -> str:
        """The whole file with these lines replaced by those of the ``edited`` document."""
        if not edited.startswith(_HEADER):
            raise ValueError("the edited lines lost their list")
        body = edited[len(_HEADER) :]
        return "".join(self.lines[: self.begin]) + body + "".join(self.lines[self.stop :])


def _entry_lines(text: str) -> tuple[list[str], list[int], int] | None:
    """The file's lines (text ending with a newline), the first line of each entry of its
    block list of sites and the line that ends the list; None when the list is not laid out
    so (a flow list, a key written otherwise): the whole file is then read."""
    lines = text.splitlines(keepends=True)
    key = next((i for i, line in enumerate(lines)
                if line.rstrip("\n").split("#", 1)[0].rstrip() == f"{CATALOGUE_VAR}:"), None)
    if key is None:
        return None
    indent = None
    starts: list[int] = []
    end = len(lines)
    for i in range(key + 1, len(lines)):
        line = lines[i].rstrip("\n")
        content = line.lstrip(" ")
        if not content or content.startswith("#"):
            continue
        column = len(line) - len(content)
        if indent is None:
            if not content.startswith("- "):
                return None
            indent = column
        if column == indent and (content.startswith("- ") or content == "-"):
            starts.append(i)
        elif column <= indent:
            end = i
            break
    if not starts or lines[end - 1 : end] == ["...\n"]:
        return None
    return lines, starts, end


def _windowed(source: Source, text: str, sites: list[Any], name: str | None,
              ) -> tuple[Document | None, list[Problem]] | None:
    """The document of a large catalogue as a window on the lines of ``name``'s one entry (else
    of the last two entries, where a new site goes); None when the file's layout does not
    allow one (it is then read whole)."""
    found = _entry_lines(text)
    if found is None:
        return None
    lines, starts, end = found
    if len(starts) != len(sites):
        return None
    indexes = [i for i, e in enumerate(sites) if isinstance(e, dict) and e.get("name") == name]
    first, last = (indexes[0], indexes[0]) if len(indexes) == 1 else (
        max(0, len(sites) - 2), len(sites) - 1)
    window = Window(lines, starts, end, first, last)
    plain, _ = load_catalogue(source.env, window.text, source.label)
    if plain is None or plain.get(CATALOGUE_VAR) != sites[first : last + 1] or len(plain) != 1:
        return None  # these lines do not read as those entries on their own
    try:
        rt = _round_trip_yaml(window.text)
        rt.explicit_start = rt.explicit_end = False
        data = rt.load(window.text)
        out = io.StringIO()
        rt.dump(data, out)
    except Exception as exc:  # whatever the round-trip model raises: the file is not edited
        why = clean(str(exc), EXPLANATION_LIMIT)
        return None, [Problem(source.env, "", "", f"{source.label} cannot be edited by this "
                              f"command: {why}")]
    if out.getvalue() != window.text:
        return None, [Problem(source.env, "", "", _reformatted(
            source.label, window.text, out.getvalue(), window.begin - 1))]
    return Document(source, rt, data, sites, window), []


# --- reading the file ----------------------------------------------------------------------


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


def load(source: Source, name: str | None = None) -> tuple[Document | None, list[Problem]]:
    """The catalogue file as an editable document, or why it cannot be edited. ``name``: the
    site the edit is about (in a large catalogue, only its entry's lines are read by the
    round-trip model; without it, or for a site not listed, those of the last entries)."""
    env, label = source.env, source.label

    def refuse(message: str, field_name: str = "") -> tuple[None, list[Problem]]:
        return None, [Problem(env, "", field_name, message)]

    plain, problems = load_catalogue(env, source.text, label)
    if plain is None:
        return None, problems
    sites = plain[CATALOGUE_VAR]
    if sites is None:
        sites = []
    if not isinstance(sites, list):
        return refuse(f"must be a list of sites, got {shown(sites)}", CATALOGUE_VAR)

    # A missing final newline is the one difference the round trip makes that is kept as it
    # was (the edited text gets none either); any other is refused, naming the line.
    text = source.text if source.text.endswith("\n") else f"{source.text}\n"
    if len(sites) >= WINDOW_FROM:
        windowed = _windowed(source, text, sites, name)
        if windowed is not None:
            return windowed
    try:
        rt = _round_trip_yaml(text)
        data = rt.load(text)
        out = io.StringIO()
        rt.dump(data, out)
    except Exception as exc:  # whatever the round-trip model raises: the file is not edited
        why = clean(str(exc), EXPLANATION_LIMIT)
        return refuse(f"{label} cannot be edited by this command: {why}")
    if out.getvalue() != text:
        return refuse(_reformatted(label, text, out.getvalue()))
    return Document(source, rt, data, sites), []


def _reformatted(label: str, text: str, again: str, offset: int = 0) -> str:
    """Why a file that the round-trip model would reformat is refused: the first line it
    would change, and what about it when that can be told (``text``: the file, or lines of it
    that start after line ``offset``)."""
    old = text.splitlines(keepends=True)
    new = again.splitlines(keepends=True)
    number = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
        min(len(old), len(new)),
    )
    line = old[number] if number < len(old) else ""
    if line.endswith("\r\n"):
        cause = "it ends with CR LF; the catalogue's lines end with LF only"
    elif line.rstrip("\r\n") != line.rstrip("\r\n").rstrip(" \t"):
        cause = "it ends with white space"
    else:
        cause = ""
    where = f"line {number + 1 + offset} ({shown(line.strip())})" if line else "the end of the file"
    return (
        f"{label} cannot be edited by this command without also reformatting {where}"
        f"{f': {cause}' if cause else ''}. Write that line in the usual layout (one line per "
        "list, one space after ':', LF line endings, no white space at its end) or make the "
        "change by hand"
    )
