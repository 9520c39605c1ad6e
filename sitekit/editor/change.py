"""What an edit of the catalogue would do: the file as read (:class:`Source`) and the planned
:class:`Change` (the text after it, the files to create, what to say, what refuses it)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from sitekit.catalogue import Problem
from sitekit.echo import clean
from sitekit.inventory import CATALOGUE_FILE, Inventory, InventoryError, shown_path
from sitekit.loader import common_ends

#: How a summary names the deploy that carries a change out.
DEPLOY_HINT = "ansible-playbook -i inventories/{env} ansible/site.yml"


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
        return shown_path(self.path, self.project_root)

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
        return unified_diff(self.source.text, self.after, self.source.label)


def unified_diff(before: str, after: str, label: str, context: int = 3) -> str:
    """A unified diff of two texts of a file (difflib's format, each line ending with a
    newline). Only the lines between the texts' common head and tail are compared, by difflib
    (the whole of a 50,000-line catalogue took 0.2 s), so a change is shown as the lines that
    differ, with ``context`` lines of the file around it; where equal lines make several
    alignments possible, it may pick another one than difflib over the whole file would
    (tests/unit/test_unified_diff.py)."""
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    head, tail = common_ends(old, new)
    middle = difflib.SequenceMatcher(None, old[head : len(old) - tail],
                                     new[head : len(new) - tail])
    codes = [(tag, i1 + head, i2 + head, j1 + head, j2 + head)
             for tag, i1, i2, j1, j2 in middle.get_opcodes()]
    if not codes or codes == [("equal", head, head, head, head)]:
        return ""
    codes = [("equal", 0, head, 0, head), *codes,
             ("equal", len(old) - tail, len(old), len(new) - tail, len(new))]
    out = [f"--- a/{label}\n", f"+++ b/{label}\n"]
    for group in _groups([c for c in codes if c[1] != c[2] or c[3] != c[4]], context):
        first, last = group[0], group[-1]
        out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out += [f" {line}" for line in old[i1:i2]]
                continue
            out += [f"-{line}" for line in old[i1:i2]]
            out += [f"+{line}" for line in new[j1:j2]]
    return "".join(line if line.endswith("\n") else f"{line}\n" for line in out)


def _range(start: int, stop: int) -> str:
    """A hunk's lines as its header writes them (difflib's ``_format_range_unified``)."""
    length = stop - start
    first = start + 1 if length else start
    return f"{first}" if length == 1 else f"{first},{length}"


def _groups(codes: list[tuple[str, int, int, int, int]], n: int):
    """The opcodes in hunks with ``n`` lines of context (difflib's ``get_grouped_opcodes``)."""
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    group: list[tuple[str, int, int, int, int]] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * n:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


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


def subject(env: str, site: str = "") -> str:
    """How a message names what it is about: ``local: site 'harbor'``, or ``local``."""
    return f"{clean(env)}: site '{clean(site)}'" if site else clean(env)


def refused(source: Source, notes: list[str], problems: list[Problem]) -> Change:
    """A change that writes nothing: ``problems`` say why."""
    return Change(source, source.text, notes, [], problems)
