"""Settings of the audit trail (section ``audit:`` of wardgate.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    durability: Literal["fast", "strict"] = "fast"
    batch_size: int = Field(500, ge=1, le=100_000)
    batch_interval_ms: int = Field(50, ge=1, le=60_000)
    queue_size: int = Field(100_000, ge=1)
    when_full: Literal["block", "reject"] = "block"
    spool_dir: str = ".wardgate/spool"
    instance_id: str | None = None  # chain id; defaults to the host name
