"""The daily summaries behind the baseline: scale with a tail guard, the slow-drip window."""

from __future__ import annotations

import math

import pytest

from audit.detectors.history import day_scale, personal_history

OPTIONS = {"learning_days": 10, "drip_days": 5, "drip_cap": 4.0}


def test_day_scale_of_a_regular_history_is_the_mad() -> None:
    med, mad, sigma = day_scale(sorted([300, 500] * 10))
    assert (med, mad) == (400, 100) and sigma == pytest.approx(148.26)


def test_day_scale_widens_for_a_person_with_big_days_now_and_then() -> None:
    days = sorted([100] * 16 + [1000] * 4)  # median 100, MAD 0
    med, mad, sigma = day_scale(days)
    assert (med, mad) == (100, 0)
    assert sigma == pytest.approx(900 / 1.2816)  # the 90th-percentile day, not 10 records


def test_weekends_and_leave_do_not_count_as_days() -> None:
    days = [400, 0, 0, 400, 400, 0, 50]
    history = personal_history(days, days, **OPTIONS)
    assert history.active_past_days == (0, 3, 4) and history.median == 400
    assert history.drip is None  # three active days: still learning


def test_drip_window_is_judged_against_the_days_before_it() -> None:
    normal = [300 if n % 2 else 500 for n in range(12)]
    days = [*normal, 1400, 1400, 1400, 1400, 0]  # four drip days, then today (empty so far)
    drip = personal_history(days, days, **OPTIONS).drip
    assert drip is not None
    assert drip.median == 400  # the drip days are not part of their own bar
    assert drip.past_records == 4 * 1400
    assert drip.past_z == pytest.approx(4 * 4.0)  # each drip day capped at 4 σ
    assert drip.z(1400) == pytest.approx(5 * 4.0 / math.sqrt(5))
    assert drip.previous_z > 0  # the window that ended yesterday already held the drip


def test_one_huge_day_adds_no_more_than_the_cap() -> None:
    normal = [300 if n % 2 else 500 for n in range(14)]
    days = [*normal, 400, 400, 90_000, 400, 0]
    drip = personal_history(days, days, **OPTIONS).drip
    assert drip is not None
    assert drip.z(400) < 4.0 / math.sqrt(5) + 1
