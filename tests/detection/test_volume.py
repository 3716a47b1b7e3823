"""Volume over sliding windows, and the actions it takes inline."""

from __future__ import annotations

from audit.detect import Verdict
from gateway.errors import Forbidden, TooManyRequests
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import Clock, GuardFactory, config, obs


async def test_the_response_that_crosses_the_hourly_limit_is_throttled(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    for i in range(19):
        verdict = await guard.observe(obs(T + i * 60, 100, path=f"/api/customers/{i}"))
        assert verdict.action == "none"
    crossing = await guard.observe(obs(T + 19 * 60, 101, path="/api/customers/19"))
    assert crossing.action == "throttle"
    assert crossing.reason_id == "export_throttled" and crossing.retry_after_s == 900
    error = crossing.error()
    assert isinstance(error, TooManyRequests) and error.headers["retry-after"] == "900"
    assert "2,001 customer records in 20 minutes" in crossing.detail


async def test_throttle_refuses_before_forwarding_then_expires(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    await guard.observe(obs(T, 2500))
    refused = await guard.precheck("sales07", "crm", "customer")
    assert refused.action == "throttle" and refused.refused
    # other entities and other people are not affected
    assert (await guard.precheck("sales07", "erp", "product")).action == "none"
    assert (await guard.precheck("sales08", "crm", "customer")).action == "none"
    clock.now = T + 901
    assert (await guard.precheck("sales07", "crm", "customer")).action == "none"


async def test_window_slides_so_spread_out_reading_is_not_a_burst(make_guard: GuardFactory) -> None:
    guard = make_guard()
    assert (await guard.observe(obs(T, 1900))).action == "none"
    assert (await guard.observe(obs(T + 3660, 1900))).action == "none"


async def test_daily_limit_blocks_until_the_alert_is_resolved(
    make_guard: GuardFactory, clock: Clock
) -> None:
    guard = make_guard()
    verdicts = [await guard.observe(obs(T + h * 3700, 1500)) for h in range(4)]
    assert [v.action for v in verdicts[:3]] == ["none", "none", "none"]
    blocked = verdicts[3]
    assert blocked.action == "block" and blocked.reason_id == "export_blocked"
    assert isinstance(blocked.error(), Forbidden) and blocked.error().status == 403
    clock.now = T + 30 * 86400  # a block does not time out
    assert (await guard.precheck("sales07", "crm", "customer")).action == "block"
    alert_id = blocked.alert_ids[0]
    await guard.resolve(alert_id, by="officer1", verdict="true_positive", note="talked to them")
    assert (await guard.precheck("sales07", "crm", "customer")).action == "none"


async def test_role_without_rule_falls_back_to_default_and_extra_role_raises_limit(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    unknown = await guard.observe(obs(T, 2100, subject="temp1", roles=("intern",)))
    assert unknown.action == "throttle"  # deny by default: the "*" rule applies
    bot = await guard.observe(obs(T, 50_000, subject="bot", roles=("sales", "sync")))
    assert bot.action == "none"


async def test_suspend_action_refuses_the_person_everywhere(
    make_guard: GuardFactory, people
) -> None:
    raw_rules = [
        {
            "role": "*",
            "entity": "*",
            "window": "1h",
            "max": 100,
            "severity": "critical",
            "action": "suspend",
        },
    ]
    guard = make_guard(config(detectors__volume__rules=raw_rules))
    verdict = await guard.observe(obs(T, 150))
    assert verdict.action == "suspend" and verdict.reason_id == "person_suspended"
    await guard.drain()
    assert ("suspend", "sales07", "detector:volume") in people.calls
    assert (await guard.precheck("sales07", "erp", "invoice")).reason_id == "person_suspended"
    await guard.release_person("sales07")
    assert (await guard.precheck("sales07", "erp", "invoice")).action == "none"


async def test_repeated_crossings_update_one_alert_with_a_running_count(
    make_guard: GuardFactory, store
) -> None:
    guard = make_guard()
    ids = set()
    for i in range(5):
        verdict = await guard.observe(obs(T + i, 600, request_id=f"req-{i}"))
        ids.update(verdict.alert_ids)
    await guard.drain()
    alerts = store.list_alerts(detector="volume")
    assert len(alerts) == 1 and len(ids) == 1
    alert = store.get(alerts[0]["id"])
    assert alert["count"] == 3000 and alert["hits"] == 2
    assert alert["evidence"]["request_ids"] == ["req-3", "req-4"]
    assert [t["to"] for t in alert["transitions"]] == ["open"]


def test_no_action_verdict_is_not_an_error() -> None:
    assert Verdict().error() is None and Verdict("alert").error() is None
