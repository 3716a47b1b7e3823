"""Each detector fires on crafted traffic that should trip it, and stays quiet otherwise."""

from __future__ import annotations

import pytest

from audit.detect import ExportGuard, Verdict
from audit.detectors.config import CrawlConfig
from audit.detectors.crawl import page_index
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import (
    WEEKDAYS_BEFORE_25,
    FakePeople,
    GuardFactory,
    at,
    history,
    obs,
)


async def detectors(verdict: Verdict, guard: ExportGuard) -> set[str]:
    """The detectors behind a verdict, as the officer will see them in the alert store."""
    await guard.drain()
    return {guard.alerts.get(alert_id)["detector"] for alert_id in verdict.alert_ids}


# ── personal baseline ─────────────────────────────────────────────────────────────────


async def test_baseline_fires_far_above_own_median_but_below_role_limit(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-15:], 40)
    verdict = await guard.observe(obs(T, 1200))
    assert verdict.action == "alert" and await detectors(verdict, guard) == {"baseline"}
    assert "their 30-day median is 40 a day" in verdict.detail


async def test_baseline_quiet_for_a_heavy_reader_doing_the_usual(make_guard: GuardFactory) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-15:], 1000)
    assert (await guard.observe(obs(T, 1200))).action == "none"


async def test_baseline_waits_for_its_learning_period(make_guard: GuardFactory) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-5:], 40)
    assert (await guard.observe(obs(T, 1200))).action == "none"


