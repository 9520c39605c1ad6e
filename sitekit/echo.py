"""How a message shows a value it did not make: from a catalogue file, a neighbour's catalogue
or the command line.

Such a value may be anything YAML can hold: text with terminal escape sequences, ten megabytes
of one domain, a whole number of thousands of digits, a list that aliases expand a billion
times. A message shows it escaped as ``repr`` would (control characters as ``\\x1b``), cut
short with its length said, and never expanded past a few items and levels: every message
stays short, whatever the input.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

#: How many characters of a text a message shows (a domain of the longest a catalogue takes,
#: 253, is shown whole).
TEXT_LIMIT = 256
#: How many characters of another library's explanation a message shows.
EXPLANATION_LIMIT = 256
#: How many characters a shown list or mapping takes at most.
NESTED_LIMIT = 256
#: Items of a list or mapping, and levels of nesting, a message shows.
ITEMS_LIMIT = 4
LEVELS_LIMIT = 2
#: The largest whole number a message writes out (Python refuses more than 4300 digits).
DIGITS_LIMIT = 30


def _digits(number: int) -> str:
    """How many decimal digits ``number`` has (estimated when Python will not write it out)."""
    try:
        return str(len(str(abs(number))))
    except ValueError:
        return f"about {math.floor(abs(number).bit_length() * math.log10(2)) + 1}"


def _cut(text: str, limit: int, unit: str, length: int) -> str:
    return text if length <= limit else f"{text}... ({length} {unit})"


def _show(value: Any, level: int) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return _cut(repr(str(value[:TEXT_LIMIT])), TEXT_LIMIT, "characters", len(value))
    if isinstance(value, int):
        if value.bit_length() > DIGITS_LIMIT * 3:
            return f"a whole number of {_digits(value)} digits"
        return repr(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, datetime.date):
        return f"{value.isoformat()} (a date)"
    if isinstance(value, bytes | bytearray):
        return _cut(repr(bytes(value[:TEXT_LIMIT])), TEXT_LIMIT, "bytes", len(value))
    if isinstance(value, Mapping):
        opening, closing = "{", "}"
        items = [f"{_show(k, level - 1)}: {_show(value[k], level - 1)}"
                 for k in _first(value)] if level > 0 else []
    elif isinstance(value, list | tuple | set | frozenset):
        opening, closing = ("[", "]") if isinstance(value, list | tuple) else ("{", "}")
        items = [_show(item, level - 1) for item in _first(value)] if level > 0 else []
    else:
        try:
            text = repr(value)
        except Exception:  # a value whose repr fails is still shown
            text = f"<{type(value).__name__}>"
        return clean(text)
    if len(value) > len(items):
        items.append(f"... ({len(value)} items)" if items else "...")
    text = f"{opening}{', '.join(items)}{closing}"
    return text if len(text) <= NESTED_LIMIT else f"{text[:NESTED_LIMIT]}..."


def _first(values: Any) -> list[Any]:
    found = []
    for item in values:
        if len(found) == ITEMS_LIMIT:
            break
        found.append(item)
    return found


def shown(value: Any) -> str:
    """``value`` as a message shows it: escaped as repr would, cut short (saying how long it
    was), nested values shown a few items and levels deep."""
    return _show(value, LEVELS_LIMIT)


def clean(text: str, limit: int = TEXT_LIMIT) -> str:
    """A text that a message shows unquoted (a name, a field, another library's explanation):
    as it is when it is short and printable, else escaped and cut as :func:`shown` does."""
    if len(text) <= limit and text.isprintable():
        return text
    return _cut(repr(text[:limit])[1:-1], limit, "characters", len(text))
