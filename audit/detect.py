"""The detect stage: judge each response before it leaves, and act on what is found.

    precheck(subject, upstream, entity)  before forwarding: an active throttle, block or
                                         suspension placed by an earlier alert refuses at once
    observe(Observation)                 after filtering, before the body is sent: bump the
                                         shared counters once, run every detector on the same
                                         readings, open or update alerts, apply the strongest
                                         action to this very response

Nothing on this path touches the database: alerts are deduplicated in memory (per person +
detector + entity + scope, while activity continues within ``dedup``) and written by a
background task; notifications are sent by background tasks too (``audit/tracking.py``).

Holds (throttles, blocks, suspensions; ``audit/holds.py``) apply on every replica: one placed
here refuses at once here, is stored with its alert and announced, and the other replicas
refuse within about a second. Resolving the alert (on any replica) releases its hold
everywhere; reinstating a person releases their suspension. A replica stops tracking an
alert as soon as it learns of the release (an alert that held nothing: when its next write
finds it resolved), so the next finding opens a new alert, never updates a resolved one.

Verdicts (``audit/feedback.py``) reach every replica the same way: a false positive raises
the person's threshold for that detector; a benign or false-positive verdict clears that
detector's episode for the person and entity, so the next read is judged on what they read
after the verdict, not blocked again at once. A true positive clears nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from audit.alerts import AlertRecord, AlertStore
from audit.counters import Counters
from audit.detectors import build_detectors
from audit.detectors.base import (
    ACTION_RANK,
    ActionOrNone,
    Context,
    Finding,
    LocalClock,
    Need,
    Observation,
)
from audit.detectors.config import DetectionConfig
from audit.detectors.series import SeriesPlan
from audit.event import time_ordered_id
from audit.feedback import CLEARING_VERDICTS, Clear, Effects, take_clear
from audit.holds import EVERY_ENTITY, Hold, LocalHolds
from audit.notify import Notifier
from audit.tracking import AlertTracker
from gateway.access import PeopleActions
from gateway.errors import Forbidden, RequestRefused, TooManyRequests

__all__ = ["ExportGuard", "Observation", "Verdict"]

log = structlog.get_logger(__name__)
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
        self._clock = clock
        self._local = LocalClock(config.timezone)
        self._plan = SeriesPlan(config)
        self._detectors = build_detectors(config)
        self._detector_names = frozenset(d.name for d in self._detectors)
        self._departing_factor = config.detectors.departing.factor
        self._holds = holds or LocalHolds()  # replay and benchmarks: nothing to share
        self._feedback = self._holds.feedback
        self._tracker = AlertTracker(alerts, self._holds, notifier, config.dedup)
        self._holds.on_release(self._tracker.untrack)
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
        adjust = self._feedback.adjust_for(obs.subject)
        ctx = self._plan.context(obs, local, readings, departing, factor, adjust)
        clears = self._feedback.clears_for(obs.subject, obs.entity)
        findings: list[Finding] = []
        if clears is None:  # the common case: no officer cleared an episode of theirs
            for detector in self._detectors:
                findings += detector.check(ctx)
        else:
            for detector in self._detectors:
                cleared = self._cleared(ctx, clears.get(detector.name), needs, readings)
                findings += detector.check(cleared)
        if not findings:
            return NO_ACTION
        return self._act(obs, findings)

    def _cleared(
        self, ctx: Context, clear: Clear | None, needs: list[Need], readings: list[list[int]]
    ) -> Context:
        """``ctx`` as seen by a detector whose episode an officer cleared: the records read
        before the verdict left out. (Building the context again is safe: the hour habits,
        sessions and history it updates are the same for the same observation.)"""
        if clear is None:
            return ctx
        after = clear.subtract(needs, readings, ctx.obs.time)
        return self._plan.context(ctx.obs, ctx.local, after, ctx.departing, ctx.factor, ctx.adjust)

    def _act(self, obs: Observation, findings: list[Finding]) -> Verdict:
        ids = tuple(self._tracker.track(obs, f) for f in findings)
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
            self._tracker.spawn(
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
        self._tracker.report(rec)

    async def drain(self) -> None:
        """Wait until every alert so far is written and every notification has finished."""
        await self._tracker.drain()

    async def aclose(self) -> None:
        await self._tracker.aclose()
        await self._holds.close()
        await self._counters.aclose()

    # ── officer actions ─────────────────────────────────────────────────────────────────

    async def load(self) -> None:
        """Read the verdicts' effects and the holds in force, then follow them (at start)."""
        state = await asyncio.to_thread(self.alerts.feedback, self._clock())
        self._feedback.replace(state)
        await self._holds.start()

    async def acknowledge(self, alert_id: str, *, by: str, note: str = "") -> dict[str, Any]:
        await self.drain()
        return await asyncio.to_thread(self.alerts.acknowledge, alert_id, by=by, note=note)

    async def resolve(
        self, alert_id: str, *, by: str, verdict: str, note: str = ""
    ) -> dict[str, Any]:
        """Resolve an alert: release its hold; a benign or false-positive verdict clears the
        detector's episode, a false positive also raises the person's threshold."""
        await self.drain()
        clear = None
        if verdict in CLEARING_VERDICTS:
            clear = await self._take_clear(await asyncio.to_thread(self.alerts.get, alert_id))
        rule = self.config.false_positive
        alert, factor, clear = await asyncio.to_thread(
            self.alerts.resolve,
            alert_id,
            by=by,
            verdict=verdict,
            note=note,
            fp_step=rule.step,
            fp_max=rule.max,
            clear=clear,
        )
        effects = Effects(alert["detector"], alert["subject"], factor, clear)
        await self._holds.release_alert(alert_id, effects)
        return alert

    async def _take_clear(self, alert: dict[str, Any]) -> Clear | None:
        """Read, without adding to them, the counters a request of the alert's person and
        entity would bump now (a crawl: on the alert's collection)."""
        if alert["detector"] not in self._detector_names:
            return None  # counters_degraded: nobody's episode
        now = self._clock()
        upstream, path, query = "", "", {}
        params = self.config.detectors.crawl.params
        if alert["detector"] == "crawl" and params:
            upstream, _, path = alert["scope"].partition(":")
            query = {params[0]: "0"}  # a first page: counted as paginated, adds no deep page
        probe = Observation(
            now, alert["subject"], (), upstream, alert["entity"], "GET", path, query, 200, 0
        )
        needs = self._plan.needs(probe, self._local.local(now), self._local.offset(now))
        readings = await self._counters.add(now, needs)
        return take_clear(alert, needs, readings, now)

    async def release_person(self, subject: str) -> None:
        """Lift the person's suspension hold on every replica (an officer reinstated them)."""
        await self._holds.release_person(subject)

    def threshold_factor(self, detector: str, subject: str) -> float:
        return self._feedback.factor(detector, subject)
