"""The identify stage: who is calling, from a JWT of a configured issuer or an API key.

Threats handled here (every one has an adversarial test in ``tests/identity/``):
- forged JWTs: ``alg: none``, HS256 signed with the issuer's public key, a key of the wrong
  type, a token that names its own key (``jku``, ``x5u``, ``x5c``, ``jwk`` are never read),
  a ``kid`` crafted as a path (it is only ever a dictionary key);
- tokens of one issuer checked against another issuer's keys: the issuer is chosen from the
  unverified ``iss``, then only that issuer's keys and algorithms apply;
- oversized or malformed input: refused before any expensive work;
- a person who left or was suspended: refused after the credential verifies, on every
  request, also when the token itself is cached.

Verified tokens are cached by their SHA-256 until ``exp``; the cache holds claims (a
``Principal``), never a decision. All python-jose use stays here and in ``gateway/jwks.py``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.access import AccessStatus
from gateway.apikeys import ApiKeyStore, hash_secret, split_key
from gateway.errors import ConfigError, Unauthenticated
from gateway.jwks import JwksCache
from gateway.principal import Principal
from gateway.settings import IssuerSettings

MAX_TOKEN_LENGTH = 16 * 1024
CACHE_SIZE = 10_000

_ASK_IDP = "get a new token from your identity provider"
_ALLOWED_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ACCESS_WITHDRAWN = {
    "person_revoked": "your access was revoked",
    "person_suspended": "your access is suspended",
    "token_revoked": "this credential was issued before your access was reset",
}


def _refuse(reason_id: str, detail: str) -> Unauthenticated:
    return Unauthenticated(detail, reason_id=reason_id)


def _quoted(value: object) -> str:
    """A token's own value for an error detail, cut short: the token is attacker input."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True)
class _Issuer:
    """An issuer's settings compiled once: audiences as a set, its key cache."""

    settings: IssuerSettings
    audiences: frozenset[str]
    algorithms: frozenset[str]
    keys: JwksCache


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: float
    keys: JwksCache
    kid: str


@dataclass(frozen=True, slots=True)
class _Jwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64url_json(segment: str) -> dict[str, Any]:
    try:
        value = orjson.loads(_b64url(segment))
    except orjson.JSONDecodeError:
        raise _refuse("token_malformed", f"the token is not a JWT; {_ASK_IDP}") from None
    if not isinstance(value, dict):
        raise _refuse("token_malformed", f"the token is not a JWT; {_ASK_IDP}")
    return value


