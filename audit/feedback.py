"""What an officer's verdict changes in detection, and the memory copy every replica reads.

Two effects, both written in the transaction that resolves the alert and picked up by every
replica with the holds (``audit/holds.py``: the same poll and Redis announcement):

false-positive factor   each ``false_positive`` verdict multiplies that person's thresholds
                        for that detector by ``step`` (default 1.5), never beyond ``max``
                        (default ×4); table ``detector_adjustments``, kept for good
clear                   a ``benign`` or ``false_positive`` verdict ends that detector's
                        episode for that person and entity: the records they had read of it
                        up to the verdict no longer count for that detector; only records read
                        after the verdict count towards a new crossing. Daily rules (baseline,
                        peer, first access) start today's count again from the verdict; the
                        past days stay the person's history. Table ``detector_clears``; a clear
                        ends on its own once everything it subtracts has left every window
                        (at most the longest window, 24 h with the shipped policy)

A ``true_positive`` verdict clears nothing: the hold is released, but the person's counts
stand, so their next read over a limit blocks again.

A clear is a *count* offset, not a time cut: at the verdict the guard reads the person's
counter buckets (the shared ones when counters are in Redis) and stores, per series, how
many records each bucket held then. Later readings subtract those per bucket, so records
read after the verdict in the very same bucket still count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Integer, String, delete, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.counters import bucket_of
from audit.detectors.base import Need
from audit.models import UTCDateTime
from audit.store import Base

__all__ = ["Clear", "DetectorAdjustmentRow", "Effects", "Feedback", "FeedbackState", "take_clear"]

CLEARING_VERDICTS = ("benign", "false_positive")
_DAY_S = 86_400


class DetectorAdjustmentRow(Base):
    __tablename__ = "detector_adjustments"

    detector: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    factor: Mapped[float] = mapped_column(Float)
    false_positives: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ClearRow(Base):
    """A clear in force; rows past ``expires_at`` are deleted by the next verdict."""

    __tablename__ = "detector_clears"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    detector: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity: Mapped[str] = mapped_column(String(128), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"))
    cleared_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    offsets: Mapped[dict[str, Any]] = mapped_column(JSON)  # series key → {last, counts}


@dataclass(frozen=True, slots=True)
class Offset:
    """What one series held per bucket at the verdict; subtracted until bucket ``last``."""

    last: int
    counts: Mapping[int, int]


@dataclass(frozen=True, slots=True)
class Clear:
    subject: str
    detector: str
    entity: str
    alert_id: str
    at: float
    expires: float
    offsets: Mapping[str, Offset] = field(default_factory=dict)

    def subtract(
        self, needs: Sequence[Need], readings: list[list[int]], now: float
    ) -> list[list[int]]:
        """``readings`` with the records counted before the verdict taken out."""
        out = []
        for need, values in zip(needs, readings, strict=True):
            offset = self.offsets.get(need.key)
            newest = bucket_of(now, need)
            if offset is None or newest > offset.last:
                out.append(values)
                continue
            first, counts = newest - len(values) + 1, offset.counts
            out.append([max(0, n - counts.get(first + i, 0)) for i, n in enumerate(values)])
        return out


def take_clear(
    alert: Mapping[str, Any], needs: Sequence[Need], readings: list[list[int]], now: float
) -> Clear:
    """The clear for ``alert`` from the person's counter ``readings`` at the verdict.

    A daily series keeps only today's bucket: the past days are the person's history, which
    the baseline rules compare today with, not part of the episode.
    """
    offsets: dict[str, Offset] = {}
    expires = now
    for need, values in zip(needs, readings, strict=True):
        newest = bucket_of(now, need)
        if need.bucket_s >= _DAY_S:
            last, kept = newest, {newest: values[-1]}
        else:
            last = newest + len(values) - 1
            first = newest - len(values) + 1
            kept = {first + i: n for i, n in enumerate(values)}
        counts = {i: n for i, n in kept.items() if n}
        if counts:
            offsets[need.key] = Offset(last, counts)
            expires = max(expires, (last + 1) * need.bucket_s - need.offset_s)
    return Clear(
        alert["subject"], alert["detector"], alert["entity"], alert["id"], now, expires, offsets
    )


# ── the tables, inside the resolving transaction or a refresh ────────────────────────────


def raise_threshold(s: Session, detector: str, subject: str, step: float, cap: float) -> float:
    """One more false positive: the person's factor for ``detector`` × ``step``, at most ``cap``."""
    now = datetime.now(UTC)
    adj = s.get(DetectorAdjustmentRow, (detector, subject))
    if adj is None:
        adj = DetectorAdjustmentRow(
            detector=detector, subject=subject, factor=1.0, false_positives=0, updated_at=now
        )
        s.add(adj)
    adj.factor = min(adj.factor * step, cap)
    adj.false_positives += 1
    adj.updated_at = now
    return float(adj.factor)


