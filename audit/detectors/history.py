"""A person's daily history for one entity, summarised once a day for the baseline detectors.

Past days do not change during a day, so everything here is computed at most once per person,
entity and local day; per request only today's count is compared with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from audit.detectors.base import median_mad

_TAIL_QUANTILE = 0.9
_TAIL_Z = 1.2816  # the 90th percentile of a normal distribution, in σ


@dataclass(frozen=True, slots=True)
class PersonalHistory:
    """What the last 30 complete days say about a person's reads of one entity."""

    active_past_days: tuple[int, ...]  # indices of past days on which the person read anything
    median: float  # records of this entity per active past day
    mad: float
    sigma: float  # the day-to-day scale, see ``day_scale``
    read_before: bool  # the person read this entity on one of the past days
    drip: DripReference | None  # None until there are enough active days


@dataclass(frozen=True, slots=True)
class DripReference:
    """The slow-drip window's past days, judged against the active days before them.

    ``past_z`` is the sum of the capped z-scores of the window's ``days - 1`` past days; the
    detector adds today's and divides by √days (the z-score of a sum of independent days).
    ``previous_z`` is the same score of the window that ended on the last active day (0 if
    too little history): a drip already over the bar then was reported then.
    """

    days: int
    median: float
    sigma: float
    cap: float
    past_z: float
    past_records: int
    previous_z: float

    def z(self, today: int) -> float:
        return (self.past_z + _capped(today, self.median, self.sigma, self.cap)) / math.sqrt(
            self.days
        )


def _capped(records: float, median: float, sigma: float, cap: float) -> float:
    return max(-cap, min(cap, (records - median) / sigma))


def _window_z(
    counts: Sequence[int], reference: Sequence[int], cap: float
) -> tuple[float, float, float]:
    """(sum of capped z-scores of ``counts``, median, σ of ``reference``)."""
    med, _, sigma = day_scale(sorted(reference))
    return sum(_capped(n, med, sigma, cap) for n in counts), med, sigma


def day_scale(ordered: Sequence[float]) -> tuple[float, float, float]:
    """(median, MAD, σ) of sorted daily counts.

    σ is the largest of: the MAD scaled to σ; the distance from the median to the 90th
    percentile day over 1.28 (what σ would be if the upper tail were normal: people whose
    days are naturally lumpy, a few big list exports a month, get a band as wide as their own
    lumps); 10 % of the median; one record.
    """
    med, mad = median_mad(ordered)
    tail = ordered[min(len(ordered) - 1, int(_TAIL_QUANTILE * len(ordered)))] - med
    return med, mad, max(1.4826 * mad, tail / _TAIL_Z, 0.1 * med, 1.0)


def personal_history(
    days: list[int], days_all: list[int], *, learning_days: int, drip_days: int, drip_cap: float
) -> PersonalHistory:
    """Summarise ``days`` (this entity) on the days ``days_all`` (every entity) shows the
    person active; the last item of both is today.

    Only days on which the person read anything count, so weekends and leave do not drag the
    median to zero. The drip window is the last ``drip_days - 1`` active days plus today; its
    reference is the active days before the window (at least ``learning_days`` of them), so a
    drip already under way does not raise its own bar."""
    active = tuple(i for i, n in enumerate(days_all[:-1]) if n)
    if not active:
        return PersonalHistory(active, 0.0, 0.0, 1.0, False, None)
    med, mad, sigma = day_scale(sorted(days[i] for i in active))
    drip = None
    cut = len(active) - drip_days + 1
    if cut >= learning_days:
        window, before = [days[i] for i in active[cut:]], [days[i] for i in active[:cut]]
        past_z, ref_med, ref_sigma = _window_z(window, before, drip_cap)
        previous_z = 0.0
        if cut - 1 >= learning_days:
            previous = [days[i] for i in active[cut - 1 :]]
            previous_z = _window_z(previous, before[:-1], drip_cap)[0] / math.sqrt(drip_days)
        drip = DripReference(
            drip_days, ref_med, ref_sigma, drip_cap, past_z, sum(window), previous_z
        )
    return PersonalHistory(active, med, mad, sigma, any(days[:-1]), drip)
