"""Walk every chain in seq order and name the first problem in each.

What each finding means:

- ``rows_missing``        a seq gap, or a checkpoint beyond the last row: rows were deleted
- ``row_altered``         a row's content does not match its own hash: edited, or swapped
                          with / reordered against another row
- ``chain_broken``        a row's ``prev_hash`` is not its predecessor's hash: a row was
                          inserted, replaced or moved
- ``row_before_anchor``   a row at or below the prune anchor: inserted after pruning
- ``checkpoint_mismatch`` a checkpoint names a hash the chain does not have at that seq
- ``signature_invalid``   a checkpoint or anchor signature does not verify with the key
- ``unsigned``            a checkpoint or anchor without a signature while a key is given

Rows are streamed (``yield_per``), so memory does not grow with the table; checkpoints
(one per ``checkpoint_every`` rows) are held per chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, func, select, union

from audit.chain import GENESIS_HASH, checkpoint_message, link, signature_ok
from audit.models import anchors_table, checkpoints_table, events_table

Progress = Callable[[int, int], None]
_STREAM = 5000


@dataclass(frozen=True)
class Problem:
    """The first thing wrong with one chain."""

    chain_id: str
    seq: int | None
    kind: str
    detail: str
    event_id: str | None = None

    def __str__(self) -> str:
        return f"chain {self.chain_id}: {self.detail}"


@dataclass
class ChainReport:
    """What was checked in one chain."""

    chain_id: str
    rows: int = 0
    last_seq: int = 0
    anchor_seq: int | None = None
    checkpoints: int = 0
    unsigned_checkpoints: int = 0
    last_checkpoint_seq: int = 0
    problem: Problem | None = None

    @property
    def unprotected_tail(self) -> int:
        """Rows after the last checkpoint: covered by the chain, not by a signature."""
        return max(0, self.last_seq - max(self.last_checkpoint_seq, self.anchor_seq or 0))


@dataclass
class VerifyReport:
    """The result of ``verify``: one ``ChainReport`` per chain."""

    chains: list[ChainReport] = field(default_factory=list)
    signatures_checked: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problems(self) -> list[Problem]:
        return [c.problem for c in self.chains if c.problem is not None]

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chains)

    def notes(self) -> list[str]:
        """Caveats that are not failures (unsigned checkpoints, unprotected tails)."""
        notes = []
        if not self.signatures_checked:
            notes.append("signatures not checked: no public key given (--public-key)")
        for c in self.chains:
            if c.unsigned_checkpoints:
                notes.append(
                    f"chain {c.chain_id}: {c.unsigned_checkpoints} of {c.checkpoints} checkpoints "
                    "are unsigned (no signing key was configured); they prove nothing to a "
                    "forger who knows the algorithm"
                )
            if c.problem is None and c.unprotected_tail:
                notes.append(
                    f"chain {c.chain_id}: last {c.unprotected_tail} rows are after its last "
                    "checkpoint (protected by the hash chain only)"
                )
        return notes


def verify(
    engine: Engine,
    *,
    public_key: Ed25519PublicKey | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Check every chain in the store; see the module docstring for the findings."""
    report = VerifyReport(signatures_checked=public_key is not None)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(events_table)).scalar_one()
        done = 0
        for chain_id in _chain_ids(conn):
            chain = ChainReport(chain_id)
            report.chains.append(chain)
            done = _verify_chain(conn, chain, public_key, progress, done, total)
    return report


def _chain_ids(conn: Connection) -> list[str]:
    query = union(
        select(events_table.c.chain_id).distinct(),
        select(checkpoints_table.c.chain_id),
        select(anchors_table.c.chain_id),
    )
    return sorted(conn.execute(query).scalars())


