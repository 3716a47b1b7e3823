"""The writer: round trip, durability modes, backpressure, spool and chain order."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from audit.models import checkpoints_table, events_table
from audit.settings import AuditSettings
from audit.spool import SPOOL_NAME, Spool
from audit.store import make_engine
from audit.verify import verify
from audit.writer import AuditWriter
from gateway.errors import ConfigError, ServiceUnavailable
from tests.audit.conftest import make_event


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar_one()


async def test_allowed_and_denied_events_round_trip_with_every_field(
    engine: Engine, settings: AuditSettings
) -> None:
    allowed = make_event(1, pii_hits={"email": 3, "iban": 1}, fields_masked=("cost", "margin"))
    denied = make_event(
        2,
        decision="deny",
        reason_id="field_write_denied",
        status=403,
        method="PATCH",
        roles=("finance", "staff"),
        records=0,
        subject=None,
        auth_method=None,
        path="/erp/orders/7\x00x",  # NUL cannot live in PostgreSQL text: replaced, not lost
    )
    writer = AuditWriter(settings, engine)
    await writer.start()
    await writer.record(allowed)
    await writer.record(denied)
    await writer.close()

    with engine.connect() as conn:
        rows = {r.id: r._mapping for r in conn.execute(select(events_table))}
    for event in (allowed, denied):
        row = rows[event.id]
        for name, value in asdict(event).items():
            expected = list(value) if isinstance(value, tuple) else value
            if name == "path":
                expected = value.replace("\x00", "\ufffd")
            assert row[name] == expected, name
    assert [rows[allowed.id]["seq"], rows[denied.id]["seq"]] == [1, 2]
    assert verify(engine).ok


async def test_strict_record_returns_only_once_committed_and_one_commit_serves_many(
    engine: Engine, settings: AuditSettings
) -> None:
    writer = AuditWriter(settings.model_copy(update={"durability": "strict"}), engine)
    await writer.start()
    events = [make_event(i) for i in range(200)]
    await asyncio.gather(*(writer.record(e) for e in events))
    # every record() has returned: every event must already be in the database
    assert count(engine) == 200
    await writer.close()
    with engine.connect() as conn:
        seqs = conn.execute(select(events_table.c.seq).order_by(events_table.c.seq)).scalars()
        assert list(seqs) == list(range(1, 201))


async def test_fast_record_returns_before_the_commit(
    engine: Engine, settings: AuditSettings
) -> None:
    slow = settings.model_copy(update={"batch_interval_ms": 2000, "batch_size": 10_000})
    writer = AuditWriter(slow, engine)
    await writer.start()
    await writer.record(make_event(1))
    assert count(engine) == 0 and writer.queued == 1
    await writer.close()  # a graceful close drains everything
    assert count(engine) == 1 and writer.written == 1


async def test_full_queue_rejects_with_backpressure_and_never_drops_silently(
    engine: Engine, settings: AuditSettings
) -> None:
    tiny = settings.model_copy(
        update={"queue_size": 5, "when_full": "reject", "batch_interval_ms": 1000}
    )
    writer = AuditWriter(tiny, engine)
    await writer.start()
    accepted, refused = 0, 0
    for i in range(50):
        try:
            await writer.record(make_event(i))
            accepted += 1
        except ServiceUnavailable as exc:
            assert exc.reason_id == "audit_backpressure" and exc.status == 503
            refused += 1
    await writer.close()
    assert refused > 0
    assert count(engine) == accepted  # everything accepted is stored, nothing else


async def test_full_queue_blocks_when_configured_to(
    engine: Engine, settings: AuditSettings
) -> None:
    tiny = settings.model_copy(update={"queue_size": 3, "when_full": "block", "batch_size": 2})
    writer = AuditWriter(tiny, engine)
    await writer.start()
    await asyncio.gather(*(writer.record(make_event(i)) for i in range(100)))
    await writer.close()
    assert count(engine) == 100


async def test_record_before_start_or_after_close_is_refused(
    engine: Engine, settings: AuditSettings
) -> None:
    writer = AuditWriter(settings, engine)
    with pytest.raises(ServiceUnavailable):
        await writer.record(make_event())
    await writer.start()
    await writer.close()
    with pytest.raises(ServiceUnavailable) as info:
        await writer.record(make_event())
    assert info.value.reason_id == "audit_unavailable"


async def test_checkpoints_every_n_events_and_at_close(
    engine: Engine, settings: AuditSettings
) -> None:
    every = settings.model_copy(
        update={"checkpoint_every": 10, "batch_size": 10, "durability": "strict"}
    )
    writer = AuditWriter(every, engine)
    await writer.start()
    for i in range(25):
        await writer.record(make_event(i))
    await writer.close()
    with engine.connect() as conn:
        seqs = list(conn.execute(select(checkpoints_table.c.seq).order_by("seq")).scalars())
    assert seqs[:2] == [10, 20] and seqs[-1] == 25
    assert verify(engine).ok


async def test_a_malformed_event_fails_alone(engine: Engine, settings: AuditSettings) -> None:
    writer = AuditWriter(settings.model_copy(update={"durability": "strict"}), engine)
    await writer.start()
    with pytest.raises(ValueError):
        await writer.record(make_event(1, status="not a number"))
    await writer.record(make_event(2))
    await writer.close()
    assert count(engine) == 1 and writer.failures == 1
    assert verify(engine).ok


async def test_database_down_at_start_spools_then_replays_in_order(
    tmp_path: Path, settings: AuditSettings, engine: Engine
) -> None:
    dead = make_engine("postgresql://root@127.0.0.1:1/test", connect_args={"connect_timeout": 1})
    strict = settings.model_copy(update={"durability": "strict"})
    first = AuditWriter(strict, dead)
    await first.start()
    events = [make_event(i) for i in range(30)]
    for e in events:
        await first.record(e)  # durable in the spool
    await first.close()
    assert first.spooled == 30 and first.written == 0

    second = AuditWriter(strict, engine)  # same spool dir, database now reachable
    await second.start()
    assert second.replayed == 30
    await second.record(make_event(99))
    await second.close()
    with engine.connect() as conn:
        query = select(events_table.c.id).where(events_table.c.chain_id == first.chain_id)
        stored = list(conn.execute(query.order_by("seq")).scalars())
    assert stored == [e.id for e in events]
    assert verify(engine).ok


def test_a_second_process_cannot_share_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    try:
        with pytest.raises(ConfigError, match="in use by another"):
            Spool(tmp_path)
    finally:
        spool.close()


async def test_a_spool_damaged_while_waiting_stops_the_writer_fail_closed(
    tmp_path: Path, settings: AuditSettings
) -> None:
    dead = make_engine("postgresql://root@127.0.0.1:1/test", connect_args={"connect_timeout": 1})
    writer = AuditWriter(settings.model_copy(update={"durability": "strict"}), dead)
    await writer.start()
    for i in range(3):
        await writer.record(make_event(i))  # spooled
    spool_file = Path(settings.spool_dir) / SPOOL_NAME
    damaged = bytearray(spool_file.read_bytes())
    damaged[30] ^= 0x01
    spool_file.write_bytes(bytes(damaged))
    async with asyncio.timeout(5):  # the next replay attempt finds the damage
        while writer.accepting:
            await asyncio.sleep(0.01)
    with pytest.raises(ServiceUnavailable) as info:
        await writer.record(make_event(9))
    assert info.value.reason_id == "audit_unavailable"
    await writer.close()
    assert spool_file.read_bytes() == bytes(damaged)  # kept as evidence for the operator


async def test_close_with_callers_blocked_on_a_full_queue_loses_none_of_them(
    engine: Engine, settings: AuditSettings
) -> None:
    tiny = settings.model_copy(
        update={"queue_size": 2, "when_full": "block", "batch_size": 1, "batch_interval_ms": 1}
    )
    writer = AuditWriter(tiny, engine)
    await writer.start()
    callers = [asyncio.create_task(writer.record(make_event(i))) for i in range(40)]
    await asyncio.sleep(0)  # all of them are now queued or blocked
    await writer.close()
    await asyncio.gather(*callers)
    assert count(engine) == 40 == writer.written


async def test_odd_values_are_stored_as_text_and_the_chain_still_verifies(
    engine: Engine, settings: AuditSettings
) -> None:
    odd = make_event(1, subject=12345, roles=("a\x00b",), pii_hits={"e\x00": 2}, latency_ms=3)
    writer = AuditWriter(settings, engine)
    await writer.start()
    await writer.record(odd)
    await writer.close()
    with engine.connect() as conn:
        row = conn.execute(select(events_table)).one()
    assert (row.subject, row.roles, row.pii_hits) == ("12345", ["a\ufffdb"], {"e\ufffd": 2})
    assert row.latency_ms == 3.0
    assert verify(engine).ok
