"""A DEMO-ONLY identity provider: signs JWTs for anyone who asks. Never use it in production.

It exists so that ``wardgate demo`` and the tests have an issuer whose tokens Wardgate
verifies exactly as it verifies a corporate IdP's: RS256 signatures checked against a JWKS
fetched over HTTP. The RSA key pair is made fresh in memory at start and never written
anywhere; a new ``DemoIdP`` means a new key, so its old tokens stop verifying.

    GET /.well-known/openid-configuration   issuer, jwks_uri, supported algorithms
    GET /jwks.json                          the public key as a JWK Set
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

from gateway.demo.jsonhttp import json_response
from gateway.demo.recorder import Recorder, middlewares

ALGORITHM = "RS256"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class DemoIdP:
    """Signs RS256 tokens as ``issuer`` with a key pair generated in memory at creation."""

    def __init__(self, issuer: str, *, key_size: int = 2048) -> None:
        self.issuer = issuer.rstrip("/")
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        self._signing_key = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        numbers = private_key.public_key().public_numbers()
        public = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
        # RFC 7638 thumbprint: SHA-256 of the required members, sorted, no whitespace.
        digest = hashlib.sha256(orjson.dumps(public, option=orjson.OPT_SORT_KEYS)).digest()
        self.kid = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        self._public_jwk = {**public, "use": "sig", "alg": ALGORITHM, "kid": self.kid}

    def __repr__(self) -> str:
        return f"DemoIdP(issuer={self.issuer!r}, kid={self.kid!r})"

    def jwks(self) -> dict[str, Any]:
        """The public key as a JWK Set (``{"keys": [...]}``)."""
        return {"keys": [dict(self._public_jwk)]}

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata this IdP serves."""
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/jwks.json",
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
        }

    def issue(
        self,
        sub: str,
        *,
        audience: str | list[str],
        ttl_s: int = 3600,
        extra: dict[str, Any] | None = None,
        iat: float | None = None,
    ) -> str:
        """A signed token for ``sub``, valid from ``iat`` (default now) for ``ttl_s`` seconds.

        ``extra`` claims are added last and may override the standard ones (``iss``,
        ``exp``, …) so tests can forge exactly the token they need.
        """
        issued_at = int(time.time() if iat is None else iat)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        claims.update(extra or {})
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": self.kid})


IDP_KEY = web.AppKey("demo_idp", DemoIdP)
"""Where ``make_idp_app`` keeps its ``DemoIdP`` on the application."""


def make_idp_app(idp: DemoIdP, recorder: Recorder | None = None) -> web.Application:
    """An aiohttp app serving ``idp``'s discovery document and JWKS."""
    discovery, jwks = idp.discovery(), idp.jwks()

    async def openid_configuration(request: web.Request) -> web.Response:
        return json_response(discovery)

    async def jwks_json(request: web.Request) -> web.Response:
        return json_response(jwks)

    app = web.Application(middlewares=middlewares(recorder, "idp"))
    app[IDP_KEY] = idp
    app.router.add_get("/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/jwks.json", jwks_json)
    return app
