"""Audit tables: events (hash-chained), signed checkpoints, and prune anchors.

Times are stored in UTC. SQLite has no time zone type, so ``UTCDateTime`` converts every
bound value to UTC and marks every loaded value as UTC: comparisons and the hash chain
see the same instant on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from audit.store import Base


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always UTC-aware in Python, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


def as_utc(value: datetime) -> datetime:
    """Naive times are taken as UTC; aware ones are converted."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class EventRow(Base):
    """One audit event plus its place in the hash chain of the instance that wrote it."""

    __tablename__ = "audit_events"

    # The chain position is the identity: replaying a spooled batch twice is a no-op, and
    # a caller that reuses an event id cannot make a batch fail.
    chain_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[str] = mapped_column(Text, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    subject: Mapped[str | None] = mapped_column(Text)
    roles: Mapped[list[str]] = mapped_column(JSON)
    auth_method: Mapped[str | None] = mapped_column(Text)
    client_addr: Mapped[str | None] = mapped_column(Text)
    user_agent: Mapped[str | None] = mapped_column(Text)
    upstream: Mapped[str | None] = mapped_column(Text)
    entity: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text)
    reason_id: Mapped[str] = mapped_column(Text)
    matched_rule: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    records: Mapped[int] = mapped_column(Integer)
    fields_masked: Mapped[list[str]] = mapped_column(JSON)
    pii_hits: Mapped[dict[str, int]] = mapped_column(JSON)
    request_bytes: Mapped[int] = mapped_column(BigInteger)
    response_bytes: Mapped[int] = mapped_column(BigInteger)
    latency_ms: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_audit_events_time", "time"),
        Index("ix_audit_events_subject_time", "subject", "time"),
        Index("ix_audit_events_upstream_time", "upstream", "time"),
        Index("ix_audit_events_entity_time", "entity", "time"),
        Index("ix_audit_events_decision_time", "decision", "time"),
    )


class CheckpointRow(Base):
    """A signed statement: chain ``chain_id`` had hash ``hash`` at ``seq``."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    signature: Mapped[str | None] = mapped_column(String(128))  # hex Ed25519, None = unsigned
    key_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("chain_id", "seq", name="uq_audit_checkpoints_chain_seq"),)


class AnchorRow(Base):
    """Where a pruned chain continues: the seq and hash of the last row that was deleted."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chain_id: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    pruned_rows: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[str | None] = mapped_column(String(128))
    key_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("chain_id", "seq", name="uq_audit_anchors_chain_seq"),)


events_table = cast(Table, EventRow.__table__)
checkpoints_table = cast(Table, CheckpointRow.__table__)
anchors_table = cast(Table, AnchorRow.__table__)
