"""Holds: the throttles, blocks and suspensions that alerts place, in force on every replica.

A hold belongs to one alert (at most one each: an alert that escalates replaces its hold; a
weaker action never replaces a stronger one). The request path asks ``find``, a memory
lookup with no I/O. How the memory stays true across replicas:

    placed here       ``place`` puts it in memory at once, so it applies to the very request
                      that crossed the threshold; the guard then stores it in the alert's own
                      transaction (``AlertStore.save``) and calls ``stored``, which announces it
    placed elsewhere  the ``alert_holds`` table is the source of truth; every replica re-reads
                      the holds in force every ``refresh_s`` and at once when another replica
                      announces a change on the Redis channel ``wardgate:holds``
    released          resolving the alert deletes its hold in the resolve transaction;
                      reinstating a person deletes their suspension; both are announced.
                      Every replica tells its guard (``on_release``) as soon as it learns of
                      a release, so the guard stops tracking that alert: the next crossing
                      opens a new alert instead of updating the released one

The same refresh carries what officers' verdicts change in detection (``audit/feedback.py``:
false-positive threshold factors and clears): ``feedback`` is read with the holds, and a
verdict given here applies here at once and reaches the other replicas the same way.

Fail closed: while the database or Redis is away, the last known holds stay in force (a
throttle still ends at its time). A replica that cannot read the table at start does not
start (``start`` raises): serving without knowing who is blocked would let them through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Engine, ForeignKey, String, Text, delete, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from audit.detectors.base import ACTION_RANK, ActionOrNone
from audit.feedback import Effects, Feedback, FeedbackState, read_feedback
from audit.models import UTCDateTime
from audit.store import Base
from gateway.fanout import Fanout

__all__ = ["CHANNEL", "EVERY_ENTITY", "Hold", "HoldRow", "LocalHolds", "SharedHolds"]

CHANNEL = "wardgate:holds"
EVERY_ENTITY = "*"  # a suspension holds the person on every entity


class HoldRow(Base):
    """A hold in force; deleted when released, so the table stays as small as the holds."""

    __tablename__ = "alert_holds"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    entity: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(16))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    detail: Mapped[str] = mapped_column(Text)


@dataclass(frozen=True, slots=True)
class Hold:
    alert_id: str
    subject: str
    entity: str  # EVERY_ENTITY for a suspension
    action: ActionOrNone  # throttle, block or suspend
    until: float | None  # unix seconds; None: until released
    detail: str  # what the refused client is told


def _strength(hold: Hold) -> tuple[int, bool, float]:
    return ACTION_RANK[hold.action], hold.until is None, hold.until or 0.0


# ── the table, inside the caller's transaction or on its own ─────────────────────────────


def store_hold(session: Session, hold: Hold) -> None:
    """Insert or replace ``hold`` (the alert's transaction, so both land or neither)."""
    until = None if hold.until is None else datetime.fromtimestamp(hold.until, UTC)
    session.merge(
        HoldRow(
            alert_id=hold.alert_id,
            subject=hold.subject,
            entity=hold.entity,
            action=hold.action,
            until=until,
            detail=hold.detail,
        )
    )


def delete_alert_hold(session: Session, alert_id: str) -> None:
    session.execute(delete(HoldRow).where(HoldRow.alert_id == alert_id))


def _delete_suspensions(engine: Engine, subject: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            delete(HoldRow).where(HoldRow.subject == subject, HoldRow.entity == EVERY_ENTITY)
        )


def _load_in_force(
    engine: Engine, now: float, feedback_version: int | None
) -> tuple[dict[str, Hold], FeedbackState]:
    """The holds and the verdicts' effects in force at ``now``, in one session."""
    with Session(engine) as session:
        rows = session.scalars(
            select(HoldRow).where(
                or_(HoldRow.until.is_(None), HoldRow.until > datetime.fromtimestamp(now, UTC))
            )
        )
        holds = {
            r.alert_id: Hold(
                r.alert_id,
                r.subject,
                r.entity,
                cast(ActionOrNone, r.action),
                None if r.until is None else r.until.timestamp(),
                r.detail,
            )
            for r in rows
        }
        return holds, read_feedback(session, now, feedback_version)


# ── memory ───────────────────────────────────────────────────────────────────────────────


def _nobody(_alert_id: str) -> None:
    return None


class LocalHolds:
    """Holds of this process only: replay and benchmarks, where there is nothing to share.

    ``SharedHolds`` adds what other replicas placed and released; the request path and the
    guard use both the same way.
    """

    def __init__(self) -> None:
        self._mine: dict[str, Hold] = {}  # placed by this process, by alert id
        self._theirs: dict[str, Hold] = {}  # the table's holds at the last refresh
        self._stored: dict[str, int] = {}  # alert id → refresh epoch when its hold was stored
        self._epoch = 0  # refreshes begun so far
        self._index: dict[tuple[str, str], tuple[Hold, ...]] = {}
        self._released: Callable[[str], None] = _nobody
        self.feedback = Feedback()  # verdicts' effects: threshold factors and clears

    def on_release(self, released: Callable[[str], None]) -> None:
        """Call ``released(alert_id)`` for every alert whose hold is released (resolved or
        reinstated, here or on another replica)."""
        self._released = released

    def find(self, subject: str, entity: str, now: float) -> Hold | None:
        """The strongest hold on ``subject`` for ``entity`` in force at ``now`` (memory only)."""
        for key in ((subject, EVERY_ENTITY), (subject, entity)):
            for hold in self._index.get(key, ()):
                if hold.until is None or now < hold.until:
                    return hold
        return None

    def place(self, hold: Hold) -> None:
        """Put ``hold`` in force here at once (on the request path: one key is re-sorted)."""
        current = self._mine.get(hold.alert_id) or self._theirs.get(hold.alert_id)
        if current is not None and ACTION_RANK[current.action] > ACTION_RANK[hold.action]:
            return
        self._mine[hold.alert_id] = hold
        self._stored.pop(hold.alert_id, None)
        key = (hold.subject, hold.entity)
        if current is not None and (current.subject, current.entity) != key:
            self._reindex()  # escalated to a suspension: the hold moves to another key
            return
        others = [h for h in self._index.get(key, ()) if h.alert_id != hold.alert_id]
        self._index[key] = tuple(sorted([*others, hold], key=_strength, reverse=True))

    def unstored(self, alert_id: str) -> Hold | None:
        """The hold this process placed for ``alert_id`` and has not stored yet."""
        return None if alert_id in self._stored else self._mine.get(alert_id)

    async def stored(self, holds: list[Hold]) -> None:
        """``holds`` are in the table now (a hold placed again meanwhile is still unstored)."""
        for hold in holds:
            if self._mine.get(hold.alert_id) is hold:
                self._stored[hold.alert_id] = self._epoch

    def forget(self, alert_id: str) -> None:
        """Drop the hold of an alert that was resolved before its hold could be stored."""
        self._drop(lambda h: h.alert_id == alert_id)

    async def release_alert(self, alert_id: str, effects: Effects | None = None) -> None:
        """The alert was resolved (its table rows went in the same transaction): drop its
        hold and apply what the verdict changes in detection."""
        self._drop(lambda h: h.alert_id == alert_id)
        if effects is not None:
            self.feedback.apply(effects)
        self._released(alert_id)  # also an alert that held nothing: it is resolved

    async def release_person(self, subject: str) -> None:
        """The person was reinstated: lift their suspension (entity holds stay with alerts)."""
        for alert_id in self._drop(lambda h: h.subject == subject and h.entity == EVERY_ENTITY):
            self._released(alert_id)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _drop(self, match: Callable[[Hold], bool]) -> set[str]:
        """Drop the holds that ``match``; return their alerts."""
        dropped: set[str] = set()
        for holds in (self._mine, self._theirs):
            for alert_id in [i for i, h in holds.items() if match(h)]:
                del holds[alert_id]
                self._stored.pop(alert_id, None)
                dropped.add(alert_id)
        self._reindex()
        return dropped

    def _reindex(self) -> None:
        index: dict[tuple[str, str], list[Hold]] = {}
        merged = {**self._theirs, **self._mine}  # our own copy is the newer one
        for hold in sorted(merged.values(), key=_strength, reverse=True):
            index.setdefault((hold.subject, hold.entity), []).append(hold)
        self._index = {key: tuple(holds) for key, holds in index.items()}


# ── shared across replicas ───────────────────────────────────────────────────────────────


class SharedHolds(LocalHolds):
    """``LocalHolds`` plus the holds of every other replica; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        redis_url: str | None,
        clock: Callable[[], float] = time.time,
        *,
        refresh_s: float = 0.25,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._clock = clock
        # one refresh at a time, and releases wait for it: a read begun before a release
        # must not bring the released hold back (nor drop a clear given meanwhile)
        self._refreshing = asyncio.Lock()
        self._fanout = Fanout("holds", CHANNEL, redis_url, self.refresh, refresh_s=refresh_s)

    async def start(self) -> None:
        """Read the holds in force (raises if the database cannot answer), then follow."""
        await self.refresh()
        await self._fanout.start()

    async def close(self) -> None:
        await self._fanout.close()

    async def refresh(self) -> None:
        async with self._refreshing:
            self._epoch += 1
            epoch = self._epoch
            now = self._clock()
            theirs, feedback = await asyncio.to_thread(
                _load_in_force, self._engine, now, self.feedback.version
            )
            self.feedback.replace(feedback)
            known = dict(self._theirs)  # the table's holds as this replica knew them
            # a hold stored before this read began is in the table's answer, or was released
            for alert_id in [i for i, e in self._stored.items() if e < epoch]:
                del self._stored[alert_id]
                if (mine := self._mine.pop(alert_id, None)) is not None:
                    known[alert_id] = mine
            self._theirs = theirs
            self._reindex()
            # gone from the table before its time: resolved or reinstated on another replica
            for alert_id, hold in known.items():
                if alert_id not in theirs and (hold.until is None or hold.until > now):
                    self._released(alert_id)

    async def stored(self, holds: list[Hold]) -> None:
        await super().stored(holds)
        await self._fanout.announce()

    async def release_alert(self, alert_id: str, effects: Effects | None = None) -> None:
        async with self._refreshing:
            await super().release_alert(alert_id, effects)
        await self._fanout.announce()

    async def release_person(self, subject: str) -> None:
        await asyncio.to_thread(_delete_suspensions, self._engine, subject)
        async with self._refreshing:
            await super().release_person(subject)
        await self._fanout.announce()
