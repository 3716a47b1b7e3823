"""Who may use the admin listener: officers, identified exactly like proxy callers."""

from __future__ import annotations

from fastapi import Request

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
