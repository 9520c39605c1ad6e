"""Reading the YAML files of an inventory: its catalogue, its variables, its hosts.

One reader for ``sitekit check``, the editing commands and the playbook's preflight. It is
PyYAML's safe loader (on which Ansible's is built), refusing what that loader would take in a
way the user cannot see, or would crash on:

* a key given twice in one mapping: PyYAML keeps the last value silently, Ansible warns and
  keeps the last, the editor's round-trip model refuses the file;
* a value that cannot be constructed: ``name: 2024-02-30`` (a plain scalar that YAML reads as
  a date), ``!!int abc`` (a tag the value does not fit), a whole number of more digits than
  Python reads, a tag the safe loader does not know;
* nesting deeper than :data:`MAX_DEPTH` (libyaml composes recursively and would overflow its
  stack; Python's recursion limit would end later steps);
* aliases that expand to more than :data:`MAX_VALUES` values (a "billion laughs"): the
  document is measured, never expanded; an alias inside the value it names.

What it refuses comes back as :class:`Flaw` s, each located by its line and its path in the
document (the keys and list positions that lead to it); every flaw is found, not only the
first. Nothing here raises, whatever the text.
"""

from __future__ import annotations

import bisect
import itertools
import sys
from dataclasses import dataclass, field
from pathlib import Path as _FilePath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sitekit.echo import EXPLANATION_LIMIT, clean, shown

#: Levels of nesting a file may have (a catalogue needs five; Python's recursion limit is 1000).
MAX_DEPTH = 50
#: Values (scalars, lists, mappings) a document may hold with its aliases expanded.
MAX_VALUES = 1_000_000

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_MERGE = f"{_TAG}merge"
#: What a value of each standard scalar tag must be, as a message says it.
_KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "timestamp": "a date",
    "binary": "base64 data",
}

Path = tuple[str | int, ...]
_DEEPER = f"nests values more than {MAX_DEPTH} levels deep"


@dataclass(frozen=True)
class Flaw:
    """Something in a YAML document that the loader refuses."""

    #: The line of the file (from 1).
    line: int
    message: str
    #: Keys (as written) and list positions from the top of the document to the value; ()
    #: when the flaw is the file's as a whole (then ``message`` says what the file is or has:
    #: "is not valid YAML: line 3, column 5: ...").
    path: Path = ()


@dataclass
class Loaded:
    """What a YAML text holds, or the flaws that keep it from being read.

    ``data`` is the document's value when it has no flaw (None otherwise). ``partial`` is what
    could still be read of a flawed document (each value that cannot be read as None), to name
    the places of its flaws (a site's name) and nothing else; None when even its shape cannot
    be read.
    """

    data: Any = None
    flaws: list[Flaw] = field(default_factory=list)
    partial: Any = None
    #: Where the entries of the document's top-level block lists are (:func:`_layout`), for a
    #: document of the usual kind; None otherwise.
    layout: Any = None

    @property
    def ok(self) -> bool:
        return not self.flaws


class _Failed(Exception):
    """A value whose constructor raised: its node, and the error."""

    def __init__(self, node: Node, error: Exception):
        super().__init__(str(error))
        self.node = node
        self.error = error


