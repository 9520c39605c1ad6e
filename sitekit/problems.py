"""What a catalogue's problems are made of: the problem itself (environment, site, field,
message), how it names a site, and the name of the catalogue's variable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sitekit.echo import clean


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a catalogue, located by environment, site and field."""

    env: str
    site: str
    field: str
    message: str

    def __str__(self) -> str:
        # names and fields may come from the file as written: escaped and cut, as values are
        where = [clean(self.env)] if self.env else []
        if self.site:
            where.append(f"site '{clean(self.site)}'")
        if self.field:
            where.append(f"field '{clean(self.field)}'")
        message = self.message if self.message.isprintable() else clean(self.message, 10_000)
        return f"{': '.join(where)}: {message}" if where else message


def site_label(entry: Any, index: int) -> str:
    """How a problem names the catalogue entry at ``index``: its name, else its position."""
    if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"]:
        return entry["name"]
    return f"#{index + 1}"


#: The catalogue: ``sitekit_sites`` in sites.yml, the list of the environment's sites.
SITES_VAR = "sitekit_sites"
