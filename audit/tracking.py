"""A replica's open alerts: deduplicated in memory, written and announced in the background.

    track(obs, finding)  open a new alert, or update the running one of the same person,
                         detector, entity and scope while activity continues within ``dedup``
                         (or the finding's own window); returns the alert's id
    report(rec)          an alert no finding tracks (the counters lost Redis)
    untrack(alert_id)    the alert was resolved: the next finding opens a new one
    spawn(coro)          a background task (a suspension, a notification)
    drain()              wait until every alert so far is written and every task finished

Only ``track`` runs on the request path, and touches no database: a background task writes
the changed alerts, each with the hold it placed in the same transaction, then announces the
holds and sends the notifications of new alerts. An alert found resolved when written (an
officer was faster) is untracked and its unstored hold dropped. While the database is away
the alerts are kept and the write is tried again every second.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from audit.alerts import AlertRecord, AlertStore
from audit.detectors.base import ACTION_RANK, Finding, Observation
from audit.event import time_ordered_id
from audit.holds import Hold, LocalHolds
from audit.notify import Notifier

__all__ = ["AlertTracker"]

log = structlog.get_logger(__name__)
_MAX_REQUEST_IDS = 10  # sample request ids kept as evidence per alert


@dataclass(slots=True)
class _Open:
    record: AlertRecord
    last_seen: float
    request_ids: list[str] = field(default_factory=list)


class AlertTracker:
    """See the module docstring."""

    def __init__(
        self, alerts: AlertStore, holds: LocalHolds, notifier: Notifier | None, dedup: int
    ) -> None:
        self._alerts = alerts
        self._holds = holds
        self._notifier = notifier
        self._dedup = dedup
        self._open: dict[tuple[str, str, str, str], _Open] = {}
        self._dirty: dict[str, AlertRecord] = {}
        self._new: set[str] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, obs: Observation, finding: Finding) -> str:
        """Open a new alert or update the running one for this person, detector and scope."""
        key = (finding.detector, obs.subject, obs.entity, finding.scope)
        current = self._open.get(key)
        # A finding about a day (or a 24-hour window) stays one alert for that window.
        gap = max(self._dedup, finding.window_s)
        if current is not None and obs.time - current.last_seen <= gap:
            rec = current.record
            rec.count = max(rec.count, finding.count)
            rec.hits += 1
            rec.window_end = obs.time
            rec.explanation = finding.explanation
            if ACTION_RANK[finding.action] > ACTION_RANK[rec.action]:
                rec.action, rec.severity = finding.action, finding.severity
            current.last_seen = obs.time
        else:
            if len(self._open) > 10_000:
                self._forget_idle(obs.time)
            rec = AlertRecord(
                id=time_ordered_id(),
                detector=finding.detector,
                subject=obs.subject,
                entity=obs.entity,
                scope=finding.scope,
                severity=finding.severity,
                action=finding.action,
                window_start=obs.time - finding.window_s,
                window_end=obs.time,
                count=finding.count,
                hits=1,
                explanation=finding.explanation,
            )
            current = self._open[key] = _Open(rec, obs.time)
            self._new.add(rec.id)
        if obs.request_id and len(current.request_ids) < _MAX_REQUEST_IDS:
            current.request_ids.append(obs.request_id)
        rec.evidence = {
            **finding.evidence,
            "requests": rec.hits,
            "request_ids": list(current.request_ids),
        }
        self._dirty_now(rec)
        return rec.id

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, o in self._open.items() if now - o.last_seen > self._dedup]:
            del self._open[key]

    def report(self, rec: AlertRecord) -> None:
        """Write and announce ``rec``, an alert that no finding updates."""
        self._new.add(rec.id)
        self._dirty_now(rec)

    def _dirty_now(self, rec: AlertRecord) -> None:
        self._dirty[rec.id] = rec
        self._idle.clear()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._write_loop())

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; ``drain`` waits for it."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("detection_background_failed", error=repr(task.exception()))

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = {
                i: dataclasses.replace(r, evidence=dict(r.evidence)) for i, r in self._dirty.items()
            }
            self._dirty.clear()
            new = {i for i in batch if i in self._new}
            self._new -= new
            holds = {i: h for i in batch if (h := self._holds.unstored(i)) is not None}
            try:
                closed = await asyncio.to_thread(self._write, list(batch.values()), holds)
            except Exception as exc:  # the database is away: keep the alerts, try again
                log.error("alert_write_failed", error=type(exc).__name__, pending=len(batch))
                for i, rec in batch.items():
                    self._dirty.setdefault(i, rec)
                self._new |= new
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            placed = [h for i, h in holds.items() if i not in closed]
            if placed:
                await self._holds.stored(placed)
            for alert_id in closed:
                self._holds.forget(alert_id)
                self.untrack(alert_id)
            if self._notifier is not None:
                for alert_id in new:
                    self.spawn(self._notifier.notify(_public(batch[alert_id])))
            if not self._dirty:
                self._idle.set()

    def _write(self, records: list[AlertRecord], holds: dict[str, Hold]) -> set[str]:
        """Store the alerts with the holds they placed; return those found resolved."""
        return {rec.id for rec in records if not self._alerts.save(rec, holds.get(rec.id))}

    def untrack(self, alert_id: str) -> None:
        """Stop tracking an alert an officer resolved; the next finding opens a new one."""
        for tracked in [k for k, o in self._open.items() if o.record.id == alert_id]:
            del self._open[tracked]

    async def drain(self) -> None:
        """Wait until every alert so far is written and every notification has finished."""
        await self._idle.wait()
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._worker is not None:
            self._worker.cancel()


def _public(rec: AlertRecord) -> dict[str, Any]:
    """The notification body: what an on-call officer needs, no evidence internals."""
    return {
        "id": rec.id,
        "detector": rec.detector,
        "subject": rec.subject,
        "entity": rec.entity,
        "severity": rec.severity,
        "action": rec.action,
        "count": rec.count,
        "explanation": rec.explanation,
        "window_end": rec.window_end,
    }