class _Loader(_Base):  # type: ignore[misc,valid-type]
    """The safe loader, telling which node a value that cannot be constructed is."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (_Failed, yaml.YAMLError):
            raise
        except Exception as exc:  # whatever a constructor raises: the value cannot be read
            raise _Failed(node, exc) from None


def _yaml_flaw(error: yaml.YAMLError, what: str = "is not valid YAML") -> Flaw:
    """A YAML error as one short line: where and what (PyYAML's own text names no file)."""
    mark = getattr(error, "problem_mark", None)
    if not isinstance(error, yaml.MarkedYAMLError) or mark is None:
        return Flaw(1, f"{what}: {clean(str(error), EXPLANATION_LIMIT)}")
    text = f"line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    if error.context:
        where = error.context_mark
        text += f" ({error.context}{f' at line {where.line + 1}' if where else ''})"
    return Flaw(mark.line + 1, f"{what}: {clean(text, EXPLANATION_LIMIT)}")


def _too_deep(text: str) -> Flaw | None:
    """The first place the text nests deeper than MAX_DEPTH, read event by event."""
    depth = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1
                return Flaw(line, f"{_DEEPER} (line {line}; a catalogue needs a few)")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


class _Unusual(Exception):
    """A document :func:`_plain` does not read: the thorough reading takes over."""


_STR, _SEQ, _MAP = f"{_TAG}str", f"{_TAG}seq", f"{_TAG}map"


def _plain(root: Node) -> Any:
    """The value of a composed document in one pass, when it is of the usual kind: no node
    reached twice (an alias), no merge key, no key given twice, only the standard tags, every
    value constructible. Anything else raises :class:`_Unusual`, and :func:`_walk` finds and
    locates what it is. For such a document this is what the safe constructor builds (text is
    the node's value; any other scalar goes through the same constructor)."""
    trial = SafeConstructor()
    constructors = trial.yaml_constructors
    seen: set[int] = set()

    def value(node: Node) -> Any:
        if id(node) in seen:
            raise _Unusual
        seen.add(id(node))
        tag = node.tag
        if tag == _STR:
            if not isinstance(node, ScalarNode):
                raise _Unusual
            return node.value
        if isinstance(node, ScalarNode):
            if tag == _MERGE or tag not in constructors:
                raise _Unusual
            try:
                return constructors[tag](trial, node)
            except Exception:  # said, and located, by the thorough reading
                raise _Unusual from None
        if isinstance(node, SequenceNode) and tag == _SEQ:
            return [value(child) for child in node.value]
        if isinstance(node, MappingNode) and tag == _MAP:
            mapping: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = value(key_node)
                try:
                    if key in mapping:
                        raise _Unusual
                except TypeError:  # an unhashable key
                    raise _Unusual from None
                mapping[key] = value(value_node)
            return mapping
        raise _Unusual

    return value(root)


def _scalar_message(node: ScalarNode, error: Exception) -> str:
    """Why a scalar cannot be read, and what to write instead."""
    value = shown(node.value)
    kind = node.tag[len(_TAG) :] if node.tag.startswith(_TAG) else ""
    if node.tag not in SafeConstructor.yaml_constructors or kind not in _KINDS:
        return f"{value} has the tag {_tag(node.tag)}, which a catalogue cannot hold"
    digits = sum(ch.isdigit() for ch in node.value)
    if kind == "int" and digits > sys.get_int_max_str_digits():
        return (
            f"a whole number of {digits} digits is more than can be read "
            f"({sys.get_int_max_str_digits()} at most); quote it if it is meant as text"
        )
    if not node.style and _Base.resolve(_Base, ScalarNode, node.value, (True, False)) == (
        node.tag
    ):
        reason = f" ({clean(str(error))})" if kind == "timestamp" and str(error) else ""
        return (
            f"{value} reads as {_KINDS[kind]} in YAML but is not one{reason}; quote it if it "
            "is meant as text"
        )
    return f"{value} is tagged {_tag(node.tag)} but is not {_KINDS[kind]}"


def _tag(tag: str) -> str:
    """A tag as it is usually written (``!!int``)."""
    return clean(f"!!{tag[len(_TAG):]}" if tag.startswith(_TAG) else tag)


@dataclass
class _Walk:
    """What one pass over a composed document finds."""

    flaws: list[Flaw] = field(default_factory=list)
    #: Whether the document's shape can be constructed (no cycle, size or tag in the way).
    shape_ok: bool = True
    #: The scalars that cannot be constructed.
    unreadable: list[ScalarNode] = field(default_factory=list)
    #: Where each node was first found: id(node) -> path.
    paths: dict[int, Path] = field(default_factory=dict)


def _children(node: Node) -> list[tuple[str | int | None, Node]]:
    """A collection's nodes, each with the step that leads to it in a path (None: a key)."""
    if isinstance(node, SequenceNode):
        return list(enumerate(node.value))
    children: list[tuple[str | int | None, Node]] = []
    if isinstance(node, MappingNode):
        for key, value in node.value:
            children.append((None, key))
            children.append((key.value if isinstance(key, ScalarNode) else "?", value))
    return children


def _duplicates(node: MappingNode, path: Path, trial: SafeConstructor) -> list[Flaw]:
    """The keys of a mapping that an earlier key of it equals (as a dictionary compares them:
    ``1`` and ``01`` are one key)."""
    first: dict[Any, ScalarNode] = {}
    flaws = []
    for key, _value in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE:
            continue
        try:
            same: Any = trial.yaml_constructors[key.tag](trial, key)
            hash(same)
        except Exception:  # a key that cannot be read (said elsewhere) is compared as written
            same = (key.tag, key.value)
        earlier = first.setdefault(same, key)
        if earlier is not key:
            line, before = key.start_mark.line + 1, earlier.start_mark.line + 1
            where = f"lines {before} and {line}" if before != line else f"both on line {line}"
            flaws.append(
                Flaw(
                    line,
                    f"{shown(key.value)} is given twice in one mapping ({where}); a YAML "
                    "reader keeps one of them silently: remove the other",
                    (*path, key.value),
                )
            )
    return flaws


def _walk(root: Node) -> _Walk:
    """Check each distinct node once, without recursion: duplicate keys, values that cannot
    be constructed, unknown tags, and how many values and levels the document has with its
    aliases expanded (measured per node, never expanded)."""
    found = _Walk()
    trial = SafeConstructor()
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, levels) expanded
    open_nodes: set[int] = set()
    stack: list[tuple[Node, Path, bool]] = [(root, (), False)]
    while stack:
        node, path, closing = stack.pop()
        if closing:
            children = [child for _, child in _children(node)]
            values = 1 + sum(measured[id(child)][0] for child in children)
            levels = 1 + max((measured[id(child)][1] for child in children), default=0)
            measured[id(node)] = (min(values, MAX_VALUES + 1), min(levels, MAX_DEPTH + 1))
            open_nodes.discard(id(node))
            continue
        if id(node) in measured:
            continue
        line = node.start_mark.line + 1
        if id(node) in open_nodes:
            found.flaws.append(Flaw(line, "an alias refers to the value that holds it", path))
            found.shape_ok = False
            measured[id(node)] = (MAX_VALUES + 1, MAX_DEPTH + 1)
            continue
        found.paths.setdefault(id(node), path)
        if isinstance(node, ScalarNode) and node.tag == _MERGE:
            measured[id(node)] = (1, 1)  # `<<`: read where the mapping is constructed
            continue
        if isinstance(node, ScalarNode):
            try:
                constructor = trial.yaml_constructors[node.tag]
                constructor(trial, node)
            except Exception as exc:  # whatever a constructor raises: the value cannot be read
                found.flaws.append(Flaw(line, _scalar_message(node, exc), path))
                found.unreadable.append(node)
            measured[id(node)] = (1, 1)
            continue
        if node.tag not in trial.yaml_constructors:
            found.flaws.append(
                Flaw(line, f"has the tag {_tag(node.tag)}, which a catalogue cannot hold", path)
            )
            found.shape_ok = False
        if isinstance(node, MappingNode):
            found.flaws.extend(_duplicates(node, path, trial))
        open_nodes.add(id(node))
        stack.append((node, path, True))
        for step, child in reversed(_children(node)):
            stack.append((child, path if step is None else (*path, step), False))
    values, levels = measured[id(root)]
    if not found.shape_ok:
        return found  # an alias inside its own value: nothing to measure
    if values > MAX_VALUES:
        found.flaws.append(
            Flaw(1, f"has aliases that expand to more than {MAX_VALUES} values (a catalogue "
                 "holds far fewer): write the values out")
        )
        found.shape_ok = False
    elif levels > MAX_DEPTH:
        found.flaws.append(Flaw(1, f"{_DEEPER} once its aliases are expanded"))
        found.shape_ok = False
    return found


