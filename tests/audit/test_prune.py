"""Prune: the legal minimum holds, and verification survives pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from audit.models import anchors_table, events_table
from audit.prune import prune
from audit.settings import AuditSettings
from audit.verify import verify
from audit.writer import AuditWriter
from gateway.errors import ConfigError
from tests.audit.conftest import make_event
from tests.audit.test_verify import PUBLIC, SIGNER

ev = events_table.c
START = datetime(2026, 1, 1, tzinfo=UTC)  # make_event(n) happens at START + n seconds
NOW = START + timedelta(days=180, seconds=25)  # 180 days later, events 0..24 are older


@pytest.fixture
async def store(engine: Engine, settings: AuditSettings) -> str:
    writer = AuditWriter(
        settings.model_copy(update={"checkpoint_every": 10}), engine, signer=SIGNER
    )
    await writer.start()
    for i in range(50):
        await writer.record(make_event(i))
    await writer.close()
    return writer.chain_id


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events_table)).scalar_one()


@pytest.mark.parametrize("days", [0, 1, 179])
async def test_pruning_below_the_legal_minimum_is_refused_and_deletes_nothing(
    engine: Engine, store: str, days: int
) -> None:
    with pytest.raises(ConfigError, match="refusing to prune events younger than 180 days"):
        prune(engine, timedelta(days=days), now=NOW, signer=SIGNER)
    assert rows(engine) == 50


async def test_a_higher_configured_minimum_is_enforced(engine: Engine, store: str) -> None:
    with pytest.raises(ConfigError) as info:
        prune(engine, timedelta(days=200), legal_minimum_days=365, now=NOW)
    assert info.value.reason_id == "retention_minimum" and rows(engine) == 50


async def test_prune_deletes_only_old_rows_and_the_rest_still_verifies(
    engine: Engine, store: str
) -> None:
    report = prune(engine, timedelta(days=180), now=NOW, signer=SIGNER)
    assert report.deleted == {store: 25} and report.anchors == {store: 25}
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(ev.time))).scalar_one()
    assert oldest >= NOW - timedelta(days=180) and rows(engine) == 25
    assert verify(engine, public_key=PUBLIC).ok
    # pruning again with the same cutoff is a no-op
    assert prune(engine, timedelta(days=180), now=NOW, signer=SIGNER).total == 0
    assert verify(engine, public_key=PUBLIC).ok


def edit_remaining(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(events_table).where(ev.seq == 30).values(records=9999))


def drop_anchor(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(anchors_table))


def forge_anchor(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(anchors_table).values(seq=27))
        conn.execute(delete(events_table).where(ev.seq <= 27))


def slip_row_before_anchor(engine: Engine) -> None:
    with engine.begin() as conn:
        row = dict(conn.execute(select(events_table).where(ev.seq == 26)).one()._mapping)
        conn.execute(insert(events_table).values({**row, "seq": 3, "id": "slipped"}))


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"),
    [
        (edit_remaining, "row_altered", 30),
        (drop_anchor, "rows_missing", 1),
        (forge_anchor, "signature_invalid", 27),
        (slip_row_before_anchor, "row_before_anchor", 3),
    ],
)
async def test_tampering_after_prune_is_still_found(
    engine: Engine, store: str, tamper: object, kind: str, seq: int
) -> None:
    prune(engine, timedelta(days=180), now=NOW, signer=SIGNER)
    tamper(engine)  # type: ignore[operator]
    (problem,) = verify(engine, public_key=PUBLIC).problems
    assert (problem.kind, problem.seq) == (kind, seq)
