"""The state of one request as it moves through the stages, and its audit event."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from audit.event import AuditEvent

if TYPE_CHECKING:
    from gateway.errors import RequestRefused
    from gateway.fieldplan import FieldPlan
    from gateway.principal import Principal
    from gateway.resources import Resource
    from gateway.routing import Route


@dataclass(slots=True)
class Exchange:
    """One request: filled in stage by stage, read by ``record`` at the end."""

    scope: dict[str, Any]
    method: str
    headers: list[tuple[bytes, bytes]]
    request_id: str = field(default_factory=lambda: os.urandom(8).hex())
    started: float = field(default_factory=time.perf_counter)
    authorization: str | None = None
    api_key: str | None = None
    content_type: str = ""
    user_agent: str | None = None
    client_addr: str | None = None
    principal: Principal | None = None
    roles: frozenset[str] = frozenset()
    route: Route | None = None
    resource: Resource | None = None
    plan: FieldPlan | None = None
    decision: str = "deny"
    reason_id: str = "internal_error"
    matched_rule: str | None = None
    status: int = 500
    records: int = 0
    fields_masked: tuple[str, ...] = ()
    pii_hits: dict[str, int] = field(default_factory=dict)
    request_bytes: int = 0
    response_bytes: int = 0
    response_started: bool = False
    recorded: bool = False
    audit_slot: bool = False  # holds a slot reserved in the audit queue until recorded
    body_refusal: RequestRefused | None = None  # a streamed body broke its limit

    def __post_init__(self) -> None:
        # One pass over the headers for everything the stages read.
        for name, value in self.headers:
            if name == b"authorization":
                self.authorization = value.decode("latin-1")
            elif name == b"x-api-key":
                self.api_key = value.decode("latin-1")
            elif name == b"content-type":
                self.content_type = value.decode("latin-1")
            elif name == b"user-agent":
                self.user_agent = value.decode("latin-1")[:512]
            elif name == b"content-length" and value.isdigit():
                self.request_bytes = int(value)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def header_map(self) -> dict[str, str]:
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.headers}

    @property
    def path_for_audit(self) -> str:
        if self.route is not None:
            return self.route.public_path
        raw = self.scope.get("raw_path") or self.scope.get("path", "").encode()
        return raw.decode("latin-1", "replace")[:2048]

    def audit_event(self) -> AuditEvent:
        return AuditEvent(
            request_id=self.request_id,
            method=self.method,
            path=self.path_for_audit,
            decision="allow" if self.decision == "allow" else "deny",
            reason_id=self.reason_id,
            status=self.status,
            subject=self.principal.subject if self.principal else None,
            roles=tuple(sorted(self.roles)),
            auth_method=self.principal.auth_method if self.principal else None,
            client_addr=self.client_addr,
            user_agent=self.user_agent,
            upstream=self.route.upstream if self.route else None,
            entity=self.resource.entity if self.resource else None,
            matched_rule=self.matched_rule,
            records=self.records,
            fields_masked=self.fields_masked,
            pii_hits=self.pii_hits,
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes,
            latency_ms=round(self.elapsed() * 1000, 3),
        )