#: What tells this reader's readings apart from another version's (for what is remembered).
_READER = (_FilePath(__file__).read_bytes() + yaml.__version__.encode()
           if _FilePath(__file__).is_file() else b"")


def load(text: str, base: str | None = None) -> Loaded:
    """Read one YAML document, refusing what this module's docstring says. A large text read
    before without a flaw is not read again (:func:`sitekit.siteids.remembered`); nor is one
    edited from such a ``base`` within one entry of a list (:func:`_edited`)."""
    from sitekit import siteids

    if _READER:
        data = siteids.remembered(text, _READER)
        if data is not None:
            return Loaded(data=data)
        if base is not None and len(text) >= siteids.REMEMBER_FROM:
            edited = _edited(base, text)
            if edited is not None:
                siteids.remember(text, _READER, *edited)
                return Loaded(data=edited[0], layout=edited[1])
    loaded = _load(text)
    if _READER and loaded.ok and loaded.data is not None:
        siteids.remember(text, _READER, loaded.data, loaded.layout)
    return loaded


def _load(text: str) -> Loaded:
    try:
        deep = _too_deep(text)
        if deep is not None:
            return Loaded(flaws=[deep])
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        return Loaded(flaws=[_yaml_flaw(exc)])
    if root is None:
        return Loaded()
    try:
        data = _plain(root)  # recursion bounded by MAX_DEPTH
    except _Unusual:
        pass
    else:
        return Loaded(data=data, layout=_layout(root, text))
    walk = _walk(root)
    flaws = walk.flaws
    data = None
    if walk.shape_ok:
        for node in walk.unreadable:  # the rest is read with each of these as null
            node.tag, node.value = f"{_TAG}null", ""
        try:
            data = _Loader("").construct_document(root)
        except _Failed as exc:
            flaws.append(
                Flaw(exc.node.start_mark.line + 1, f"{shown(exc.node.value)} cannot be read: "
                     f"{clean(str(exc.error))}", walk.paths.get(id(exc.node), ()))
            )
        except yaml.YAMLError as exc:
            flaws.append(_yaml_flaw(exc, "cannot be read"))
        except Exception as exc:  # whatever else construction raises: the file cannot be read
            flaws.append(Flaw(1, f"cannot be read: {clean(str(exc), EXPLANATION_LIMIT)}"))
    if flaws:
        return Loaded(flaws=sorted(flaws, key=lambda f: f.line), partial=data)
    return Loaded(data=data)


