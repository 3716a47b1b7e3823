"""Alert life cycle: tables, transitions and false-positive feedback.

States: ``open`` → ``acknowledged`` → ``resolved`` (``open`` → ``resolved`` too); resolved is
final. Resolving records a verdict: ``true_positive``, ``benign`` or ``false_positive``.
Every change, including the detector opening the alert, is a row in ``alert_transitions``.

What a verdict changes in detection (``audit/feedback.py``) is written in the resolving
transaction: a ``false_positive`` raises the person's threshold factor for that detector
(bounded); a ``benign`` or ``false_positive`` verdict clears that detector's episode for the
person and entity, so only records read after the verdict count towards a new crossing.

Holds (``audit/holds.py``) are written in the transaction of the alert that placed them and
deleted in the transaction that resolves it, under the alert row's lock: a hold can never
outlive its resolved alert, whichever replica placed it and whichever resolved it.

``AlertStore`` methods are synchronous (SQLAlchemy); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from audit.feedback import (
    CLEARING_VERDICTS,
    Clear,
    DetectorAdjustmentRow,
    FeedbackState,
    raise_threshold,
    read_feedback,
    store_clear,
)
from audit.holds import Hold, delete_alert_hold, store_hold
from audit.store import Base, make_sessionmaker
from gateway.errors import BadRequest, Conflict, NotFound

STATES = ("open", "acknowledged", "resolved")
VERDICTS = ("true_positive", "benign", "false_positive")
_ACTION_RANK = {"alert": 1, "throttle": 2, "block": 3, "suspend": 4}


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    detector: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    entity: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(512), default="")
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True, default="open")
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(16))
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer, default=1)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    explanation: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertTransitionRow(Base):
    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    who: Mapped[str] = mapped_column(String(255))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


TABLES = [
    Base.metadata.tables[n]
    for n in (
        "alerts",
        "alert_transitions",
        "detector_adjustments",
        "detector_clears",
        "alert_holds",
    )
]


@dataclass(slots=True)
class AlertRecord:
    """What the guard writes: a new alert or the running state of an open one."""

    id: str
    detector: str
    subject: str
    entity: str
    scope: str
    severity: str
    action: str
    window_start: float
    window_end: float
    count: int
    hits: int
    explanation: str
    evidence: dict[str, Any] = field(default_factory=dict)


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def alert_to_dict(row: AlertRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "detector": row.detector,
        "subject": row.subject,
        "entity": row.entity,
        "scope": row.scope,
        "severity": row.severity,
        "state": row.state,
        "verdict": row.verdict,
        "action": row.action,
        "window_start": _iso(row.window_start),
        "window_end": _iso(row.window_end),
        "count": row.count,
        "hits": row.hits,
        "explanation": row.explanation,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def _transition_to_dict(row: AlertTransitionRow) -> dict[str, Any]:
    return {
        "who": row.who,
        "from": row.from_state,
        "to": row.to_state,
        "verdict": row.verdict,
        "note": row.note,
        "at": _iso(row.at),
    }


class AlertStore:
    """Alerts in the database; see the module docstring for states and the FP rule."""

    def __init__(self, engine: Engine) -> None:
        self._session = make_sessionmaker(engine)
        self._engine = engine

    def create_tables(self) -> None:
        Base.metadata.create_all(self._engine, tables=TABLES)

    def save(self, record: AlertRecord, hold: Hold | None = None) -> bool:
        """Insert a new alert (with its ``open`` transition) or update its running count,
        and store ``hold``, the action it placed, if any.

        Returns ``False`` and writes nothing if the alert is resolved already (an officer
        resolved it through another replica): the guard must open a new alert instead.
        """
        now = datetime.now(UTC)
        with self._session.begin() as s:
            row = s.get(AlertRow, record.id, with_for_update=True)
            if row is not None and row.state == "resolved":
                return False
            if row is None:
                s.add(
                    AlertRow(
                        id=record.id,
                        detector=record.detector,
                        subject=record.subject,
                        entity=record.entity,
                        scope=record.scope,
                        severity=record.severity,
                        state="open",
                        action=record.action,
                        window_start=_ts(record.window_start),
                        window_end=_ts(record.window_end),
                        count=record.count,
                        hits=record.hits,
                        evidence=record.evidence,
                        explanation=record.explanation,
                        created_at=now,
                        updated_at=now,
                    )
                )
                s.flush()
                s.add(self._transition(record.id, f"detector:{record.detector}", None, "open", now))
            else:
                row.window_end = _ts(record.window_end)
                row.count, row.hits = record.count, record.hits
                row.evidence, row.explanation = record.evidence, record.explanation
                if _ACTION_RANK[record.action] > _ACTION_RANK.get(row.action, 0):
                    row.action, row.severity = record.action, record.severity
                row.updated_at = now
            if hold is not None:
                s.flush()  # the alert row exists before the hold that refers to it
                store_hold(s, hold)
        return True

    def list_alerts(
        self,
        *,
        state: str | None = None,
        subject: str | None = None,
        detector: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        if state is not None and state not in STATES:
            raise BadRequest(
                f"unknown state {state!r}; use one of {', '.join(STATES)}", reason_id="bad_filter"
            )
        query = select(AlertRow).order_by(AlertRow.created_at.desc()).limit(limit)
        for column, value in (
            (AlertRow.state, state),
            (AlertRow.subject, subject),
            (AlertRow.detector, detector),
        ):
            if value is not None:
                query = query.where(column == value)
        with self._session() as s:
            return [alert_to_dict(row) for row in s.scalars(query)]

    def get(self, alert_id: str) -> dict[str, Any]:
        """The alert with its evidence and every transition; ``NotFound`` if unknown."""
        with self._session() as s:
            row = self._row(s, alert_id)
            transitions = s.scalars(
                select(AlertTransitionRow)
                .where(AlertTransitionRow.alert_id == alert_id)
                .order_by(AlertTransitionRow.id)
            )
            out = alert_to_dict(row)
            out["evidence"] = row.evidence
            out["transitions"] = [_transition_to_dict(t) for t in transitions]
            return out

    def acknowledge(self, alert_id: str, *, by: str, note: str = "") -> dict[str, Any]:
        with self._session.begin() as s:
            row = self._row(s, alert_id, lock=True)
            self._move(s, row, "acknowledged", by=by, note=note, allowed_from=("open",))
        return self.get(alert_id)

    def resolve(
        self,
        alert_id: str,
        *,
        by: str,
        verdict: str,
        note: str = "",
        fp_step: float = 1.5,
        fp_max: float = 4.0,
        clear: Clear | None = None,
    ) -> tuple[dict[str, Any], float | None, Clear | None]:
        """Resolve with a verdict, releasing the alert's hold; returns the alert, for a
        false positive the person's new threshold factor for that detector (× ``fp_step``,
        at most ``fp_max``), and for a benign or false-positive verdict ``clear`` as stored."""
        if verdict not in VERDICTS:
            raise BadRequest(
                f"unknown verdict {verdict!r}; use one of {', '.join(VERDICTS)}",
                reason_id="bad_verdict",
            )
        factor = stored = None
        with self._session.begin() as s:
            row = self._row(s, alert_id, lock=True)
            self._move(
                s,
                row,
                "resolved",
                by=by,
                note=note,
                verdict=verdict,
                allowed_from=("open", "acknowledged"),
            )
            delete_alert_hold(s, alert_id)
            if verdict == "false_positive":
                factor = raise_threshold(s, row.detector, row.subject, fp_step, fp_max)
            if clear is not None and verdict in CLEARING_VERDICTS:
                stored = store_clear(s, clear)
        return self.get(alert_id), factor, stored

    def adjustments(self) -> dict[tuple[str, str], float]:
        """Every (detector, subject) → threshold factor raised by false positives."""
        with self._session() as s:
            return {
                (r.detector, r.subject): r.factor for r in s.scalars(select(DetectorAdjustmentRow))
            }

    def feedback(self, now: float, known_version: int | None = None) -> FeedbackState:
        """The verdicts' effects in force at ``now`` (factors only if changed)."""
        with self._session() as s:
            return read_feedback(s, now, known_version)

    def _row(self, s: Any, alert_id: str, *, lock: bool = False) -> AlertRow:
        """The alert; ``lock`` holds its row until commit (a state change checks, then moves)."""
        row = s.get(AlertRow, alert_id, with_for_update=lock)
        if row is None:
            raise NotFound(f"no alert with id {alert_id!r}", reason_id="alert_not_found")
        return row

    def _move(
        self,
        s: Any,
        row: AlertRow,
        to: str,
        *,
        by: str,
        note: str,
        allowed_from: tuple[str, ...],
        verdict: str | None = None,
    ) -> None:
        if row.state not in allowed_from:
            raise Conflict(
                f"alert {row.id} is {row.state}; it can become {to} only from "
                f"{' or '.join(allowed_from)}",
                reason_id="alert_transition_invalid",
                extra={"state": row.state},
            )
        now = datetime.now(UTC)
        s.add(self._transition(row.id, by, row.state, to, now, note=note, verdict=verdict))
        row.state, row.updated_at = to, now
        if verdict is not None:
            row.verdict = verdict

    @staticmethod
    def _transition(
        alert_id: str,
        who: str,
        frm: str | None,
        to: str,
        at: datetime,
        *,
        note: str = "",
        verdict: str | None = None,
    ) -> AlertTransitionRow:
        return AlertTransitionRow(
            alert_id=alert_id,
            who=who,
            from_state=frm,
            to_state=to,
            verdict=verdict,
            note=note,
            at=at,
        )
