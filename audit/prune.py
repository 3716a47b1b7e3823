"""Delete old audit events without losing the ability to verify what remains.

Per chain, the longest run of rows (from the start) that are all older than the cutoff is
deleted, with its checkpoints, and a signed anchor records the seq and hash of the last
deleted row. ``verify`` then starts each chain from its anchor: tampering with what remains,
removing the anchor, or slipping rows in before it is still found. Only whole prefixes go,
so a row newer than the cutoff is never deleted, even if it was written out of time order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Connection, Engine, delete, func, insert, select

from audit.chain import Signer, checkpoint_message
from audit.models import anchors_table, checkpoints_table, events_table
from gateway.errors import ConfigError

log = structlog.get_logger(__name__)
ev = events_table.c


@dataclass
class PruneReport:
    """How many rows went, per chain, and where each pruned chain now starts."""

    cutoff: datetime
    deleted: dict[str, int] = field(default_factory=dict)
    anchors: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def prune(
    engine: Engine,
    older_than: timedelta,
    legal_minimum_days: int = 180,
    *,
    signer: Signer | None = None,
    now: datetime | None = None,
) -> PruneReport:
    """Delete events older than ``older_than``; refuse anything under the legal minimum."""
    if older_than < timedelta(days=legal_minimum_days):
        raise ConfigError(
            f"refusing to prune events younger than {legal_minimum_days} days "
            f"(asked for {older_than.days} days); audit.retention_min_days is the legal "
            "minimum retention, raise --older-than or change that setting deliberately",
            reason_id="retention_minimum",
        )
    cutoff = (now or datetime.now(UTC)) - older_than
    report = PruneReport(cutoff)
    with engine.connect() as conn:
        chain_ids = list(conn.execute(select(ev.chain_id).distinct()).scalars())
    for chain_id in sorted(chain_ids):
        with engine.begin() as conn:
            pruned = _prune_chain(conn, chain_id, cutoff, signer)
        if pruned:
            report.anchors[chain_id], report.deleted[chain_id] = pruned
    log.info("audit_pruned", cutoff=cutoff.isoformat(), rows=report.total)
    return report


def _prune_chain(
    conn: Connection, chain_id: str, cutoff: datetime, signer: Signer | None
) -> tuple[int, int] | None:
    """Delete the old prefix of one chain and anchor it; ``(anchor seq, rows)`` or None."""
    in_chain = ev.chain_id == chain_id
    first_young = conn.execute(select(func.min(ev.seq)).where(in_chain, ev.time >= cutoff)).scalar()
    if first_young is None:
        last_seq = conn.execute(select(func.max(ev.seq)).where(in_chain)).scalar()
    else:
        last_seq = int(first_young) - 1
    last = conn.execute(select(ev.hash).where(in_chain, ev.seq == last_seq)).first()
    if last_seq is None or last is None:  # nothing old, or the prefix is already gone
        return None
    last_seq = int(last_seq)
    rows = conn.execute(delete(events_table).where(in_chain, ev.seq <= last_seq)).rowcount
    conn.execute(
        delete(checkpoints_table).where(
            checkpoints_table.c.chain_id == chain_id, checkpoints_table.c.seq <= last_seq
        )
    )
    at = datetime.now(UTC)
    message = checkpoint_message("anchor", chain_id, last_seq, last.hash, at)
    conn.execute(
        insert(anchors_table).values(
            chain_id=chain_id,
            seq=last_seq,
            hash=last.hash,
            time=at,
            pruned_rows=rows,
            signature=signer.sign(message) if signer else None,
            key_id=signer.key_id if signer else None,
        )
    )
    return last_seq, rows
