"""Helpers shared by the end-to-end tests and the revocation benchmark."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
import orjson

from tests.e2e.conftest import AUDIENCE, HR_SECRET, Gateway, Upstreams

ERP_NS = "http://demo.wardgate.dev/erp"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"


def soap(operation: str, inner: str) -> bytes:
    return (
        f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:erp="{ERP_NS}"><soap:Body>'
        f"<erp:{operation}>{inner}</erp:{operation}></soap:Body></soap:Envelope>"
    ).encode()


def soap_headers(gateway: Gateway, operation: str, **credential: str) -> dict[str, str]:
    auth = credential or gateway.auth("sales01")
    return {**auth, "Content-Type": "text/xml", "SOAPAction": f'"{ERP_NS}/{operation}"'}


def roles_from_token(ups: Upstreams) -> dict[str, Any]:
    """Settings overrides under which the demo IdP's ``roles`` claim grants the roles.

    For launched gateways that need no directory sync (which costs a CLI run): mint tokens
    with ``gateway.token(sub, extra={"roles": [...]})``.
    """
    return {
        "issuers": [
            {
                "issuer": ups.idp_url,
                "jwks_url": f"{ups.idp_url}/jwks.json",
                "audience": AUDIENCE,
                "algorithms": ["RS256"],
                "trust_role_claims": True,
            }
        ]
    }


def wait_until_key_loaded(gateway: Gateway, key: str, within_s: float = 5.0) -> None:
    """Gateways reload API keys about once a second: wait until this one is known.

    Probes a path with no upstream: a loaded key gets 404 (no_upstream), an unknown one 401.
    """
    deadline = time.monotonic() + within_s
    while True:
        r = httpx.get(f"{gateway.url}/e2e-no-such-upstream", headers={"X-API-Key": key})
        if r.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 404, f"the new key is still refused after {within_s} s: {r.text}"


def sign_hr(body: bytes, *, secret: str = HR_SECRET, t: int | None = None) -> str:
    """``X-Wardgate-Signature`` for ``body``: HMAC-SHA256 over ``"<t>.<body>"``."""
    stamp = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def hr_event(type_: str, subject: str, **fields: Any) -> bytes:
    return orjson.dumps(
        {"id": f"e2e-{uuid.uuid4().hex}", "type": type_, "subject": subject, **fields}
    )
