"""Holds across replicas: two guards on one real PostgreSQL schema and the real Redis.

Each replica has its own engine, alert store, holds mirror and counters, exactly as two
``wardgate serve`` processes would; only the database and Redis are shared. Convergence is
asserted within the ~1 s the feature promises. With Redis up the replicas poll only every
30 s, so convergence in time proves the fan-out; with Redis down they poll every 0.25 s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from audit.alerts import AlertStore
from audit.counters import Counters, MemoryCounters, RedisCounters
from audit.detect import ExportGuard
from audit.detectors.config import DetectionConfig
from audit.holds import SharedHolds
from audit.schema import ensure_schema
from audit.store import make_engine
from tests.detection.conftest import WEDNESDAY_10H as T
from tests.detection.conftest import Clock, FakePeople, config, obs
from tests.support.postgres import PG_URL, schema_url, temporary_schema
from tests.support.servers import free_port

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379"
FAN_OUT_ONLY = 30.0  # a poll interval no test waits for
CONVERGE_S = 1.0
Start = Callable[..., Awaitable[ExportGuard]]


@pytest.fixture
def schema() -> Iterator[str]:
    with temporary_schema("wg_holds") as name:
        ensure_schema(schema_url(name))  # the migrations, as every replica runs them at start
        yield name


@pytest.fixture
async def replica(schema: str, clock: Clock, people: FakePeople) -> AsyncIterator[Start]:
    """Start a replica: its own engine, store and mirror; the database and Redis shared."""
    started: list[ExportGuard] = []
    engines: list[Engine] = []

    async def start(
        *,
        redis_url: str | None = REDIS_URL,
        refresh_s: float = FAN_OUT_ONLY,
        cfg: DetectionConfig | None = None,
        counters: Counters | None = None,
    ) -> ExportGuard:
        engine = make_engine(schema_url(schema))
        engines.append(engine)
        holds = SharedHolds(engine, redis_url, clock, refresh_s=refresh_s)
        guard = ExportGuard(
            cfg or config(),
            counters or MemoryCounters(),
            AlertStore(engine),
            people,
            clock=clock,
            holds=holds,
        )
        await guard.load()
        started.append(guard)
        return guard

    yield start
    for guard in started:
        await guard.aclose()
    for engine in engines:
        engine.dispose()


async def action(guard: ExportGuard, subject: str = "sales07", entity: str = "customer") -> str:
    return (await guard.precheck(subject, "crm", entity)).action


async def within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Wait until ``check`` holds; fail if it does not within ``seconds``. Returns the wait."""
    begin = time.monotonic()
    while not await check():
        elapsed = time.monotonic() - begin
        assert elapsed < seconds, f"not converged within {seconds} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - begin


async def block(guard: ExportGuard, subject: str = "sales07") -> str:
    """``subject`` reads 6,000 customers at once: over the daily limit, a block.

    Returns the alert that holds the block (the hourly limit raises a throttle alert too).
    """
    assert (await guard.observe(obs(T, 6000, subject=subject))).action == "block"
    (alert_id,) = (await guard.precheck(subject, "crm", "customer")).alert_ids
    return alert_id


async def test_a_block_raised_on_one_replica_refuses_on_the_other(replica: Start) -> None:
    a, b = await replica(), await replica()
    alert_id = await block(a)
    assert await action(a) == "block"  # at once where it was raised
    await within(CONVERGE_S, lambda: _is(b, "block"))
    refused = await b.precheck("sales07", "crm", "customer")
    assert refused.alert_ids == (alert_id,) and refused.reason_id == "export_blocked"
    assert "security officer must review" in refused.detail and refused.retry_after_s is None
    # the block is on that person and entity only
    assert await action(b, "sales08") == "none"
    assert await action(b, entity="invoice") == "none"


async def test_resolving_on_the_other_replica_lets_the_person_through_on_both(
    replica: Start,
) -> None:
    a, b = await replica(), await replica()
    alert_id = await block(a)
    await within(CONVERGE_S, lambda: _is(b, "block"))
    await b.resolve(alert_id, by="officer1", verdict="true_positive", note="talked to them")
    assert await action(b) == "none"
    await within(CONVERGE_S, lambda: _is(a, "none"))


async def test_a_replica_started_later_knows_the_blocks_already_placed(replica: Start) -> None:
    a = await replica()
    await block(a)
    await a.drain()  # stored with its alert
    late = await replica(redis_url=None)
    assert await action(late) == "block"


