"""Reserved queue slots: taken before a request is forwarded, used by its event afterwards.

With ``when_full: reject`` the events queued plus the slots held never exceed
``queue_size``; an event with a slot is always accepted; a refusal happens at ``reserve``,
while refusing still keeps the data in (fast mode records only after the answer went out).
"""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import Engine, func, select

from audit.models import events_table
from audit.settings import AuditSettings
from audit.writer import AuditWriter
from gateway.errors import ServiceUnavailable
from tests.audit.conftest import make_event


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar_one()


def rejecting(settings: AuditSettings, queue_size: int, **changes: object) -> AuditSettings:
    """A tiny queue that refuses when full; the writer takes at most 2 events per batch and
    then lingers 0.3 s, so the queue fills up while a test runs."""
    update = {
        "queue_size": queue_size,
        "when_full": "reject",
        "batch_size": 2,
        "batch_interval_ms": 300,
        **changes,
    }
    return settings.model_copy(update=update)


def assert_backpressure(info: pytest.ExceptionInfo[ServiceUnavailable]) -> None:
    assert info.value.status == 503 and info.value.reason_id == "audit_backpressure"
    assert info.value.headers["retry-after"] == "1"


@pytest.mark.parametrize("durability", ["fast", "strict"])
async def test_a_held_slot_is_honoured_when_everything_else_is_refused(
    engine: Engine, settings: AuditSettings, durability: str
) -> None:
    writer = AuditWriter(rejecting(settings, 3, durability=durability), engine)
    await writer.start()
    assert writer.reserve() is True
    if durability == "fast":  # strict callers wait for the commit: fill the queue otherwise
        await writer.record(make_event(1))
        await writer.record(make_event(2))
    else:
        assert writer.reserve() and writer.reserve()
    # full: one slot held + two events queued (or three slots held)
    with pytest.raises(ServiceUnavailable) as info:
        await writer.record(make_event(3))
    assert_backpressure(info)
    with pytest.raises(ServiceUnavailable) as info:
        writer.reserve()
    assert_backpressure(info)

    if durability == "fast":
        await writer.record(make_event(4), reserved=True)  # accepted although "full"
        assert writer.reserved == 0
        await writer.close()
        assert count(engine) == 3
    else:
        for n in (4, 5, 6):
            await writer.record(make_event(n), reserved=True)  # returns once durable
        assert writer.reserved == 0 and count(engine) == 3
        await writer.close()


async def test_a_released_slot_can_be_taken_again(engine: Engine, settings: AuditSettings) -> None:
    writer = AuditWriter(rejecting(settings, 1), engine)
    await writer.start()
    assert writer.reserve()
    with pytest.raises(ServiceUnavailable):
        writer.reserve()
    writer.release()  # the request ended without an event
    assert writer.reserved == 0
    assert writer.reserve()
    await writer.record(make_event(1), reserved=True)
    await writer.close()
    assert count(engine) == 1


@pytest.mark.parametrize("seed", range(6))
async def test_queued_plus_held_never_exceeds_queue_size_and_refusals_only_when_full(
    engine: Engine, settings: AuditSettings, seed: int
) -> None:
    """Random interleavings of reserve / record with and without a slot / release / letting
    the writer run; every accepted event is stored, nothing else."""
    queue_size = 5
    writer = AuditWriter(rejecting(settings, queue_size), engine)
    await writer.start()
    rng = random.Random(seed)
    held = accepted = refused = 0
    for n in range(400):
        full = writer.queue_depth + writer.reserved >= queue_size
        op = rng.choice(("reserve", "reserve", "use", "record", "release", "yield"))
        if op in ("reserve", "record"):
            try:
                if op == "reserve":
                    assert writer.reserve()
                    held += 1
                else:
                    await writer.record(make_event(n))
                    accepted += 1
                assert not full, "accepted beyond queue_size"
            except ServiceUnavailable as exc:
                assert exc.reason_id == "audit_backpressure"
                assert full, "refused although there was room"
                refused += 1
        elif op == "use" and held:
            await writer.record(make_event(n), reserved=True)  # never refused
            held, accepted = held - 1, accepted + 1
        elif op == "release" and held:
            writer.release()
            held -= 1
        elif op == "yield":
            await asyncio.sleep(0.0005 * rng.randint(0, 4))  # the writer may take a batch
        assert writer.reserved == held
        assert writer.queue_depth + writer.reserved <= queue_size
    for _ in range(held):
        writer.release()
    await writer.close()
    assert refused > 0  # the queue really was full at times
    assert count(engine) == accepted == writer.queued


async def test_no_slot_while_the_writer_is_not_running(
    engine: Engine, settings: AuditSettings
) -> None:
    writer = AuditWriter(rejecting(settings, 3), engine)
    with pytest.raises(ServiceUnavailable) as info:
        writer.reserve()
    assert info.value.reason_id == "audit_unavailable"
    await writer.start()
    assert writer.reserve()
    await writer.close()  # stopped while a request held a slot
    with pytest.raises(ServiceUnavailable) as info:
        await writer.record(make_event(1), reserved=True)
    assert info.value.reason_id == "audit_unavailable"
    assert writer.reserved == 0  # the slot is gone with the refused event, not leaked
    with pytest.raises(ServiceUnavailable) as info:
        writer.reserve()
    assert info.value.reason_id == "audit_unavailable"


async def test_block_mode_holds_no_slot_but_knows_when_the_writer_is_down(
    engine: Engine, settings: AuditSettings
) -> None:
    writer = AuditWriter(settings.model_copy(update={"queue_size": 1}), engine)
    with pytest.raises(ServiceUnavailable):
        writer.reserve()
    await writer.start()
    assert [writer.reserve() for _ in range(5)] == [False] * 5  # a full queue waits, later
    assert writer.reserved == 0
    await writer.record(make_event(1), reserved=False)
    await writer.close()
    assert count(engine) == 1
