"""Who is calling: the result of the identify stage, read by every later stage."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AuthMethod = Literal["jwt", "api-key"]


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller.

    ``granted_roles`` is set only when the credential itself carries trusted roles (an API
    key's roles, or role claims from an issuer configured as trusted for them). Otherwise it
    is ``None`` and the authorize stage looks the subject's roles up in the role store.
    """

    subject: str
    auth_method: AuthMethod
    issuer: str | None = None
    issued_at: float | None = None
    expires_at: float | None = None
    credential_id: str | None = None  # API key id or token hash prefix, never the secret
    granted_roles: frozenset[str] | None = None
