"""Tampering with the store in every way an insider could, and verify naming it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, delete, insert, select, update

from audit.chain import HASHED_FIELDS, Signer, checkpoint_message, link
from audit.models import checkpoints_table, events_table
from audit.settings import AuditSettings
from audit.verify import verify
from audit.writer import AuditWriter
from tests.audit.conftest import SEED_HEX, make_event

ev = events_table.c
SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED_HEX)))
PUBLIC = SIGNER.private_key.public_key()
CONTENT = [f for f in HASHED_FIELDS if f != "chain_id"]


@pytest.fixture
async def store(engine: Engine, settings: AuditSettings) -> str:
    """50 events in one chain with signed checkpoints at 10, 20, … 50; returns the chain id."""
    every = settings.model_copy(update={"checkpoint_every": 10, "batch_size": 10})
    writer = AuditWriter(every, engine, signer=SIGNER)
    await writer.start()
    for i in range(50):
        await writer.record(make_event(i))
    await writer.close()
    return writer.chain_id


def row(engine: Engine, seq: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(events_table).where(ev.seq == seq)).one()._mapping)


def relink_from(engine: Engine, chain_id: str, seq: int) -> None:
    """What a forger who knows the algorithm (but not the key) does: recompute the hashes."""
    with engine.begin() as conn:
        prev = conn.execute(select(ev.hash).where(ev.seq == seq - 1)).scalar_one()
        for r in conn.execute(select(events_table).where(ev.seq >= seq).order_by(ev.seq)).all():
            fields = dict(r._mapping)
            new = link(prev, r.seq, fields)
            conn.execute(
                update(events_table)
                .where(ev.chain_id == chain_id, ev.seq == r.seq)
                .values(prev_hash=prev, hash=new)
            )
            prev = new


async def test_a_clean_store_verifies_with_and_without_the_key(engine: Engine, store: str) -> None:
    report = verify(engine, public_key=PUBLIC)
    assert report.ok and report.rows == 50 and report.signatures_checked
    assert report.chains[0].checkpoints == 5 and report.chains[0].unprotected_tail == 0
    unchecked = verify(engine)
    assert unchecked.ok and any("not checked" in n for n in unchecked.notes())


def edit(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(events_table).where(ev.seq == 17).values(records=0))


def delete_one(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(events_table).where(ev.seq == 17))


def swap_contents(engine: Engine, chain: str) -> None:
    a, b = row(engine, 17), row(engine, 18)
    with engine.begin() as conn:
        conn.execute(update(events_table).where(ev.seq == 17).values({f: b[f] for f in CONTENT}))
        conn.execute(update(events_table).where(ev.seq == 18).values({f: a[f] for f in CONTENT}))


def swap_whole_rows(engine: Engine, chain: str) -> None:
    a, b = row(engine, 17), row(engine, 18)
    keep = {"chain_id", "seq"}
    with engine.begin() as conn:
        conn.execute(
            update(events_table).where(ev.seq == 17).values({f: b[f] for f in b if f not in keep})
        )
        conn.execute(
            update(events_table).where(ev.seq == 18).values({f: a[f] for f in a if f not in keep})
        )


def edit_and_relink(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(events_table).where(ev.seq == 17).values(subject="someone.else"))
    relink_from(engine, chain, 17)


def forge_row_in_the_middle(engine: Engine, chain: str) -> None:
    """Shift rows 15.. up by one, insert a forged row at 15, and relink everything after."""
    with engine.begin() as conn:
        for s in range(50, 14, -1):
            conn.execute(update(events_table).where(ev.seq == s).values(seq=s + 1))
        forged = row_like(conn, 14, seq=15, subject="forger", id="forged-1")
        conn.execute(insert(events_table).values(forged))
    relink_from(engine, chain, 15)


def row_like(conn: Any, source_seq: int, **changes: Any) -> dict[str, Any]:
    base = dict(conn.execute(select(events_table).where(ev.seq == source_seq)).one()._mapping)
    base.update(changes)
    return base


def forge_row_at_the_end(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        forged = row_like(conn, 50, seq=51, id="forged-2", prev_hash="ab" * 32)
        forged["hash"] = link(forged["prev_hash"], 51, forged)
        conn.execute(insert(events_table).values(forged))


def delete_the_tail(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(events_table).where(ev.seq > 45))


def break_a_signature(engine: Engine, chain: str) -> None:
    with engine.begin() as conn:
        sig = conn.execute(
            select(checkpoints_table.c.signature).where(checkpoints_table.c.seq == 30)
        ).scalar_one()
        flipped = ("0" if sig[0] != "0" else "1") + sig[1:]
        conn.execute(
            update(checkpoints_table).where(checkpoints_table.c.seq == 30).values(signature=flipped)
        )


def rewrite_and_resign_with_own_key(engine: Engine, chain: str) -> None:
    edit_and_relink(engine, chain)
    forger = Signer(Ed25519PrivateKey.generate())
    with engine.begin() as conn:
        for cp in conn.execute(select(checkpoints_table)).all():
            new_hash = conn.execute(select(ev.hash).where(ev.seq == cp.seq)).scalar_one()
            msg = checkpoint_message("checkpoint", chain, cp.seq, new_hash, cp.time)
            conn.execute(
                update(checkpoints_table)
                .where(checkpoints_table.c.id == cp.id)
                .values(hash=new_hash, signature=forger.sign(msg), key_id=forger.key_id)
            )


TAMPERING: list[tuple[Callable[[Engine, str], None], str, int]] = [
    (edit, "row_altered", 17),
    (delete_one, "rows_missing", 17),
    (swap_contents, "row_altered", 17),
    (swap_whole_rows, "row_altered", 17),
    (edit_and_relink, "checkpoint_mismatch", 20),
    (forge_row_in_the_middle, "checkpoint_mismatch", 20),
    (forge_row_at_the_end, "chain_broken", 51),
    (delete_the_tail, "rows_missing", 46),
    (break_a_signature, "signature_invalid", 30),
    (rewrite_and_resign_with_own_key, "signature_invalid", 10),
]


@pytest.mark.parametrize(
    ("tamper", "kind", "seq"), TAMPERING, ids=[t[0].__name__ for t in TAMPERING]
)
async def test_tampering_is_found_and_named(
    engine: Engine, store: str, tamper: Callable[[Engine, str], None], kind: str, seq: int
) -> None:
    tamper(engine, store)
    report = verify(engine, public_key=PUBLIC)
    assert not report.ok
    (problem,) = report.problems
    assert (problem.kind, problem.seq, problem.chain_id) == (kind, seq, store)
    assert str(seq) in str(problem)


async def test_unsigned_checkpoints_are_a_problem_when_a_key_is_expected(
    engine: Engine, settings: AuditSettings
) -> None:
    writer = AuditWriter(settings, engine)  # no key configured: checkpoints unsigned
    await writer.start()
    await writer.record(make_event(1))
    await writer.close()
    unchecked = verify(engine)
    assert unchecked.ok and any("1 of 1 checkpoints are unsigned" in n for n in unchecked.notes())
    (problem,) = verify(engine, public_key=PUBLIC).problems
    assert problem.kind == "unsigned"


async def test_progress_is_reported(engine: Engine, store: str) -> None:
    seen: list[tuple[int, int]] = []
    verify(engine, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (50, 50)
