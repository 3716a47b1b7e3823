"""An officer's verdict ends the episode: no instant re-block, but no free pass either.

Rule (audit/feedback.py): a benign or false-positive verdict clears that detector's episode
for that person and entity; only records read after the verdict count towards a new
crossing. A true-positive verdict releases the hold and clears nothing.
"""

from __future__ import annotations

from audit.alerts import AlertStore
from audit.counters import MemoryCounters
from audit.detect import ExportGuard
from audit.feedback import Clear, Effects, Feedback, Offset
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import WEEKDAYS_BEFORE_25, Clock, GuardFactory, history, obs


async def blocked(guard: ExportGuard, at: float = T, entity: str = "customer") -> str:
    """sales07 reads 7,000 records at once: over the 24-hour limit, a block. Returns its alert."""
    assert (await guard.observe(obs(at, 7000, entity=entity))).action == "block"
    await guard.drain()
    (alert_id,) = (await guard.precheck("sales07", "crm", entity)).alert_ids
    return alert_id


async def resolved(guard: ExportGuard, clock: Clock, verdict: str, at: float = T + 60) -> str:
    """Block sales07 on customers, then an officer resolves it with ``verdict`` at ``at``."""
    alert_id = await blocked(guard)
    clock.now = at
    await guard.resolve(alert_id, by="officer1", verdict=verdict)
    return alert_id


async def action(guard: ExportGuard, at: float, records: int, entity: str = "customer") -> str:
    """What the next response of sales07 gets: the hold first, then the detectors."""
    if (await guard.precheck("sales07", "crm", entity)).refused:
        return "refused by a hold"
    return (await guard.observe(obs(at, records, entity=entity))).action


async def test_a_benign_verdict_is_not_undone_by_the_next_read(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    await resolved(guard, clock, "benign")
    # the 7,000 read before the verdict are still in both windows, but no longer count
    assert await action(guard, T + 120, 10) == "none"
    assert await action(guard, T + 180, 1900) == "none"  # 1,910 since the verdict
    # reads after the verdict still alert when they cross: 1 h limit 2,000, then 24 h 5,000
    assert await action(guard, T + 240, 200) == "throttle"
    clock.now = T + 3 * 3600
    assert await action(guard, clock.now, 2000) == "none"
    assert await action(guard, clock.now + 60, 1000) == "block"  # 5,110 since the verdict


async def test_records_read_after_the_verdict_in_the_same_minute_count(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    await resolved(guard, clock, "false_positive", at=T + 5)  # the 7,000's one-minute bucket
    # the false positive raised the limit to 3,000 an hour; 3,001 after the verdict cross it
    assert await action(guard, T + 10, 3001) == "throttle"


async def test_a_true_positive_releases_the_hold_but_the_next_read_blocks_again(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    alert_id = await resolved(guard, clock, "true_positive")
    assert not (await guard.precheck("sales07", "crm", "customer")).refused
    verdict = await guard.observe(obs(T + 120, 10))
    assert verdict.action == "block" and alert_id not in verdict.alert_ids


async def test_a_clear_on_one_entity_leaves_the_other_counted(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    customers = await blocked(guard)
    # 5,900 invoices: over the hourly 2,000 (a throttle), under the daily 6,000
    assert (await guard.observe(obs(T + 30, 5900, entity="invoice"))).action == "throttle"
    clock.now = T + 60
    await guard.resolve(customers, by="officer1", verdict="benign")
    assert await action(guard, T + 120, 10) == "none"
    clock.now = T + 20 * 60  # the invoice throttle has ended; its 5,900 still count
    assert await action(guard, clock.now, 200, entity="invoice") == "block"


async def test_a_clear_is_per_detector(make_guard: GuardFactory, clock: Clock) -> None:
    guard = make_guard()
    await history(guard, WEEKDAYS_BEFORE_25[-15:], 40)
    first = await guard.observe(obs(T, 1200))  # far above their median: baseline
    await guard.drain()
    (baseline,) = first.alert_ids
    clock.now = T + 60
    await guard.resolve(baseline, by="officer1", verdict="benign")
    # today's count restarts for the baseline rule only…
    assert await action(guard, T + 120, 100) == "none"
    # …the volume windows still hold every record: 1,300 + 800 crosses the hourly 2,000
    verdict = await guard.observe(obs(T + 180, 800))
    await guard.drain()
    assert verdict.action == "throttle"
    assert {guard.alerts.get(i)["detector"] for i in verdict.alert_ids} == {"volume"}
    # and the baseline rule judges the 900 read since the verdict plus what comes next
    verdict = await guard.observe(obs(T + 240, 400))
    await guard.drain()
    assert "baseline" in {guard.alerts.get(i)["detector"] for i in verdict.alert_ids}


async def test_a_clear_survives_a_restart_and_ends_with_its_windows(
    make_guard: GuardFactory, clock: Clock, store: AlertStore
) -> None:
    counters = MemoryCounters()  # what survives a restart with Redis counters
    guard = make_guard(counters=counters)
    await resolved(guard, clock, "benign")
    (clear,) = store.feedback(clock.now).clears
    assert (clear.subject, clear.detector, clear.entity) == ("sales07", "volume", "customer")
    # a clear lasts as long as the records it subtracts can be in a window: 24 hours
    assert T + 86400 <= clear.expires <= T + 86400 + 25 * 60
    assert store.feedback(clear.expires).clears == []
    # a replica started after the verdict knows it
    restarted = make_guard(counters=counters)
    await restarted.load()
    assert (await restarted.observe(obs(T + 120, 10))).action == "none"


async def test_expired_clears_are_deleted_from_the_table(
    make_guard: GuardFactory, clock: Clock, store: AlertStore
) -> None:
    guard = make_guard()
    await resolved(guard, clock, "benign")
    later = T + 2 * 86400
    second = await blocked(guard, at=later, entity="order")
    clock.now = later + 60
    await guard.resolve(second, by="officer1", verdict="benign")
    assert [c.entity for c in store.feedback(T + 60).clears] == ["order"]  # deleted


def test_feedback_memory_keeps_only_live_clears() -> None:
    feedback = Feedback()
    for n in range(1000):
        at = T + n * 100_000
        clear = Clear(f"p{n}", "volume", "customer", f"a{n}", at, at + 86400, {"k": Offset(1, {})})
        feedback.apply(Effects("volume", f"p{n}", None, clear))
    assert feedback.clears_for("p999", "customer") is not None
    assert feedback.clears_for("p998", "customer") is None
