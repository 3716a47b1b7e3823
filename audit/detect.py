"""The detect stage: judge each response before it leaves, and act on what is found.

    precheck(subject, upstream, entity)  before forwarding: an active throttle, block or
                                         suspension placed by an earlier alert refuses at once
    observe(Observation)                 after filtering, before the body is sent: bump the
                                         shared counters once, run every detector on the same
                                         readings, open or update alerts, apply the strongest
                                         action to this very response

Nothing on this path touches the database: alerts are deduplicated in memory (per person +
detector + entity + scope, while activity continues within ``dedup``) and written by a
background task; notifications are sent by background tasks too.

Holds (throttles, blocks, suspensions; ``audit/holds.py``) apply on every replica: one placed
here refuses at once here, is stored with its alert and announced, and the other replicas
refuse within about a second. Resolving the alert (on any replica) releases its hold
everywhere; reinstating a person releases their suspension. An alert resolved elsewhere
while this replica still tracks it is not updated again: the next finding opens a new one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from audit.alerts import AlertRecord, AlertStore
from audit.counters import Counters
from audit.detectors import build_detectors
from audit.detectors.base import ACTION_RANK, ActionOrNone, Finding, LocalClock, Observation
from audit.detectors.config import DetectionConfig
from audit.detectors.series import SeriesPlan
from audit.event import time_ordered_id
from audit.holds import EVERY_ENTITY, Hold, LocalHolds
from audit.notify import Notifier
from gateway.access import PeopleActions
from gateway.errors import Forbidden, RequestRefused, TooManyRequests

__all__ = ["ExportGuard", "Observation", "Verdict"]

log = structlog.get_logger(__name__)
_MAX_REQUEST_IDS = 10  # sample request ids kept as evidence per alert
_REASONS = {
    "throttle": "export_throttled",
    "block": "export_blocked",
    "suspend": "person_suspended",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a request: ``none`` and ``alert`` let it through, the rest refuse."""

    action: ActionOrNone = "none"
    retry_after_s: int | None = None
    reason_id: str | None = None
    detail: str = ""
    alert_ids: tuple[str, ...] = ()

    @property
    def refused(self) -> bool:
        return ACTION_RANK[self.action] >= ACTION_RANK["throttle"]

    def error(self) -> RequestRefused | None:
        """The error to send instead of the response, or ``None`` to let it through."""
        if not self.refused:
            return None
        extra = {"alert_ids": list(self.alert_ids)}
        if self.action == "throttle":
            retry = str(self.retry_after_s or 1)
            return TooManyRequests(
                self.detail, reason_id=self.reason_id, extra=extra, headers={"retry-after": retry}
            )
        return Forbidden(self.detail, reason_id=self.reason_id, extra=extra)


NO_ACTION = Verdict()


@dataclass(slots=True)
class _Open:
    record: AlertRecord
    last_seen: float
    request_ids: list[str] = field(default_factory=list)


def _unadjusted(_detector: str) -> float:
    return 1.0