def _verify_chain(
    conn: Connection,
    chain: ChainReport,
    public_key: Ed25519PublicKey | None,
    progress: Progress | None,
    done: int,
    total: int,
) -> int:
    cid = chain.chain_id
    latest_anchor = (
        select(anchors_table)
        .where(anchors_table.c.chain_id == cid)
        .order_by(anchors_table.c.seq.desc())
        .limit(1)
    )
    anchor = conn.execute(latest_anchor).first()
    prev, expected = GENESIS_HASH, 1
    if anchor is not None:
        chain.anchor_seq = anchor.seq
        prev, expected = anchor.hash, anchor.seq + 1
        chain.problem = _signature_problem(cid, "anchor", anchor, public_key)
        if chain.problem:
            return done
    checkpoints = {
        cp.seq: cp
        for cp in conn.execute(select(checkpoints_table).where(checkpoints_table.c.chain_id == cid))
    }
    rows = conn.execution_options(stream_results=True, yield_per=_STREAM).execute(
        select(events_table).where(events_table.c.chain_id == cid).order_by(events_table.c.seq)
    )
    for row in rows:
        chain.rows += 1
        done += 1
        if progress is not None and done % _STREAM == 0:
            progress(done, total)
        chain.problem = _row_problem(cid, row, prev, expected, chain.anchor_seq)
        if chain.problem is None and row.seq in checkpoints:
            chain.checkpoints += 1
            chain.unsigned_checkpoints += checkpoints[row.seq].signature is None
            chain.last_checkpoint_seq = row.seq
            chain.problem = _checkpoint_problem(cid, row, checkpoints[row.seq], public_key)
        if chain.problem is not None:
            rows.close()
            return done
        prev, expected, chain.last_seq = row.hash, row.seq + 1, row.seq
    beyond = [s for s in checkpoints if s > (chain.last_seq or chain.anchor_seq or 0)]
    if beyond:
        chain.problem = Problem(
            cid,
            chain.last_seq + 1,
            "rows_missing",
            f"rows {chain.last_seq + 1}..{max(beyond)} were deleted: a checkpoint covers seq "
            f"{max(beyond)} but the chain ends at seq {chain.last_seq}",
        )
    if progress is not None:
        progress(done, total)
    return done


def _row_problem(
    cid: str, row: Any, prev: str, expected: int, anchor_seq: int | None
) -> Problem | None:
    if anchor_seq is not None and row.seq <= anchor_seq:
        return Problem(
            cid,
            row.seq,
            "row_before_anchor",
            f"row seq {row.seq} (event {row.id}) lies at or before the prune anchor at seq "
            f"{anchor_seq}: it was inserted after pruning",
            row.id,
        )
    if row.seq != expected:
        return Problem(
            cid,
            expected,
            "rows_missing",
            f"rows {expected}..{row.seq - 1} are missing (deleted) before event {row.id}",
            row.id,
        )
    if link(row.prev_hash, row.seq, row._mapping) != row.hash:
        return Problem(
            cid,
            row.seq,
            "row_altered",
            f"row seq {row.seq} (event {row.id}) does not match its hash: it was edited, or "
            "swapped with another row",
            row.id,
        )
    if row.prev_hash != prev:
        return Problem(
            cid,
            row.seq,
            "chain_broken",
            f"row seq {row.seq} (event {row.id}) does not follow seq {row.seq - 1}: a row was "
            "inserted, replaced or moved here",
            row.id,
        )
    return None


def _checkpoint_problem(
    cid: str, row: Any, cp: Any, public_key: Ed25519PublicKey | None
) -> Problem | None:
    if cp.hash != row.hash:
        return Problem(
            cid,
            row.seq,
            "checkpoint_mismatch",
            f"the checkpoint at seq {row.seq} does not match the chain there: rows up to "
            f"seq {row.seq} were rewritten, or the checkpoint was forged",
            row.id,
        )
    return _signature_problem(cid, "checkpoint", cp, public_key)


def _signature_problem(
    cid: str, kind: str, record: Any, public_key: Ed25519PublicKey | None
) -> Problem | None:
    if public_key is None:
        return None
    if record.signature is None:
        return Problem(cid, record.seq, "unsigned", f"the {kind} at seq {record.seq} is not signed")
    message = checkpoint_message(kind, cid, record.seq, record.hash, record.time)
    if not signature_ok(public_key, message, record.signature):
        return Problem(
            cid,
            record.seq,
            "signature_invalid",
            f"the {kind} at seq {record.seq} has a signature that does not verify "
            f"(key id {record.key_id}): it was forged or altered",
        )
    return None
