"""Who may use the admin listener (officers, identified exactly like proxy callers), and the
audit event every officer call leaves behind."""

from __future__ import annotations

import uuid

from fastapi import Request

from audit.event import AuditEvent
from gateway.errors import Forbidden
from gateway.principal import Principal


async def require_principal(request: Request) -> Principal:
    services = request.app.state.services
    return await services.identity.identify(
        request.headers.get("authorization"), request.headers.get("x-api-key")
    )


async def require_officer(request: Request) -> Principal:
    """FastAPI dependency: the caller must hold the officer role (any upstream)."""
    principal = await require_principal(request)
    services = request.app.state.services
    if services.settings.admin.officer_role not in services.policy.roles_for(principal, "*"):
        raise Forbidden(
            "this admin route needs the officer role; ask a security administrator for it",
            reason_id="officer_role_required",
        )
    return principal


def officer_event(
    request: Request,
    officer: Principal,
    *,
    reason_id: str,
    entity: str,
    records: int = 0,
    response_bytes: int = 0,
) -> AuditEvent:
    """The audit event of one officer call: officers' queries and actions are audited too."""
    services = request.app.state.services
    query = request.url.query
    return AuditEvent(
        request_id=request.headers.get("x-request-id") or str(uuid.uuid4()),
        method=request.method,
        path=request.url.path + (f"?{query}" if query else ""),
        decision="allow",
        reason_id=reason_id,
        status=200,
        subject=officer.subject,
        roles=(services.settings.admin.officer_role,),
        auth_method=officer.auth_method,
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        upstream="admin",
        entity=entity,
        records=records,
        response_bytes=response_bytes,
    )