# --- an edited text, read from the reading of the text it was edited from --------------------
#
# An edit of a large catalogue changes the lines of one entry of its list of sites. Read whole,
# the edited text takes seconds at 10,000 sites; read as the entry's lines alone, it takes
# milliseconds, and it holds the same data when the lines around them are unchanged and the
# entry's lines are closed on their own. YAML's block structure is in its lines: an entry of a
# block list at column c ends at the next line that starts at column c or less (a comment or a
# blank line aside), and nothing before that line depends on what follows it. So the edited
# text is read as its base's remembered data with that one entry replaced when:
#
# * the base was read by this reader as a usual document (no alias, merge key, key given twice
#   or unusual tag: :func:`_plain`), and its layout remembered: each entry's first line (a "-"
#   at the list's column) and the line after it;
# * every changed line is within one entry, whose first line is unchanged (so what precedes it,
#   and how the previous entry ends, is the same), and the line after it is unchanged;
# * no line break other than "\n" is in either text (YAML knows four more, which would move
#   the lines), and the base has no directive (a %TAG line changes what a tag in the entry
#   means);
# * every other line of the entry is blank, a comment, or indented past the list's column
#   (no "---", "...", "%" or key at the margin, no line that would end the list);
# * the entry's lines, read on their own as the one entry of a list (this reader, whole, with
#   the line break that ends them), are a usual document without a flaw.
#
# Anything else, the text is read whole. tests/unit/test_catalogue_scale.py compares the two
# readings over edits of each kind, and over random ones.

