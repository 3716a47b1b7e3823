"""The audit event: one per request that reached Wardgate, allowed or denied.

Never holds a token, a password or a masked value: only names and counts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Decision = Literal["allow", "deny"]

# The public shape of an event, in the order the query API, CSV and export show it.
EVENT_FIELDS: tuple[str, ...] = (
    "id",
    "time",
    "request_id",
    "subject",
    "roles",
    "auth_method",
    "client_addr",
    "user_agent",
    "upstream",
    "entity",
    "method",
    "path",
    "decision",
    "reason_id",
    "matched_rule",
    "status",
    "records",
    "fields_masked",
    "pii_hits",
    "request_bytes",
    "response_bytes",
    "latency_ms",
)


def time_ordered_id() -> str:
    """A UUIDv7-style id (48-bit ms timestamp + random): sorts by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | (rand & ((1 << 76) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(slots=True)
class AuditEvent:
    request_id: str
    method: str
    path: str  # normalised path, as authorised and forwarded
    decision: Decision
    reason_id: str
    status: int
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=time_ordered_id)
    subject: str | None = None
    roles: tuple[str, ...] = ()
    auth_method: str | None = None  # "jwt" | "api-key" | None when identification failed
    client_addr: str | None = None
    user_agent: str | None = None
    upstream: str | None = None
    entity: str | None = None
    matched_rule: str | None = None
    records: int = 0
    fields_masked: tuple[str, ...] = ()
    pii_hits: dict[str, int] = field(default_factory=dict)
    request_bytes: int = 0
    response_bytes: int = 0
    latency_ms: float = 0.0
