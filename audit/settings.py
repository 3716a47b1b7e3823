"""Settings of the audit trail (section ``audit:`` of wardgate.yaml)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class AuditSettings(BaseModel):
    """How audit events are batched, spooled, chained, signed, forwarded and kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    durability: Literal["fast", "strict"] = "fast"
    batch_size: int = Field(500, ge=1, le=100_000)
    batch_interval_ms: int = Field(50, ge=1, le=60_000)
    queue_size: int = Field(100_000, ge=1)
    when_full: Literal["block", "reject"] = "block"
    spool_dir: str = ".wardgate/spool"
    instance_id: str | None = None  # chain id prefix; defaults to the host name
    # how long to spool straight to disk after a database failure before trying it again
    retry_interval_s: float = Field(1.0, gt=0, le=300)
    checkpoint_every: int = Field(1000, ge=1, le=10_000_000)
    checkpoint_interval_s: float = Field(60.0, gt=0, le=86_400)
    # Ed25519 signing key for checkpoints and prune anchors: PEM or a 32-byte hex seed,
    # read from this environment variable, else from this file; neither = unsigned.
    signing_key_env: str = "WARDGATE_AUDIT_SIGNING_KEY"
    signing_key_file: str | None = None
    retention_min_days: int = Field(180, ge=1, le=36_500)
    syslog_url: str | None = None  # tcp://host:port — live RFC 5424 forwarding

    @field_validator("syslog_url")
    @classmethod
    def _tcp_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme != "tcp" or not parts.hostname or parts.port is None:
            raise ValueError("must look like tcp://host:port")
        return v