async def test_baseline_catches_a_slow_drip_once_on_its_third_day(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    for n, day in enumerate(WEEKDAYS_BEFORE_25[-17:-3]):
        await guard.observe(obs(at(day, 11), 300 if n % 2 else 500))  # median 400
    drip_days = [*WEEKDAYS_BEFORE_25[-3:], 25, 26]
    verdicts = [await guard.observe(obs(at(day, 15), 1400)) for day in drip_days]
    # 1,400 a day is under the one-day z-score, but the days add up; one alert per drip
    assert [v.action for v in verdicts] == ["none", "none", "alert", "none", "none"]
    assert await detectors(verdicts[2], guard) == {"baseline"}
    assert "over their last 5 active days" in verdicts[2].detail
    assert "their median before was 400 a day" in verdicts[2].detail


async def test_baseline_judges_a_lumpy_reader_against_their_own_lumps(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    for n, day in enumerate(WEEKDAYS_BEFORE_25[-15:]):
        await guard.observe(obs(at(day, 11), 1000 if n % 5 == 0 else 100, subject="lumpy"))
        await guard.observe(obs(at(day, 11), 100, subject="steady"))
    # both have a median of 100 a day; only one of them has big days now and then
    assert (await guard.observe(obs(T, 1300, subject="lumpy"))).action == "none"
    steady = await guard.observe(obs(T, 1300, subject="steady"))
    assert await detectors(steady, guard) == {"baseline"}


async def test_baseline_ignores_busy_days_that_are_not_in_a_row(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for n, day in enumerate(WEEKDAYS_BEFORE_25[-15:-3]):
        await guard.observe(obs(at(day, 11), 300 if n % 2 else 500))
    busy, quiet = WEEKDAYS_BEFORE_25[-3], WEEKDAYS_BEFORE_25[-2]
    assert (await guard.observe(obs(at(busy, 15), 1400))).action == "none"
    assert (await guard.observe(obs(at(quiet, 15), 400))).action == "none"
    assert (await guard.observe(obs(at(25, 15), 1400))).action == "none"


# ── peer group ────────────────────────────────────────────────────────────────────────


async def test_peer_fires_for_a_newcomer_reading_far_more_than_colleagues(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    for n in range(8):
        await history(guard, WEEKDAYS_BEFORE_25[-12:], 50 + n, subject=f"peer{n}")
        await guard.observe(obs(T - 600, 30, subject=f"peer{n}"))  # seen today
    verdict = await guard.observe(obs(T, 1900, subject="newcomer"))
    assert await detectors(verdict, guard) == {"peer"}
    assert "8 other sales people read a median of" in verdict.detail


async def test_peer_quiet_when_the_whole_role_reads_that_much(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for n in range(8):
        await history(guard, WEEKDAYS_BEFORE_25[-12:], 1500 + 20 * n, subject=f"peer{n}")
        await guard.observe(obs(T - 600, 30, subject=f"peer{n}"))
    assert (await guard.observe(obs(T, 1900, subject="newcomer"))).action == "none"


async def test_peer_needs_enough_peers(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for n in range(3):
        await history(guard, WEEKDAYS_BEFORE_25[-12:], 50, subject=f"peer{n}")
        await guard.observe(obs(T - 600, 30, subject=f"peer{n}"))
    assert (await guard.observe(obs(T, 1900, subject="newcomer"))).action == "none"


# ── pagination crawl ──────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ({"page": "1"}, 0),
        ({"page": "7"}, 6),
        ({"offset": "0"}, 0),
        ({"offset": "700", "limit": "100"}, 7),
        ({"offset": "700"}, 14),  # no size sent: the default page size of 50
        ({"skip": "40", "$top": "20"}, 2),
        ({"cursor": "abc"}, 5),  # unknown depth counts as deep
        ({"page": "x"}, 5),  # so does an unparseable position
        ({"q": "zhang"}, None),
    ],
)
def test_page_index(query: dict[str, str], index: int | None) -> None:
    assert page_index(query, CrawlConfig(depth=5)) == index


async def test_crawl_page_after_page_is_throttled_at_the_page_that_crosses(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    actions = []
    for page in range(1, 23):
        query = {"page": str(page), "page_size": "100"}
        actions.append((await guard.observe(obs(T + page * 30, 100, query=query))).action)
    # pages 6 to 20 are 15 deep pages, with >= 1,500 records: page 20 is refused
    assert actions[:19] == ["none"] * 19 and actions[19] == "throttle"


async def test_crawl_by_offset_walked_slowly_still_adds_up(make_guard: GuardFactory) -> None:
    guard = make_guard()
    verdicts = [
        await guard.observe(obs(T + i * 200, 100, query={"offset": str(i * 100), "limit": "100"}))
        for i in range(20)
    ]
    assert verdicts[-1].action == "throttle"
    assert await detectors(verdicts[-1], guard) == {"crawl"}


async def test_browsing_the_first_pages_again_and_again_is_not_a_crawl(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    for i in range(19):
        query = {"page": str(1 + i % 5)}
        assert (await guard.observe(obs(T + i * 60, 100, query=query))).action == "none"


async def test_crawl_on_two_collections_is_judged_per_collection(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for page in range(2, 12):
        for path in ("/api/customers", "/api/contacts"):
            query = {"page": str(page)}
            verdict = await guard.observe(obs(T + page * 30, 90, path=path, query=query))
            assert verdict.action == "none"


# ── off hours ─────────────────────────────────────────────────────────────────────────


async def test_off_hours_bulk_read_alerts(make_guard: GuardFactory) -> None:
    guard = make_guard()
    verdict = await guard.observe(obs(at(25, 23, 10), 400))
    assert await detectors(verdict, guard) == {"off_hours"}
    assert "local 23:10" in verdict.detail


async def test_weekend_daytime_is_off_hours(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert await detectors(await guard.observe(obs(at(28, 10), 400)), guard) == {"off_hours"}


async def test_working_hours_and_small_reads_are_quiet(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert (await guard.observe(obs(at(25, 19, 30), 400))).action == "none"
    assert (await guard.observe(obs(at(25, 23), 100, subject="other"))).action == "none"


async def test_learned_late_hours_are_not_off_hours(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for day in (17, 18, 19, 20, 21):
        await guard.observe(obs(at(day, 22, 5), 50))
    assert (await guard.observe(obs(at(25, 22, 30), 400))).action == "none"


async def test_overtime_continuing_the_day_is_not_off_hours(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for hour, minute in ((17, 0), (18, 10), (19, 20), (20, 30)):
        assert (await guard.observe(obs(at(25, hour, minute), 100))).action == "none"
    assert (await guard.observe(obs(at(25, 21, 15), 400))).action == "none"


async def test_coming_back_at_night_after_a_pause_alerts(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert (await guard.observe(obs(at(25, 19, 0), 100))).action == "none"
    verdict = await guard.observe(obs(at(25, 22, 30), 400))  # 3.5 hours later
    assert await detectors(verdict, guard) == {"off_hours"}


async def test_an_hour_next_to_the_usual_ones_is_usual(make_guard: GuardFactory) -> None:
    guard = make_guard()
    for day in WEEKDAYS_BEFORE_25[-6:]:
        await guard.observe(obs(at(day, 8, 10), 20))  # starts work at 8 every day
    assert (await guard.observe(obs(at(25, 7, 30), 400))).action == "none"  # an early start
    verdict = await guard.observe(obs(at(26, 5, 0), 400))  # two hours earlier still
    assert await detectors(verdict, guard) == {"off_hours"}


async def test_night_batch_role_is_exempt(make_guard: GuardFactory) -> None:
    guard = make_guard()
    verdict = await guard.observe(obs(at(25, 2), 5000, subject="crm-sync", roles=("sync",)))
    assert verdict.action == "none"


# ── departing people ──────────────────────────────────────────────────────────────────


async def test_departing_bulk_read_alerts_and_thresholds_tighten(
    make_guard: GuardFactory, people: FakePeople
) -> None:
    people.departing.add("leaver")
    guard = make_guard()
    assert (await guard.observe(obs(T - 60, 50, subject="leaver"))).action == "none"
    first = await guard.observe(obs(T, 150, subject="leaver"))
    assert await detectors(first, guard) == {"departing"}
    # the hourly limit of 2,000 becomes 400 for a leaver
    second = await guard.observe(obs(T + 60, 300, subject="leaver"))
    assert second.action == "throttle"


async def test_same_reads_by_someone_staying_are_quiet(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert (await guard.observe(obs(T, 150, subject="stayer"))).action == "none"
    assert (await guard.observe(obs(T + 60, 300, subject="stayer"))).action == "none"


# ── first access ──────────────────────────────────────────────────────────────────────


async def test_first_read_of_a_new_entity_alerts(make_guard: GuardFactory) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-12:], 40)
    verdict = await guard.observe(obs(T, 250, entity="invoice", path="/erp/soap"))
    assert await detectors(verdict, guard) == {"first_access"}


async def test_first_access_quiet_for_small_reads_known_entities_and_newcomers(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-12:], 40)
    await history(guard, WEEKDAYS_BEFORE_25[-3:], 10, entity="invoice")
    assert (await guard.observe(obs(T, 150, entity="order"))).action == "none"
    assert (await guard.observe(obs(T, 250, entity="invoice"))).action == "none"
    assert (await guard.observe(obs(T, 250, subject="newcomer", entity="invoice"))).action == "none"