async def test_resolving_an_unrelated_alert_releases_nothing(replica: Start, schema: str) -> None:
    a, b = await replica(), await replica()
    await block(a, "sales07")
    other = await block(a, "sales08")
    await within(CONVERGE_S, lambda: _is(b, "block", "sales08"))
    await b.resolve(other, by="officer1", verdict="benign")
    await within(CONVERGE_S, lambda: _is(a, "none", "sales08"))
    assert await action(a) == "block" and await action(b) == "block"
    assert _held(schema) == ["sales07"]


async def test_a_throttle_ends_on_both_replicas_at_its_time(replica: Start, clock: Clock) -> None:
    a, b = await replica(), await replica()
    verdict = await a.observe(obs(T, 2500))
    assert verdict.action == "throttle"
    await within(CONVERGE_S, lambda: _is(b, "throttle"))
    assert (await b.precheck("sales07", "crm", "customer")).retry_after_s == 900
    clock.now = T + 600
    assert (await b.precheck("sales07", "crm", "customer")).retry_after_s == 300
    clock.now = T + 901
    assert await action(a) == "none" and await action(b) == "none"


async def test_with_redis_down_database_polling_still_converges(replica: Start) -> None:
    dead = f"redis://127.0.0.1:{free_port()}"
    a = await replica(redis_url=dead, refresh_s=0.25)
    b = await replica(redis_url=dead, refresh_s=0.25)
    alert_id = await block(a)
    await within(CONVERGE_S, lambda: _is(b, "block"))
    await b.resolve(alert_id, by="officer1", verdict="true_positive")
    await within(CONVERGE_S, lambda: _is(a, "none"))


async def test_reinstating_lifts_the_suspension_on_every_replica(replica: Start) -> None:
    suspend_over_100 = config(
        detectors__volume__rules=[
            {"role": "*", "entity": "*", "window": "1h", "max": 100, "action": "suspend"}
        ]
    )
    a = await replica(cfg=suspend_over_100)
    b = await replica(cfg=suspend_over_100)
    assert (await a.observe(obs(T, 150))).action == "suspend"
    await within(CONVERGE_S, lambda: _is(b, "suspend", entity="invoice"))
    await b.release_person("sales07")
    assert await action(b, entity="invoice") == "none"
    await within(CONVERGE_S, lambda: _is(a, "none", entity="invoice"))


async def test_known_blocks_keep_blocking_while_the_database_is_away(
    replica: Start, schema: str, clock: Clock
) -> None:
    a, b = await replica(refresh_s=0.1), await replica(refresh_s=0.1)
    alert_id = await block(a)
    await within(CONVERGE_S, lambda: _is(b, "block"))
    with _outage(schema):
        await asyncio.sleep(0.5)  # several failed refreshes on both replicas
        clock.now = T + 30 * 86400  # a block does not run out
        assert await action(a) == "block" and await action(b) == "block"
        with pytest.raises(DBAPIError):
            await b.resolve(alert_id, by="officer1", verdict="benign")
        assert await action(b) == "block"
    await b.resolve(alert_id, by="officer1", verdict="benign")
    await within(CONVERGE_S, lambda: _is(a, "none"))


async def test_a_replica_that_cannot_read_the_holds_refuses_to_start(
    clock: Clock, people: FakePeople
) -> None:
    engine = make_engine(f"postgresql://root@127.0.0.1:{free_port()}/test")
    store = AlertStore(engine)
    guard = ExportGuard(
        config(), MemoryCounters(), store, people, clock=clock, holds=SharedHolds(engine, None)
    )
    with pytest.raises(DBAPIError):
        await guard.load()
    engine.dispose()


async def test_an_alert_resolved_elsewhere_stays_resolved(replica: Start, schema: str) -> None:
    a, b = await replica(), await replica()
    first = await block(a)
    await a.drain()
    await b.resolve(first, by="officer1", verdict="true_positive")
    resolved = b.alerts.get(first)
    # A still tracks the alert it opened; its next findings must not reopen or grow it
    for minute in range(1, 4):
        await a.observe(obs(T + minute * 60, 100))
        await a.drain()
    assert a.alerts.get(first) == resolved
    blocks = [x for x in a.alerts.list_alerts(subject="sales07") if x["action"] == "block"]
    (newer,) = [x for x in blocks if x["id"] != first]
    assert newer["state"] == "open"
    assert _held_alerts(schema) == [newer["id"]]
    # the new block is the one every replica enforces, and the one an officer can resolve
    await within(CONVERGE_S, lambda: _is(b, "block"))
    assert (await b.precheck("sales07", "crm", "customer")).alert_ids == (newer["id"],)


