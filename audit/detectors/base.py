"""What every detector reads and returns.

The guard updates the shared counters once per observation and hands every detector the
same ``Context`` (the observation, its local time and the counter readings). A detector is
a pure check over that context: it returns ``Finding``s and never does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from audit.detectors.config import Action, Severity

if TYPE_CHECKING:
    from audit.detectors.history import PersonalHistory

HISTORY_DAYS = 30  # personal and peer baselines look back this many complete days
ActionOrNone = Literal["none", "alert", "throttle", "block", "suspend"]
ACTION_RANK: dict[str, int] = {"none": 0, "alert": 1, "throttle": 2, "block": 3, "suspend": 4}


@dataclass(frozen=True, slots=True)
class Observation:
    """One response that is about to leave Wardgate, after filtering."""

    time: float  # unix seconds
    subject: str
    roles: tuple[str, ...]
    upstream: str
    entity: str
    method: str
    path: str  # normalised path, without the query string
    query: Mapping[str, str]
    status: int
    records: int
    response_bytes: int = 0
    pii_hits: Mapping[str, int] = field(default_factory=dict)
    request_id: str | None = None


class LocalTime(NamedTuple):
    """The observation's wall clock in the deployment time zone (a tuple: built per request)."""

    day: int  # days since 1970-01-01, local
    hour: int
    weekday: int  # Monday = 0
    minute_of_day: int


class LocalClock:
    """Unix seconds → local day/hour, with the zone offset cached per UTC hour and the
    local time per minute (zone offsets are whole minutes; requests arrive many a minute)."""

    def __init__(self, zone: str) -> None:
        self._zone = ZoneInfo(zone)
        self._hour = -1
        self._offset = 0
        self._minute = -1
        self._local = LocalTime(0, 0, 3, 0)

    def offset(self, ts: float) -> int:
        hour = int(ts // 3600)
        if hour != self._hour:
            off = datetime.fromtimestamp(hour * 3600, self._zone).utcoffset()
            self._offset = int(off.total_seconds()) if off else 0
            self._hour = hour
        return self._offset

    def local(self, ts: float) -> LocalTime:
        minute = int(ts) // 60
        if minute != self._minute:
            day, in_day = divmod(int(ts) + self.offset(ts), 86400)
            self._local = LocalTime(day, in_day // 3600, (day + 3) % 7, in_day // 60)
            self._minute = minute
        return self._local


class Need(NamedTuple):
    """A counter series to bump: ``amount`` into bucket ``(now + offset_s) // bucket_s``."""

    key: str
    bucket_s: int
    buckets: int
    amount: int
    offset_s: int = 0


@dataclass(slots=True)
class Context:
    """Everything detectors may look at for one observation (read-only for them)."""

    obs: Observation
    local: LocalTime
    departing: bool
    windows: list[list[int]]  # per volume window (shortest first): records per bucket
    days: list[int]  # records per local day, person + entity; last item is today
    days_all: list[int]  # records per local day, person, every entity
    crawl_pages: int | None  # continuation pages on this collection in the crawl window
    crawl_records: int | None
    off_records: int | None  # records read off hours in the off-hours window
    usual_hour: bool  # the person often works at this local hour
    session_off_hours: bool  # the person's current session began off hours (not overtime)
    factor: float  # heightened watch: the departing factor for people leaving, else 1
    adjust: Callable[[str], float]  # detector name → this person's false-positive factor
    history: PersonalHistory  # the person's past 30 days of this entity

    def scale(self, detector: str) -> float:
        """How much to multiply the detector's thresholds by for this person."""
        return self.factor * self.adjust(detector)


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector fired. ``scope`` separates alerts of one detector (a window, a collection)."""

    detector: str
    severity: Severity
    action: Action
    count: int
    window_s: int
    explanation: str
    evidence: dict[str, Any]
    scope: str = ""


class _Rated(Protocol):
    @property
    def severity(self) -> Severity: ...

    @property
    def action(self) -> Action: ...


DAY_S = 86_400


def daily_finding(
    detector: str, cfg: _Rated, today: int, explanation: str, evidence: dict[str, Any]
) -> tuple[Finding, ...]:
    """The one finding of a detector that judges a person's total for today."""
    return (
        Finding(
            detector=detector,
            severity=cfg.severity,
            action=cfg.action,
            count=today,
            window_s=DAY_S,
            explanation=explanation,
            evidence=evidence,
        ),
    )


class Detector(Protocol):
    """One rule over the shared counters; registered in ``audit.detectors.build_detectors``."""

    name: str

    def check(self, ctx: Context) -> Sequence[Finding]: ...


def robust_z(value: float, sample: Sequence[float]) -> tuple[float, float, float]:
    """(z, median, MAD) with MAD scaled to σ; the scale never drops below 10 % of the median
    or 1 record, so a perfectly regular history does not turn every wobble into infinity."""
    med, mad = median_mad(sorted(sample))
    scale = max(1.4826 * mad, 0.1 * med, 1.0)
    return (value - med) / scale, med, mad


def median_mad(ordered: Sequence[float]) -> tuple[float, float]:
    """(median, median absolute deviation) of an already sorted sample."""
    med = _median(ordered)
    return med, _median(sorted(abs(x - med) for x in ordered))


def _median(ordered: Sequence[float]) -> float:
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def plural(n: float) -> str:
    """3180 → "3,180"."""
    return f"{round(n):,}"


def span_text(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    if minutes < 120:
        return f"{minutes} minutes" if minutes != 1 else "1 minute"
    hours = minutes / 60
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
