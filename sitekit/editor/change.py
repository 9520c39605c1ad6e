"""What an edit of the catalogue would do: the file as read (:class:`Source`) and the planned
:class:`Change` (the text after it, the files to create, what to say, what refuses it)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from sitekit.catalogue import Problem
from sitekit.echo import clean
from sitekit.inventory import CATALOGUE_FILE, Inventory, InventoryError, shown_path

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


def subject(env: str, site: str = "") -> str:
    """How a message names what it is about: ``local: site 'harbor'``, or ``local``."""
    return f"{clean(env)}: site '{clean(site)}'" if site else clean(env)


def refused(source: Source, notes: list[str], problems: list[Problem]) -> Change:
    """A change that writes nothing: ``problems`` say why."""
    return Change(source, source.text, notes, [], problems)
