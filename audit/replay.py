"""Backtest: feed audit-shaped events through the detectors on the events' own clock.

One JSON object per line: ``time`` (ISO 8601 or unix seconds), ``subject``, ``roles``,
``upstream``, ``entity``, ``method``, ``path``, ``status``, ``records`` and optionally
``query`` (an object, or taken from ``path`` after ``?``) and ``pii`` / ``pii_hits``.
Events without a subject or entity (refused before identification or routing) carry no
export and are skipped. Counters and the alert store are in memory: nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from sqlalchemy.pool import StaticPool

from audit.alerts import AlertStore
from audit.counters import MemoryCounters
from audit.detect import ExportGuard
from audit.detectors.base import Observation
from audit.detectors.config import DetectionConfig
from audit.store import make_engine
from gateway.errors import BadRequest


class ReplayError(BadRequest):
    """An input line cannot be read; the message names the line and the field."""

    default_reason = "replay_input_invalid"


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An alert the detectors would have raised, as of the end of the replay."""

    detector: str
    subject: str
    entity: str
    raised_at: float
    severity: str
    action: str
    count: int
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "subject": self.subject,
            "entity": self.entity,
            "raised_at": datetime.fromtimestamp(self.raised_at, UTC).isoformat(),
            "severity": self.severity,
            "action": self.action,
            "count": self.count,
            "explanation": self.explanation,
        }


class ReplayPeople:
    """The directory during a replay: a fixed set of departing people; actions are no-ops."""

    def __init__(self, departing: Iterable[str] = ()) -> None:
        self._departing = frozenset(departing)

    def is_departing(self, subject: str) -> bool:
        return subject in self._departing

    async def suspend(self, subject: str, *, by: str, reason: str) -> None:
        return None

    async def reinstate(self, subject: str, *, by: str, reason: str) -> None:
        return None

    async def mark_departing(self, subject: str, *, last_day: str | None, by: str) -> None:
        return None


class EventClock:
    """The guard's clock during a replay: the time of the event being fed."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _time(value: object, line: int) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise ReplayError(f"line {line}: time must be ISO 8601 or unix seconds, got {value!r}")


def parse_event(raw: dict[str, Any], line: int) -> Observation | None:
    """One audit-shaped event → an observation (``None`` if it carries no export)."""
    if not raw.get("subject") or not raw.get("entity"):
        return None
    path, _, query_string = str(raw.get("path", "")).partition("?")
    query = raw.get("query")
    if query is None:
        query = dict(parse_qsl(query_string))
    roles = raw.get("roles", [])
    records = raw.get("records", 0)
    if not isinstance(query, dict) or not isinstance(roles, list):
        raise ReplayError(f"line {line}: query must be an object and roles a list")
    if not isinstance(records, int) or isinstance(records, bool) or records < 0:
        raise ReplayError(f"line {line}: records must be a whole number >= 0, got {records!r}")
    return Observation(
        time=_time(raw.get("time"), line),
        subject=str(raw["subject"]),
        roles=tuple(sorted(str(r) for r in roles)),
        upstream=str(raw.get("upstream", "")),
        entity=str(raw["entity"]),
        method=str(raw.get("method", "GET")),
        path=path,
        query={str(k): str(v) for k, v in query.items()},
        status=int(raw.get("status", 200)),
        records=records,
        response_bytes=int(raw.get("response_bytes", 0)),
        pii_hits=raw.get("pii_hits") or raw.get("pii") or {},
        request_id=raw.get("request_id"),
    )


def read_events(lines: Iterable[str]) -> Iterator[Observation]:
    """Parse JSON lines; blank lines are skipped, anything else unreadable is an error."""
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ReplayError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ReplayError(f"line {number}: expected a JSON object")
        observation = parse_event(raw, number)
        if observation is not None:
            yield observation


async def replay(
    observations: Iterable[Observation],
    config: DetectionConfig,
    departing: Iterable[str] = (),
) -> list[RaisedAlert]:
    """Run the detectors over ``observations`` (in time order); return the alerts raised."""
    store = AlertStore(make_engine("sqlite://", poolclass=StaticPool))
    store.create_tables()
    clock = EventClock()
    guard = ExportGuard(config, MemoryCounters(), store, ReplayPeople(departing), clock=clock)
    raised: dict[str, float] = {}
    for observation in sorted(observations, key=lambda o: o.time):
        clock.now = observation.time
        verdict = await guard.observe(observation)
        for alert_id in verdict.alert_ids:
            raised.setdefault(alert_id, observation.time)
    await guard.aclose()
    alerts = []
    for alert_id, at in raised.items():
        row = store.get(alert_id)
        alerts.append(
            RaisedAlert(
                row["detector"],
                row["subject"],
                row["entity"],
                at,
                row["severity"],
                row["action"],
                row["count"],
                row["explanation"],
            )
        )
    return sorted(alerts, key=lambda a: a.raised_at)