def _b64url(segment: str) -> bytes:
    # Strict: base64.urlsafe_b64decode silently skips characters outside the alphabet.
    # With the alphabet and the length checked, decoding cannot fail.
    if not _ALLOWED_CHARS.issuperset(segment) or len(segment) % 4 == 1:
        raise _refuse("token_malformed", f"the token is not valid base64url; {_ASK_IDP}")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _parse_jwt(token: str) -> _Jwt:
    """Split and decode a compact JWS without trusting anything in it."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise _refuse(
            "token_malformed",
            f"the token is not a signed JWT (header.payload.signature); {_ASK_IDP}",
        )
    header, claims = _b64url_json(parts[0]), _b64url_json(parts[1])
    return _Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url(parts[2]))


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refuse("token_malformed", f"the token's {name!r} claim is not a number; {_ASK_IDP}")
    return float(value)


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    """A claim by name; a dotted name also walks nested objects (``realm_access.roles``)."""
    if name in claims:
        return claims[name]
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _roles(claims: Mapping[str, Any], name: str) -> frozenset[str]:
    value = _claim(claims, name)
    if value is None:
        return frozenset()  # a trusted issuer that grants no roles grants none
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise _refuse(
            "token_malformed",
            f"the token's {name!r} claim is not a list of role names; {_ASK_IDP}",
        )
    return frozenset(value)


class Identifier:
    """Turns the credential of a request into a ``Principal`` or refuses it (401)."""

    def __init__(
        self,
        issuers: Sequence[IssuerSettings],
        api_keys: ApiKeyStore,
        access: AccessStatus,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
        *,
        jwks_factory: Callable[[IssuerSettings, httpx.AsyncClient], JwksCache] = JwksCache,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self._issuers: dict[str, _Issuer] = {}
        for settings in issuers:
            if settings.issuer in self._issuers:
                raise ConfigError(f"issuers: {settings.issuer!r} is configured twice; keep one")
            audience = settings.audience
            audiences = frozenset([audience] if isinstance(audience, str) else audience)
            if not audiences:
                raise ConfigError(f"issuers: {settings.issuer!r} has no audience; name this API")
            self._issuers[settings.issuer] = _Issuer(
                settings,
                audiences,
                frozenset(settings.algorithms),
                jwks_factory(settings, http),
            )
        self._all_algorithms = frozenset().union(*(i.algorithms for i in self._issuers.values()))
        self._api_keys = api_keys
        self._access = access
        self._clock = clock
        self._cache: OrderedDict[bytes, _Verified] = OrderedDict()
        self._cache_size = cache_size

    async def start(self) -> None:
        """Fetch every issuer's keys once so the first requests need not wait."""
        await asyncio.gather(*(issuer.keys.refresh() for issuer in self._issuers.values()))

    async def close(self) -> None:
        """Stop background key refreshes."""
        for issuer in self._issuers.values():
            await issuer.keys.close()

    async def identify(self, authorization: str | None, api_key: str | None) -> Principal:
        """The verified caller, or ``Unauthenticated`` with a stable reason id."""
        scheme, _, credential = (authorization or "").strip().partition(" ")
        credential = credential.strip()
        scheme = scheme.lower()
        if authorization and api_key:
            raise _refuse(
                "token_missing",
                "send exactly one credential: either an Authorization header or X-API-Key",
            )
        if api_key:
            principal = self._by_api_key(api_key.strip())
        elif scheme == "apikey" and credential:
            principal = self._by_api_key(credential)
        elif scheme == "bearer" and credential:
            principal = await self._by_token(credential)
        elif authorization:
            raise _refuse(
                "token_missing",
                "unsupported Authorization header; send 'Bearer <token>' or 'ApiKey <key>'",
            )
        else:
            raise _refuse(
                "token_missing",
                "no credential; send 'Authorization: Bearer <token>' or 'X-API-Key: <key>'",
            )
        reason = self._access.refusal(principal.subject, principal.issued_at)
        if reason is not None:
            what = _ACCESS_WITHDRAWN.get(reason, "your access was withdrawn")
            raise _refuse(
                reason,
                f"{what}; contact your security officer or the IT service desk",
            )
        return principal

    # -- API keys ----------------------------------------------------------------------

    def _by_api_key(self, key: str) -> Principal:
        parts = split_key(key)
        record = self._api_keys.lookup(parts[0]) if parts else None
        expected = record.secret_sha256 if record else "0" * 64
        matches = hmac.compare_digest(hash_secret(parts[1] if parts else ""), expected)
        if record is None or not matches:
            raise _refuse(
                "api_key_invalid",
                "the API key is not valid; check it was copied whole or ask for a new one",
            )
        if record.revoked:
            raise _refuse(
                "api_key_revoked",
                "this API key was revoked; ask the key's owner or an administrator for a new one",
            )
        self._api_keys.mark_used(record.id)
        return Principal(
            subject=record.subject,
            auth_method="api-key",
            issued_at=record.created_at.timestamp(),
            credential_id=record.id,
            granted_roles=record.roles,
        )

    # -- JWT ---------------------------------------------------------------------------

    async def _by_token(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise _refuse(
                "token_malformed",
                f"the token is not a JWT of at most {MAX_TOKEN_LENGTH} characters; {_ASK_IDP}",
            )
        digest = hashlib.sha256(token.encode("ascii")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            if cached.expires_at > self._clock() and cached.keys.has(cached.kid):
                self._cache.move_to_end(digest)
                return cached.principal
            del self._cache[digest]
        verified = await self._verify(token, digest)
        if verified.expires_at > self._clock():
            self._cache[digest] = verified
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return verified.principal

    async def _verify(self, token: str, digest: bytes) -> _Verified:
        jwt = _parse_jwt(token)
        alg = jwt.header.get("alg")
        if not isinstance(alg, str) or alg not in self._all_algorithms:
            raise _refuse(
                "token_algorithm_refused",
                f"the token's algorithm {_quoted(alg)} is not accepted; {_ASK_IDP}",
            )
        if "crit" in jwt.header:
            raise _refuse(
                "token_malformed", f"the token uses critical header extensions; {_ASK_IDP}"
            )
        iss = jwt.claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise _refuse(
                "token_wrong_issuer",
                f"tokens from issuer {_quoted(iss)} are not accepted; {_ASK_IDP} "
                "configured for this gateway",
            )
        if alg not in issuer.algorithms:
            raise _refuse(
                "token_algorithm_refused",
                f"issuer {iss} does not sign with {alg}; {_ASK_IDP}",
            )
        kid = jwt.header.get("kid")
        kid = kid if isinstance(kid, str) else ""
        key = await issuer.keys.get(kid) if kid else None
        if key is None:
            raise _refuse(
                "token_unknown_key",
                f"the token's signing key is not published by {iss}; {_ASK_IDP}",
            )
        if alg not in key.verifiers:
            raise _refuse(
                "token_algorithm_refused",
                f"the token's algorithm {alg} does not fit its key's type; {_ASK_IDP}",
            )
        if not key.verify(alg, jwt.signing_input, jwt.signature):
            raise _refuse("token_invalid", f"the token's signature does not verify; {_ASK_IDP}")
        principal, expires_at = self._check_claims(issuer, jwt.claims, digest)
        return _Verified(principal, expires_at, issuer.keys, kid)

    def _check_claims(
        self, issuer: _Issuer, claims: dict[str, Any], digest: bytes
    ) -> tuple[Principal, float]:
        settings = issuer.settings
        now, leeway = self._clock(), settings.leeway_s
        exp, nbf, iat = _number(claims, "exp"), _number(claims, "nbf"), _number(claims, "iat")
        if exp is None:
            raise _refuse("token_malformed", f"the token has no expiry ('exp'); {_ASK_IDP}")
        if now > exp + leeway:
            raise _refuse("token_expired", f"the token has expired; {_ASK_IDP}")
        if (nbf is not None and now + leeway < nbf) or (iat is not None and now + leeway < iat):
            raise _refuse(
                "token_not_yet_valid",
                "the token is not valid yet; check the clocks of the client and identity provider",
            )
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if issuer.audiences.isdisjoint(a for a in audiences if isinstance(a, str)):
            raise _refuse(
                "token_wrong_audience",
                f"the token is not meant for this gateway (audience {_quoted(aud)}); "
                f"ask your identity provider for a token for {sorted(issuer.audiences)}",
            )
        subject = _claim(claims, settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _refuse(
                "token_malformed",
                f"the token has no {settings.subject_claim!r} claim naming the caller; " + _ASK_IDP,
            )
        principal = Principal(
            subject=subject,
            auth_method="jwt",
            issuer=settings.issuer,
            issued_at=iat,
            expires_at=exp,
            credential_id=digest.hex()[:12],
            granted_roles=(
                _roles(claims, settings.roles_claim) if settings.trust_role_claims else None
            ),
        )
        return principal, exp