async def test_a_true_positive_resolved_elsewhere_ends_the_tracking_but_clears_no_count(
    replica: Start, clock: Clock
) -> None:
    counters = shared_counters()
    a, b = await replica(counters=counters()), await replica(counters=counters())
    first = await block(a)
    await a.drain()
    clock.now = T + 60
    await b.resolve(first, by="officer1", verdict="true_positive")
    await within(CONVERGE_S, lambda: _is(a, "none"))
    # the release reached A, the counts stand (a true positive clears nothing): its next
    # crossing blocks again, as a new alert, not under the resolved one…
    verdict = await a.observe(obs(T + 120, 10))
    assert verdict.action == "block" and first not in verdict.alert_ids
    (newer,) = (await a.precheck("sales07", "crm", "customer")).alert_ids
    assert newer in verdict.alert_ids
    # …and its block holds from that request on, also after A has written it
    for _ in range(2):
        refused = await a.precheck("sales07", "crm", "customer")
        assert refused.action == "block" and refused.alert_ids == (newer,)
        await a.drain()
    assert b.alerts.get(first)["hits"] == 1  # the resolved alert was not touched
    await within(CONVERGE_S, lambda: _is(b, "block"))


async def test_a_throttle_that_ran_out_is_not_a_release_its_alert_goes_on(
    replica: Start, clock: Clock
) -> None:
    a = await replica(refresh_s=0.05)
    first = await a.observe(obs(T, 2500))
    assert first.action == "throttle"
    await a.drain()
    clock.now = T + 901  # the throttle ended; its alert is still open
    await asyncio.sleep(0.2)  # refreshes that no longer find the hold in force
    again = await a.observe(obs(T + 901, 10))
    assert again.action == "throttle" and again.alert_ids == first.alert_ids


async def test_a_false_positive_raises_the_threshold_on_every_replica(replica: Start) -> None:
    a, b = await replica(), await replica()
    verdict = await a.observe(obs(T, 2100))
    await a.drain()
    await a.resolve(verdict.alert_ids[0], by="officer1", verdict="false_positive")
    await within(CONVERGE_S, lambda: _factor(b, 1.5))
    # 2,100 invoices an hour on B: over the 2,000 limit, within 2,000 × 1.5 for this person
    assert (await b.observe(obs(T + 60, 2100, entity="invoice"))).action == "none"
    assert (await b.observe(obs(T + 60, 2100, subject="sales08"))).action == "throttle"


def shared_counters() -> Callable[[], Counters]:
    """One Redis count for the replicas, as ``counters.backend: redis`` gives production."""
    prefix = f"wg-test:{uuid.uuid4().hex}:"
    return lambda: RedisCounters.from_url(REDIS_URL, key_prefix=prefix)


async def test_a_benign_verdict_on_one_replica_is_not_undone_on_the_other(
    replica: Start, clock: Clock
) -> None:
    counters = shared_counters()
    a, b = await replica(counters=counters()), await replica(counters=counters())
    alert_id = await block(a)
    await within(CONVERGE_S, lambda: _is(b, "block"))
    clock.now = T + 60
    await b.resolve(alert_id, by="officer1", verdict="benign", note="approved export")
    await within(CONVERGE_S, lambda: _is(a, "none"))
    # the 6,000 are still in the shared windows, but the episode is over on A too
    assert (await a.observe(obs(T + 120, 10))).action == "none"
    # what the person reads after the verdict, on either replica, still adds up
    assert (await b.observe(obs(T + 180, 1500))).action == "none"
    assert (await a.observe(obs(T + 240, 1000))).action == "throttle"


# ── helpers ──────────────────────────────────────────────────────────────────────────────


async def _is(
    guard: ExportGuard, expected: str, subject: str = "sales07", entity: str = "customer"
) -> bool:
    return await action(guard, subject, entity) == expected


async def _factor(guard: ExportGuard, expected: float) -> bool:
    return guard.threshold_factor("volume", "sales07") == expected


def _held(schema: str) -> list[str]:
    return sorted(r[1] for r in _rows(schema))


def _held_alerts(schema: str) -> list[str]:
    return [r[0] for r in _rows(schema)]


def _rows(schema: str) -> list[tuple[str, str]]:
    engine = make_engine(schema_url(schema))
    try:
        with engine.connect() as conn:
            return [
                (r[0], r[1])
                for r in conn.execute(text("SELECT alert_id, subject FROM alert_holds"))
            ]
    finally:
        engine.dispose()


@contextmanager
def _outage(schema: str) -> Iterator[None]:
    """Wardgate's schema is gone (as good as an unreachable database) until the block ends."""
    admin = make_engine(PG_URL)
    away = f"{schema}_away"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'ALTER SCHEMA "{schema}" RENAME TO "{away}"'))
        try:
            yield
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'ALTER SCHEMA "{away}" RENAME TO "{schema}"'))
    finally:
        admin.dispose()
