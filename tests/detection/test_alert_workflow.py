"""Alert life cycle in the store, and the bounded false-positive rule."""

from __future__ import annotations

import pytest

from audit.alerts import AlertStore
from gateway.errors import BadRequest, Conflict, NotFound
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import GuardFactory, config, obs


async def raise_volume_alert(make_guard: GuardFactory, guard=None, at: float = T) -> tuple:
    guard = guard or make_guard()
    verdict = await guard.observe(obs(at, 2500))
    await guard.drain()
    return guard, verdict.alert_ids[0]


async def test_every_transition_is_recorded(make_guard: GuardFactory, store: AlertStore) -> None:
    guard, alert_id = await raise_volume_alert(make_guard)
    await guard.acknowledge(alert_id, by="officer1", note="looking")
    alert = await guard.resolve(alert_id, by="officer2", verdict="true_positive", note="confirmed")
    assert alert["state"] == "resolved" and alert["verdict"] == "true_positive"
    steps = [(t["who"], t["from"], t["to"], t["note"]) for t in alert["transitions"]]
    assert steps == [
        ("detector:volume", None, "open", ""),
        ("officer1", "open", "acknowledged", "looking"),
        ("officer2", "acknowledged", "resolved", "confirmed"),
    ]


async def test_invalid_transitions_and_bad_input_change_nothing(
    make_guard: GuardFactory, store: AlertStore
) -> None:
    guard, alert_id = await raise_volume_alert(make_guard)
    with pytest.raises(BadRequest):
        await guard.resolve(alert_id, by="o", verdict="probably_fine")
    await guard.resolve(alert_id, by="o", verdict="benign")
    with pytest.raises(Conflict) as conflict:
        await guard.acknowledge(alert_id, by="o")
    assert conflict.value.status == 409
    with pytest.raises(Conflict):
        await guard.resolve(alert_id, by="o", verdict="false_positive")
    with pytest.raises(NotFound):
        await guard.acknowledge("no-such-alert", by="o")
    alert = store.get(alert_id)
    assert alert["verdict"] == "benign" and len(alert["transitions"]) == 2
    assert store.adjustments() == {}


async def test_false_positive_raises_the_threshold_with_a_bound(
    make_guard: GuardFactory, store: AlertStore
) -> None:
    guard = make_guard()
    factors = []
    for n in range(6):
        factor = guard.threshold_factor("volume", "sales07")
        day = T + n * 7 * 86400  # each Wednesday, so only volume is in play
        assert (await guard.observe(obs(day, int(2000 * factor) - 10))).action == "none"
        verdict = await guard.observe(obs(day + 60, 20))  # just over limit × factor
        assert verdict.action == "throttle"
        await guard.drain()
        await guard.resolve(verdict.alert_ids[0], by="o", verdict="false_positive")
        factors.append(guard.threshold_factor("volume", "sales07"))
    assert factors == [1.5, 2.25, 3.375, 4.0, 4.0, 4.0]  # × 1.5 per FP, never beyond × 4
    assert store.adjustments() == {("volume", "sales07"): 4.0}
    # other people and other detectors keep their thresholds
    assert guard.threshold_factor("volume", "sales08") == 1.0
    assert guard.threshold_factor("crawl", "sales07") == 1.0


async def test_false_positive_threshold_survives_a_restart(
    make_guard: GuardFactory, store: AlertStore
) -> None:
    guard, alert_id = await raise_volume_alert(make_guard)
    await guard.resolve(alert_id, by="o", verdict="false_positive")
    restarted = make_guard()
    await restarted.load()
    # 2,500 an hour is now within 2,000 × 1.5 for this person, not for a colleague
    assert (await restarted.observe(obs(T + 86400, 2500))).action == "none"
    assert (await restarted.observe(obs(T + 86400, 2500, subject="sales08"))).action == "throttle"


def test_unknown_state_filter_is_refused(store: AlertStore) -> None:
    with pytest.raises(BadRequest, match="unknown state"):
        store.list_alerts(state="closed")


async def test_false_positive_rule_comes_from_the_policy(make_guard: GuardFactory) -> None:
    guard = make_guard(config(false_positive={"step": 2.0, "max": 3.0}))
    factors = []
    for n in range(3):
        limit = 2000 * guard.threshold_factor("volume", "sales07")
        verdict = await guard.observe(obs(T + n * 7 * 86400, int(limit) + 1))
        await guard.drain()
        await guard.resolve(verdict.alert_ids[0], by="o", verdict="false_positive")
        factors.append(guard.threshold_factor("volume", "sales07"))
    assert factors == [2.0, 3.0, 3.0]
