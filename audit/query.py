"""Officer queries over the audit trail: filters, keyset pagination, JSON and CSV shapes.

Results are newest first, ordered by ``(time, chain_id, seq)`` descending. The cursor is
that key of the last row returned (opaque base64), so a page never shifts when events
are added: new events sort before page one, later pages continue strictly below the key.
``since`` is inclusive, ``until`` exclusive. Every bad value is refused with a 400 naming
the parameter, including parameters that do not exist (a misspelled filter must not
silently return everything).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, Select, select, tuple_

from audit.chain import rfc3339
from audit.event import EVENT_FIELDS
from audit.models import as_utc, events_table
from gateway.errors import BadRequest

ev = events_table.c
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

CHAIN_FIELDS: tuple[str, ...] = ("chain_id", "seq", "hash")
_PARAMS = frozenset(
    {"subject", "since", "until", "upstream", "entity", "decision", "min_records", "limit"}
    | {"cursor", "format"}
)


@dataclass(frozen=True)
class EventFilter:
    """A validated officer query."""

    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    upstream: str | None = None
    entity: str | None = None
    decision: str | None = None
    min_records: int | None = None
    limit: int = DEFAULT_LIMIT
    after: tuple[datetime, str, int] | None = None  # decoded cursor


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next_cursor: str | None


def parse_filter(params: Sequence[tuple[str, str]]) -> EventFilter:
    """Validate raw query parameters; ``BadRequest`` names the first bad one."""
    seen: dict[str, str] = {}
    for name, value in params:
        if name not in _PARAMS:
            allowed = ", ".join(sorted(_PARAMS))
            raise _bad(name, value, f"is not a filter; use one of {allowed}")
        if name in seen:
            raise _bad(name, value, "is given twice; give each filter once")
        seen[name] = value
    return EventFilter(
        subject=_text(seen, "subject"),
        since=_time(seen, "since"),
        until=_time(seen, "until"),
        upstream=_text(seen, "upstream"),
        entity=_text(seen, "entity"),
        decision=_choice(seen, "decision", ("allow", "deny")),
        min_records=_int(seen, "min_records", 0, 2**31 - 1),
        limit=_int(seen, "limit", 1, MAX_LIMIT) or DEFAULT_LIMIT,
        after=decode_cursor(seen["cursor"]) if "cursor" in seen else None,
    )


def wants_csv(params: Mapping[str, str], accept: str) -> bool:
    """``format=csv`` or ``format=json`` decide; without it, ``Accept: text/csv`` does."""
    chosen = _choice(params, "format", ("json", "csv"))
    return chosen == "csv" if chosen is not None else "text/csv" in accept


def fetch_page(engine: Engine, query: EventFilter) -> Page:
    """One page of events, newest first, and the cursor of the next page (or None)."""
    stmt = build_select(query).limit(query.limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = encode_cursor(rows[-1].time, rows[-1].chain_id, rows[-1].seq) if more else None
    return Page([event_json(dict(r._mapping)) for r in rows], next_cursor)


def build_select(query: EventFilter) -> Select[Any]:
    stmt = select(events_table)
    for column, value in (
        (ev.subject, query.subject),
        (ev.upstream, query.upstream),
        (ev.entity, query.entity),
        (ev.decision, query.decision),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    if query.since is not None:
        stmt = stmt.where(ev.time >= query.since)
    if query.until is not None:
        stmt = stmt.where(ev.time < query.until)
    if query.min_records is not None:
        stmt = stmt.where(ev.records >= query.min_records)
    if query.after is not None:
        stmt = stmt.where(tuple_(ev.time, ev.chain_id, ev.seq) < tuple_(*query.after))
    return stmt.order_by(ev.time.desc(), ev.chain_id.desc(), ev.seq.desc())


def event_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored event as JSON-ready values (time in RFC 3339 UTC)."""
    out = {name: row[name] for name in EVENT_FIELDS + CHAIN_FIELDS}
    out["time"] = rfc3339(row["time"])
    return out


def encode_cursor(time: datetime, chain_id: str, seq: int) -> str:
    raw = orjson.dumps([rfc3339(time), chain_id, seq])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        time_text, chain_id, seq = orjson.loads(raw)
        if not isinstance(chain_id, str) or not isinstance(seq, int):
            raise ValueError("cursor fields")
        return as_utc(datetime.fromisoformat(time_text)), chain_id, seq
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _bad(
            "cursor", cursor, "is not a cursor this API issued; pass next_cursor unchanged"
        ) from None


# --- CSV -------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def to_csv(events: Iterable[Mapping[str, Any]]) -> str:
    """Events as CSV; lists and maps as JSON; cells a spreadsheet would run are defused."""
    out = io.StringIO()
    writer = csv.writer(out)
    columns = EVENT_FIELDS + CHAIN_FIELDS
    writer.writerow(columns)
    for event in events:
        writer.writerow([_csv_cell(event[c]) for c in columns])
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # subject, path and user agent are chosen by callers
    return "" if value is None else value


# --- parameter parsing -----------------------------------------------------------------


def _bad(name: str, value: str, problem: str) -> BadRequest:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return BadRequest(
        f"query parameter {name}={shown!r} {problem}",
        reason_id="bad_audit_query",
        extra={"parameter": name},
    )


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if not value or len(value) > 500:
        raise _bad(name, value, "must be 1 to 500 characters")
    return value


def _time(params: Mapping[str, str], name: str) -> datetime | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise _bad(name, value, "must be ISO 8601, e.g. 2026-11-26T09:00:00Z") from None


def _int(params: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise _bad(name, value, f"must be a whole number from {low} to {high}")
    return int(value)


def _choice(params: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in allowed:
        raise _bad(name, value, f"must be one of {', '.join(allowed)}")
    return value