class ExportGuard:
    """Bulk-export detection and its actions; see the module docstring."""

    def __init__(
        self,
        config: DetectionConfig,
        counters: Counters,
        alerts: AlertStore,
        people: PeopleActions,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        holds: LocalHolds | None = None,
    ) -> None:
        self.config = config
        self.alerts = alerts
        self._counters = counters
        self._people = people
        self._notifier = notifier
        self._clock = clock
        self._local = LocalClock(config.timezone)
        self._plan = SeriesPlan(config)
        self._detectors = build_detectors(config)
        self._departing_factor = config.detectors.departing.factor
        self._adjustments: dict[tuple[str, str], float] = {}
        self._holds = holds or LocalHolds()  # replay and benchmarks: nothing to share
        self._open: dict[tuple[str, str, str, str], _Open] = {}
        self._dirty: dict[str, AlertRecord] = {}
        self._new: set[str] = set()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._degraded_alerted = False

    # ── request path ────────────────────────────────────────────────────────────────────

    async def precheck(self, subject: str, upstream: str, entity: str) -> Verdict:
        """Refuse before forwarding if an earlier alert throttled, blocked or suspended."""
        now = self._clock()
        hold = self._holds.find(subject, entity, now)
        if hold is None:
            return NO_ACTION
        retry = None if hold.until is None else max(1, round(hold.until - now))
        return Verdict(hold.action, retry, _REASONS[hold.action], hold.detail, (hold.alert_id,))

    async def observe(self, obs: Observation) -> Verdict:
        """Count this response's records and apply the strongest action of every detector."""
        if obs.records <= 0:
            return NO_ACTION
        offset = self._local.offset(obs.time)
        local = self._local.local(obs.time)
        needs = self._plan.needs(obs, local, offset)
        readings = await self._counters.add(obs.time, needs)
        if self._counters.degraded != self._degraded_alerted:
            self._on_counters_state(obs.time)
        departing = self._people.is_departing(obs.subject)
        factor = self._departing_factor if departing else 1.0
        ctx = self._plan.context(
            obs, local, needs, readings, departing, factor, self._adjust_for(obs.subject)
        )
        findings = [f for detector in self._detectors for f in detector.check(ctx)]
        if not findings:
            return NO_ACTION
        return self._act(obs, findings)

    def _adjust_for(self, subject: str) -> Callable[[str], float]:
        """The person's false-positive factors, by detector."""
        if not self._adjustments:
            return _unadjusted
        adjustments = self._adjustments
        return lambda detector: adjustments.get((detector, subject), 1.0)

    def _act(self, obs: Observation, findings: list[Finding]) -> Verdict:
        ids = tuple(self._track(obs, f) for f in findings)
        strongest = max(range(len(findings)), key=lambda i: ACTION_RANK[findings[i].action])
        finding, alert_id = findings[strongest], ids[strongest]
        log.info(
            "export_alert",
            detector=finding.detector,
            subject=obs.subject,
            entity=obs.entity,
            action=finding.action,
            alert_id=alert_id,
        )
        if finding.action == "alert":
            return Verdict("alert", None, None, finding.explanation, ids)
        throttle_s = self.config.throttle
        until = obs.time + throttle_s if finding.action == "throttle" else None
        detail = self._refusal_detail(finding, alert_id, throttle_s)
        entity = EVERY_ENTITY if finding.action == "suspend" else obs.entity
        self._holds.place(Hold(alert_id, obs.subject, entity, finding.action, until, detail))
        if finding.action == "suspend":
            self._spawn(
                self._people.suspend(
                    obs.subject, by=f"detector:{finding.detector}", reason=finding.explanation
                )
            )
        retry = throttle_s if finding.action == "throttle" else None
        return Verdict(finding.action, retry, _REASONS[finding.action], detail, ids)

    @staticmethod
    def _refusal_detail(finding: Finding, alert_id: str, throttle_s: int) -> str:
        if finding.action == "throttle":
            then = f"try again in {max(1, throttle_s // 60)} minutes"
        elif finding.action == "block":
            then = "a security officer must review the alert before exports resume"
        else:
            then = "your access is suspended until a security officer reinstates it"
        return f"{finding.explanation}; {then} (alert {alert_id})"

    def _track(self, obs: Observation, finding: Finding) -> str:
        """Open a new alert or update the running one for this person, detector and scope."""
        key = (finding.detector, obs.subject, obs.entity, finding.scope)
        current = self._open.get(key)
        # A finding about a day (or a 24-hour window) stays one alert for that window.
        gap = max(self.config.dedup, finding.window_s)
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
        self._mark_dirty(rec)
        return rec.id

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, o in self._open.items() if now - o.last_seen > self.config.dedup]:
            del self._open[key]

    def _on_counters_state(self, now: float) -> None:
        self._degraded_alerted = self._counters.degraded
        if not self._degraded_alerted:
            log.info("counters_shared_again")
            return
        rec = AlertRecord(
            id=time_ordered_id(),
            detector="counters_degraded",
            subject="*",
            entity="*",
            scope="",
            severity="high",
            action="alert",
            window_start=now,
            window_end=now,
            count=0,
            hits=1,
            explanation=(
                "shared counters (Redis) are unreachable; each replica counts only "
                "its own traffic until Redis answers again"
            ),
        )
        self._new.add(rec.id)
        self._mark_dirty(rec)

    # ── background: alert writes and notifications ─────────────────────────────────────

    def _mark_dirty(self, rec: AlertRecord) -> None:
        self._dirty[rec.id] = rec
        self._idle.clear()
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._write_loop())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
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
                self._untrack(alert_id)
            if self._notifier is not None:
                for alert_id in new:
                    self._spawn(self._notifier.notify(_public(batch[alert_id])))
            if not self._dirty:
                self._idle.set()

    def _write(self, records: list[AlertRecord], holds: dict[str, Hold]) -> set[str]:
        """Store the alerts with the holds they placed; return those found resolved."""
        return {rec.id for rec in records if not self.alerts.save(rec, holds.get(rec.id))}

    def _untrack(self, alert_id: str) -> None:
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
        await self._holds.close()
        await self._counters.aclose()

    # ── officer actions ─────────────────────────────────────────────────────────────────

    async def load(self) -> None:
        """Load the false-positive threshold factors and the holds in force (once, at start).

        Raises if the database cannot answer: a replica that does not know who is blocked
        must not serve (see ``audit/holds.py``).
        """
        self._adjustments = await asyncio.to_thread(self.alerts.adjustments)
        await self._holds.start()

    async def acknowledge(self, alert_id: str, *, by: str, note: str = "") -> dict[str, Any]:
        await self.drain()
        return await asyncio.to_thread(self.alerts.acknowledge, alert_id, by=by, note=note)

    async def resolve(
        self, alert_id: str, *, by: str, verdict: str, note: str = ""
    ) -> dict[str, Any]:
        """Resolve an alert: release its holds; a false positive raises the person's threshold."""
        await self.drain()
        rule = self.config.false_positive
        alert, factor = await asyncio.to_thread(
            self.alerts.resolve,
            alert_id,
            by=by,
            verdict=verdict,
            note=note,
            fp_step=rule.step,
            fp_max=rule.max,
        )
        self._untrack(alert_id)
        await self._holds.release_alert(alert_id)
        if factor is not None:
            self._adjustments[(alert["detector"], alert["subject"])] = factor
        return alert

    async def release_person(self, subject: str) -> None:
        """Lift the person's suspension hold on every replica (an officer reinstated them)."""
        await self._holds.release_person(subject)

    def threshold_factor(self, detector: str, subject: str) -> float:
        return self._adjustments.get((detector, subject), 1.0)


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