#: Line breaks YAML knows besides "\n".
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
#: The key a lone entry is read under.
_ALONE = "entry"


def _entry_start(line: str, column: int) -> bool:
    """Whether ``line`` starts an entry of a block list at ``column``."""
    return line[:column] == " " * column and line[column : column + 1] == "-" and (
        line[column + 1 : column + 2] in (" ", ""))


def _layout(root: Node, text: str) -> dict[str, list] | None:
    """Where the entries of a usual document's top-level block lists are: for each key whose
    value is one, [the list's column, [each entry's first line, ..., the line after the last
    entry (the next key's, else the text's end)]], lines counted from 0; None when there is
    none, or the text has a line break other than "\n"."""
    if (not isinstance(root, MappingNode) or any(b in text for b in _OTHER_BREAKS)
            or text.startswith("%") or "\n%" in text):
        return None  # a directive (%TAG) changes what the entry's lines mean
    lines: list[str] | None = None
    layout: dict[str, list] = {}
    pairs = root.value
    for n, (key, value) in enumerate(pairs):
        if not (isinstance(key, ScalarNode) and key.tag == _STR
                and isinstance(value, SequenceNode) and value.tag == _SEQ
                and not value.flow_style and value.value):
            continue
        if lines is None:
            lines = text.split("\n")
        column = value.start_mark.column
        end = pairs[n + 1][0].start_mark.line if n + 1 < len(pairs) else len(lines)
        bounds = [item.start_mark.line for item in value.value] + [end]
        if all(a < b for a, b in itertools.pairwise(bounds)) and all(
                _entry_start(lines[line], column) for line in bounds[:-1]):
            layout[key.value] = [column, bounds]
    return layout or None


def common_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """How many lines two texts' lines share at their head, then at their tail (not counting
    the head's again): what differs is ``old[head:len(old) - tail]``."""
    limit = min(len(old), len(new))
    head = 0
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return head, tail


def _edited(base: str, text: str) -> tuple[Any, dict[str, list]] | None:
    """(data, layout) of ``text``, an edit of ``base`` within one entry of a top-level block
    list, from the remembered reading of ``base`` and the entry's lines read on their own;
    None when the section above does not allow it (the text is then read whole)."""
    from sitekit import siteids

    found = siteids.remembered_reading(base, _READER)
    if found is None or any(b in text for b in _OTHER_BREAKS):
        return None
    data, layout = found
    if not isinstance(data, dict) or not isinstance(layout, dict):
        return None
    old, new = base.split("\n"), text.split("\n")
    head, tail = common_ends(old, new)
    changed_end, delta = len(old) - tail, len(new) - len(old)  # old's lines [head, changed_end)
    for key, (column, bounds) in layout.items():
        i = bisect.bisect_left(bounds, head) - 1  # the entry whose first line is before head
        if not 0 <= i < len(bounds) - 1 or changed_end > bounds[i + 1]:
            continue
        entries = data.get(key)
        lines = new[bounds[i] : bounds[i + 1] + delta]  # to the line that ends the entry
        if not isinstance(entries, list) or len(entries) != len(bounds) - 1 or not all(
            not line.strip() or line.lstrip(" ").startswith("#")
            or line[: column + 1] == " " * (column + 1)
            for line in lines[1:]
        ):
            return None
        # the entry's last line break is its own when the text goes on after it (a block
        # scalar ending the entry keeps it)
        end = bounds[i + 1] + delta
        alone = _load(f"{_ALONE}:\n" + "\n".join(lines) + ("\n" if end < len(new) else ""))
        if (not alone.ok or alone.layout is None or not isinstance(alone.data, dict)
                or list(alone.data) != [_ALONE] or not isinstance(alone.data[_ALONE], list)
                or len(alone.data[_ALONE]) != 1):
            return None
        entries[i] = alone.data[_ALONE][0]
        after = bounds[i + 1]
        shifted = {k: [c, [b + delta if b >= after else b for b in bs]]
                   for k, (c, bs) in layout.items()}
        return data, shifted
    return None
