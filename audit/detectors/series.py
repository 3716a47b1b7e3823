"""Which counter series one observation bumps, and how their readings become a Context.

Every detector reads the same readings, so the guard makes exactly one counters call per
observation. Keys are ``<kind>|<subject>|<what>``; the counters add their own prefix.
"""

from __future__ import annotations

from collections.abc import Callable

from audit.detectors.base import (
    HISTORY_DAYS,
    Context,
    LocalTime,
    Need,
    Observation,
    robust_z,
)
from audit.detectors.config import DetectionConfig
from audit.detectors.crawl import page_index
from audit.detectors.off_hours import OffHoursDetector
from audit.detectors.volume import WINDOW_BUCKETS, VolumeDetector

DAY_BUCKETS = HISTORY_DAYS + 1  # 30 complete days and today


class HourHabits:
    """The local hours at which each person has read records, over the last 30 days.

    In memory per replica: an hour becomes usual after a person read records at it on
    ``usual_days`` different days.
    """

    def __init__(self, usual_days: int) -> None:
        self._usual_days = usual_days
        self._days: dict[str, list[list[int]]] = {}

    def seen(self, subject: str, local: LocalTime) -> bool:
        """Record activity now; return True if this hour was already usual before today."""
        hours = self._days.get(subject)
        if hours is None:
            hours = self._days[subject] = [[] for _ in range(24)]
        days = hours[local.hour]
        if not days or days[-1] != local.day:
            oldest = local.day - HISTORY_DAYS
            days[:] = [d for d in days if d >= oldest]
            days.append(local.day)
        return len(days) - 1 >= self._usual_days


class SeriesPlan:
    """Compiled once from the detection config; two calls per observation."""

    def __init__(self, config: DetectionConfig) -> None:
        d = config.detectors
        self._windows = VolumeDetector(d.volume).windows if d.volume.enabled else ()
        self._crawl = d.crawl if d.crawl.enabled else None
        self._off = d.off_hours if d.off_hours.enabled else None
        self._hours = OffHoursDetector(d.off_hours, config.working_hours)
        self._habits = HourHabits(d.off_hours.usual_days)
        # Past days do not change during a day: each person's history is computed once a day.
        self._history: dict[tuple[str, str], tuple[int, tuple[int, ...], float, float, float]] = {}

    def needs(self, obs: Observation, local: LocalTime, offset_s: int) -> list[Need]:
        """The series to bump, in the order ``context`` reads them back."""
        who, n = obs.subject, obs.records
        needs = [
            Need(f"w{w}|{who}|{obs.entity}", w // WINDOW_BUCKETS, WINDOW_BUCKETS, n)
            for w in self._windows
        ]
        needs.append(Need(f"d|{who}|{obs.entity}", 86400, DAY_BUCKETS, n, offset_s))
        needs.append(Need(f"d|{who}|*", 86400, DAY_BUCKETS, n, offset_s))
        if self._crawl is not None:
            index = page_index(obs.query, self._crawl)
            if index is not None:
                collection = f"{obs.upstream}:{obs.path}"
                bucket = self._crawl.window // WINDOW_BUCKETS
                deeper = 1 if index >= self._crawl.depth else 0
                needs.append(Need(f"cp|{who}|{collection}", bucket, WINDOW_BUCKETS, deeper))
                needs.append(Need(f"cr|{who}|{collection}", bucket, WINDOW_BUCKETS, n))
        if self._off is not None and self._hours.is_off_hours(local.hour, local.weekday):
            bucket = self._off.window // WINDOW_BUCKETS
            needs.append(Need(f"o|{who}|{obs.entity}", bucket, WINDOW_BUCKETS, n))
        return needs

    def context(
        self,
        obs: Observation,
        local: LocalTime,
        needs: list[Need],
        readings: list[list[int]],
        departing: bool,
        factor: float,
        adjust: Callable[[str], float],
    ) -> Context:
        nw = len(self._windows)
        windows = dict(zip(self._windows, readings[:nw], strict=True))
        crawl_pages = crawl_records = off_records = None
        for need, values in zip(needs[nw + 2 :], readings[nw + 2 :], strict=True):
            kind = need.key[: need.key.index("|")]
            if kind == "cp":
                crawl_pages = sum(values)
            elif kind == "cr":
                crawl_records = sum(values)
            else:
                off_records = sum(values)
        usual = self._habits.seen(obs.subject, local) if obs.records else False
        days, days_all = readings[nw], readings[nw + 1]
        key = (obs.subject, obs.entity)
        history = self._history.get(key)
        if history is None or history[0] != local.day:
            if len(self._history) > 200_000:
                self._history.clear()
            history = self._history[key] = (local.day, *personal_history(days, days_all))
        return Context(
            obs=obs,
            local=local,
            departing=departing,
            windows=windows,
            days=days,
            days_all=days_all,
            crawl_pages=crawl_pages,
            crawl_records=crawl_records,
            off_records=off_records,
            usual_hour=usual,
            factor=factor,
            adjust=adjust,
            active_past_days=history[1],
            median_day=history[2],
            mad_day=history[3],
            median_day_all=history[4],
        )


def personal_history(
    days: list[int], days_all: list[int]
) -> tuple[tuple[int, ...], float, float, float]:
    """(active past days, median, MAD, median of every entity) of a person's daily records.

    Only days on which the person read anything count, so weekends and leave do not drag
    the median to zero."""
    active = tuple(i for i, n in enumerate(days_all[:-1]) if n)
    if not active:
        return active, 0.0, 0.0, 0.0
    _, med, mad = robust_z(0, [days[i] for i in active])
    _, med_all, _ = robust_z(0, [days_all[i] for i in active])
    return active, med, mad, med_all