def store_clear(s: Session, clear: Clear) -> Clear:
    """Write ``clear`` and return it as stored: offsets of an earlier clear of the same
    episode are kept for the series this one did not read (another collection of a crawl)."""
    at = datetime.fromtimestamp(clear.at, UTC)
    s.execute(delete(ClearRow).where(ClearRow.expires_at <= at))  # keeps the table small
    # JSON object keys are text; ``_clear_of`` turns the bucket indices back into numbers
    offsets = {
        key: {"last": o.last, "counts": {str(i): n for i, n in o.counts.items()}}
        for key, o in clear.offsets.items()
    }
    expires = datetime.fromtimestamp(clear.expires, UTC)
    row = s.get(ClearRow, (clear.subject, clear.detector, clear.entity), with_for_update=True)
    if row is None:
        row = ClearRow(subject=clear.subject, detector=clear.detector, entity=clear.entity)
        s.add(row)
    else:
        offsets = {**row.offsets, **offsets}
        expires = max(expires, row.expires_at)
    row.alert_id, row.cleared_at, row.expires_at, row.offsets = clear.alert_id, at, expires, offsets
    return _clear_of(row)


@dataclass(frozen=True, slots=True)
class Effects:
    """What one verdict changed: the person's new factor for the detector, and the clear."""

    detector: str
    subject: str
    factor: float | None
    clear: Clear | None


@dataclass(frozen=True, slots=True)
class FeedbackState:
    """One read of both tables; ``factors`` is ``None`` when ``version`` did not move."""

    version: int
    factors: dict[tuple[str, str], float] | None
    clears: list[Clear]


def read_feedback(s: Session, now: float, known_version: int | None) -> FeedbackState:
    """The factors (only if changed: every false positive adds one to the version) and the
    clears in force at ``now``."""
    version = int(s.scalar(select(func.sum(DetectorAdjustmentRow.false_positives))) or 0)
    factors = None
    if version != known_version:
        factors = {
            (r.detector, r.subject): r.factor for r in s.scalars(select(DetectorAdjustmentRow))
        }
    rows = s.scalars(select(ClearRow).where(ClearRow.expires_at > datetime.fromtimestamp(now, UTC)))
    return FeedbackState(version, factors, [_clear_of(r) for r in rows])


def _clear_of(row: ClearRow) -> Clear:
    offsets = {
        key: Offset(o["last"], {int(i): n for i, n in o["counts"].items()})
        for key, o in row.offsets.items()
    }
    return Clear(
        row.subject,
        row.detector,
        row.entity,
        row.alert_id,
        row.cleared_at.timestamp(),
        row.expires_at.timestamp(),
        offsets,
    )


# ── memory ───────────────────────────────────────────────────────────────────────────────


def _unadjusted(_detector: str) -> float:
    return 1.0


class Feedback:
    """This replica's copy of the factors and clears; the request path reads only this."""

    def __init__(self) -> None:
        self._factors: dict[tuple[str, str], float] = {}
        self._clears: dict[tuple[str, str], dict[str, Clear]] = {}  # (subject, entity) → …
        self._version: int | None = None

    def factor(self, detector: str, subject: str) -> float:
        return self._factors.get((detector, subject), 1.0)

    def adjust_for(self, subject: str) -> Callable[[str], float]:
        """The person's false-positive factors, by detector."""
        if not self._factors:
            return _unadjusted
        factors = self._factors
        return lambda detector: factors.get((detector, subject), 1.0)

    def clears_for(self, subject: str, entity: str) -> Mapping[str, Clear] | None:
        """The clears on ``subject`` and ``entity``, by detector (``None``: the common case)."""
        return self._clears.get((subject, entity))

    def apply(self, effects: Effects) -> None:
        """Apply a verdict given here at once (the other replicas read it at their refresh)."""
        if effects.factor is not None:
            self._factors[(effects.detector, effects.subject)] = effects.factor
        clear = effects.clear
        if clear is not None:
            live = [c for by in self._clears.values() for c in by.values() if c.expires > clear.at]
            self._set_clears([c for c in live if not _same_episode(c, clear)] + [clear])

    def replace(self, state: FeedbackState) -> None:
        """Take a read of the tables (a refresh) as the new truth."""
        if state.factors is not None:
            self._factors = state.factors
        self._version = state.version
        self._set_clears(state.clears)

    @property
    def version(self) -> int | None:
        return self._version

    def _set_clears(self, clears: list[Clear]) -> None:
        index: dict[tuple[str, str], dict[str, Clear]] = {}
        for clear in clears:
            index.setdefault((clear.subject, clear.entity), {})[clear.detector] = clear
        self._clears = index


def _same_episode(a: Clear, b: Clear) -> bool:
    return (a.subject, a.detector, a.entity) == (b.subject, b.detector, b.entity)
