"""Paging parameters and a per-app overlay over the shared, read-only demo records.

Both demo upstreams page the same way (``page`` from 1, ``page_size`` 1..1000, default 50)
and keep their edits per application instance, so two servers started from the same data
never see each other's writes and the cached base data is never changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.demo.data import Record

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class ParameterError(ValueError):
    """A parameter is not acceptable; the message says which and what is allowed."""


@dataclass(frozen=True, slots=True)
class Page:
    """A validated page request: ``number`` from 1, ``size`` 1..``MAX_PAGE_SIZE``."""

    number: int
    size: int


def parse_page(number: str | None, size: str | None) -> Page:
    """Validate raw ``page``/``page_size`` texts (``None`` = not given, use the default)."""
    return Page(
        positive_int("page", number, default=1, maximum=None),
        positive_int("page_size", size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE),
    )


def positive_int(name: str, raw: str | None, *, default: int, maximum: int | None) -> int:
    """Parse a whole number 1..``maximum`` given as text; ``None`` gives ``default``."""
    if raw is None:
        return default
    text = raw.strip()
    # isdecimal() alone accepts other scripts' digits (e.g. "١٢"); insist on ASCII.
    try:
        value = int(text) if text.isascii() and text.isdecimal() else 0
    except ValueError:  # more digits than Python will convert
        value = 0
    if value < 1 or (maximum is not None and value > maximum):
        limit = f"1..{maximum}" if maximum is not None else "1 or more"
        raise ParameterError(f"{name} must be a whole number {limit}, got {raw!r}")
    return value


class RecordTable:
    """Shared base records plus this instance's replacements, addressed by position."""

    def __init__(self, base: Sequence[Record]) -> None:
        self._base = base
        self._changed: dict[int, Record] = {}

    def __len__(self) -> int:
        return len(self._base)

    def get(self, index: int) -> Record:
        """The current record at ``index`` (0-based); ``IndexError`` if there is none."""
        if not 0 <= index < len(self._base):
            raise IndexError(index)
        return self._changed.get(index, self._base[index])

    def replace(self, index: int, record: Record) -> None:
        """Store ``record`` as the new version of the record at ``index``."""
        self.get(index)
        self._changed[index] = record

    def page(self, page: Page) -> list[Record]:
        """The records on ``page`` (an empty list past the end)."""
        start = (page.number - 1) * page.size
        rows = list(self._base[start : start + page.size])
        if self._changed:
            for offset in range(len(rows)):
                changed = self._changed.get(start + offset)
                if changed is not None:
                    rows[offset] = changed
        return rows
