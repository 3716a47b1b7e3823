"""Which counter series one observation bumps, and how their readings become a Context.

Every detector reads the same readings, so the guard makes exactly one counters call per
observation. Keys are ``<kind>|<subject>|<what>``; the counters add their own prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from audit.detectors.base import (
    HISTORY_DAYS,
    Context,
    LocalTime,
    Need,
    Observation,
)
from audit.detectors.config import DetectionConfig
from audit.detectors.crawl import page_index
from audit.detectors.history import PersonalHistory, personal_history
from audit.detectors.off_hours import OffHoursDetector
from audit.detectors.volume import WINDOW_BUCKETS, VolumeDetector

DAY_BUCKETS = HISTORY_DAYS + 1  # 30 complete days and today
# a person's series names for one entity: ((volume window key, bucket s), …), day, day of
# every entity, off hours
_Keys = tuple[tuple[tuple[str, int], ...], str, str, str]


class HourHabits:
    """The local hours at which each person has read records, over the last 30 days.

    In memory per replica: an hour becomes usual after a person read records at it on
    ``usual_days`` different days before today. Hours within ``margin`` of a usual hour
    count too: an early start, a late finish, the hour after a Saturday morning's work.
    """

    def __init__(self, usual_days: int, margin: int) -> None:
        self._usual_days = usual_days
        self._margin = margin
        self._days: dict[str, list[list[int]]] = {}

    def seen(self, subject: str, local: LocalTime) -> None:
        """Record activity at this local hour today."""
        hours = self._days.get(subject)
        if hours is None:
            hours = self._days[subject] = [[] for _ in range(24)]
        days = hours[local.hour]
        if not days or days[-1] != local.day:
            oldest = local.day - HISTORY_DAYS
            days[:] = [d for d in days if d >= oldest]
            days.append(local.day)

    def usual(self, subject: str, local: LocalTime) -> bool:
        """True if this hour, or one within ``margin``, was usual for the person before today."""
        hours = self._days.get(subject)
        if hours is None:
            return False
        oldest = local.day - HISTORY_DAYS
        for hour in range(local.hour - self._margin, local.hour + self._margin + 1):
            before = [d for d in hours[hour % 24] if oldest <= d < local.day]
            if len(before) >= self._usual_days:
                return True
        return False


class Sessions:
    """Whether each person's current session began off hours (in memory, per replica).

    A session is a run of reads with no pause of ``break_s`` or more. Evening overtime that
    continues a working day is one session begun in working hours; a read at 2 a.m. after a
    night's pause starts a session off hours. A replica that missed the start of a session
    sees it begin later, off hours: it errs towards judging, never towards exempting.
    """

    def __init__(self, break_s: int) -> None:
        self._break_s = break_s
        self._last: dict[str, tuple[float, bool]] = {}  # subject → (last read, began off hours)

    def began_off_hours(self, subject: str, now: float, off_hours: bool) -> bool:
        last = self._last.get(subject)
        began_off = off_hours if last is None or now - last[0] >= self._break_s else last[1]
        if last is None and len(self._last) > 200_000:
            self._last.clear()
        self._last[subject] = (max(now, last[0]) if last else now, began_off)
        return began_off


class SeriesPlan:
    """Compiled once from the detection config; two calls per observation."""

    def __init__(self, config: DetectionConfig) -> None:
        d = config.detectors
        self._windows = VolumeDetector(d.volume).windows if d.volume.enabled else ()
        self._crawl = d.crawl if d.crawl.enabled else None
        self._hours = OffHoursDetector(d.off_hours, config.working_hours)
        self._habits = HourHabits(d.off_hours.usual_days, d.off_hours.usual_margin)
        self._sessions = Sessions(d.off_hours.session_break)
        b = d.baseline
        self._summarise = partial(
            personal_history,
            learning_days=b.learning_days,
            drip_days=b.drip_days,
            drip_cap=b.drip_cap,
        )
        off = d.off_hours
        self._off_bucket = off.window // WINDOW_BUCKETS if off.enabled else None
        self._keys: dict[tuple[str, str], _Keys] = {}  # (subject, entity) → series names
        self._collections: dict[tuple[str, str, str], tuple[str, str]] = {}  # crawl series
        # Past days do not change during a day: each person's history is computed once a day.
        self._history: dict[tuple[str, str], tuple[int, PersonalHistory]] = {}

    def needs(self, obs: Observation, local: LocalTime, offset_s: int) -> list[Need]:
        """The series to bump, in the order ``context`` reads them back: the volume windows,
        the two daily series, then the crawl pair and the off-hours series when they apply."""
        who, n = obs.subject, obs.records
        keys = self._keys.get((who, obs.entity))
        if keys is None:
            keys = self._series_keys(who, obs.entity)
        needs = [Need(key, bucket_s, WINDOW_BUCKETS, n) for key, bucket_s in keys[0]]
        needs.append(Need(keys[1], 86400, DAY_BUCKETS, n, offset_s))
        needs.append(Need(keys[2], 86400, DAY_BUCKETS, n, offset_s))
        if self._crawl is not None and obs.query:
            index = page_index(obs.query, self._crawl)
            if index is not None:
                pages, records = self._crawl_keys(who, obs.upstream, obs.path)
                bucket = self._crawl.window // WINDOW_BUCKETS
                deeper = 1 if index >= self._crawl.depth else 0
                needs.append(Need(pages, bucket, WINDOW_BUCKETS, deeper))
                needs.append(Need(records, bucket, WINDOW_BUCKETS, n))
        if self._off_bucket is not None and self._hours.is_off_hours(local.hour, local.weekday):
            needs.append(Need(keys[3], self._off_bucket, WINDOW_BUCKETS, n))
        return needs

    def _series_keys(self, who: str, entity: str) -> _Keys:
        """The person's series names for ``entity``, built once (not per request)."""
        if len(self._keys) > 200_000:
            self._keys.clear()
        windows = tuple((f"w{w}|{who}|{entity}", w // WINDOW_BUCKETS) for w in self._windows)
        keys = (windows, f"d|{who}|{entity}", f"d|{who}|*", f"o|{who}|{entity}")
        self._keys[(who, entity)] = keys
        return keys

    def _crawl_keys(self, who: str, upstream: str, path: str) -> tuple[str, str]:
        """The person's deep-page and record series names for one collection."""
        keys = self._collections.get((who, upstream, path))
        if keys is None:
            if len(self._collections) > 200_000:
                self._collections.clear()
            collection = f"{upstream}:{path}"
            keys = self._collections[(who, upstream, path)] = (
                f"cp|{who}|{collection}",
                f"cr|{who}|{collection}",
            )
        return keys

    def context(
        self,
        obs: Observation,
        local: LocalTime,
        readings: list[list[int]],
        departing: bool,
        factor: float,
        adjust: Callable[[str], float],
    ) -> Context:
        nw = len(self._windows)
        # after the windows and days, ``needs`` adds the crawl pair and/or the off-hours
        # series: how many follow says which
        extra = readings[nw + 2 :]
        crawl_pages = crawl_records = off_records = None
        if len(extra) >= 2:
            crawl_pages, crawl_records = sum(extra[0]), sum(extra[1])
        if len(extra) % 2:
            off_records = sum(extra[-1])
        self._habits.seen(obs.subject, local)
        off_hours = off_records is not None
        session_off = self._sessions.began_off_hours(obs.subject, obs.time, off_hours)
        usual = off_hours and session_off and self._habits.usual(obs.subject, local)
        days, days_all = readings[nw], readings[nw + 1]
        key = (obs.subject, obs.entity)
        cached = self._history.get(key)
        if cached is None or cached[0] != local.day:
            if len(self._history) > 200_000:
                self._history.clear()
            history = self._summarise(days, days_all)
            cached = self._history[key] = (local.day, history)
        # positional: keyword arguments cost about 1 µs a request here (order as in Context)
        return Context(
            obs,
            local,
            departing,
            readings[:nw],  # windows
            days,
            days_all,
            crawl_pages,
            crawl_records,
            off_records,
            usual,
            session_off,
            factor,
            adjust,
            cached[1],  # history
        )
