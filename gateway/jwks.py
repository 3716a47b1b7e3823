"""An issuer's signing keys: fetched from its JWKS URL, cached by ``kid``, refreshed safely.

Threats handled here:
- a flood of tokens naming unknown ``kid`` values must not become a flood of fetches at the
  identity provider: on-demand refetches happen at most once per ``refetch_interval_s``, and
  concurrent lookups share one fetch;
- a JWKS that also publishes keys of another type (an ``oct`` secret, an EC key for an RS256
  issuer, a short RSA key) must not widen what verifies: such keys are ignored and logged;
- an identity provider outage must not lock everyone out: a failed fetch keeps the last
  good keys.

Keys only ever come from the configured ``jwks_url``, never from a token's headers. All
use of python-jose stays in this module and ``gateway/identity.py``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, padding
from jose.backends.base import Key
from jose.backends.cryptography_backend import (
    CryptographyECKey,
    CryptographyRSAKey,
)
from jose.exceptions import JWKError

from gateway.settings import IssuerSettings

log = structlog.get_logger(__name__)

MAX_JWKS_BYTES = 512 * 1024
MAX_JWKS_KEYS = 100
MIN_RSA_BITS = 2048

_EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_OKP_CURVES: dict[str, type[ed25519.Ed25519PublicKey] | type[ed448.Ed448PublicKey]] = {
    "Ed25519": ed25519.Ed25519PublicKey,
    "Ed448": ed448.Ed448PublicKey,
}
_PSS_HASHES: dict[str, hashes.HashAlgorithm] = {
    "PS256": hashes.SHA256(),
    "PS384": hashes.SHA384(),
    "PS512": hashes.SHA512(),
}
_RS_FOR_PS = {"PS256": "RS256", "PS384": "RS384", "PS512": "RS512"}


class _PssKey(Key):  # jose ships no type hints
    """RSASSA-PSS (PS256/384/512), which python-jose 3.5 does not implement."""

    def __init__(self, rsa_key: CryptographyRSAKey, algorithm: str) -> None:
        self._public = rsa_key.prepared_key
        self._hash = _PSS_HASHES[algorithm]

    def verify(self, msg: bytes, sig: bytes) -> bool:
        # RFC 7518 3.5: the salt is as long as the digest.
        pss = padding.PSS(mgf=padding.MGF1(self._hash), salt_length=padding.PSS.DIGEST_LENGTH)
        try:
            self._public.verify(sig, msg, pss, self._hash)
        except InvalidSignature:
            return False
        return True


class _EdDsaKey(Key):  # jose ships no type hints
    """EdDSA (Ed25519 / Ed448), which python-jose 3.5 does not implement."""

    def __init__(self, jwk: Mapping[str, Any]) -> None:
        self._public = _OKP_CURVES[jwk["crv"]].from_public_bytes(_b64url(jwk["x"]))

    def verify(self, msg: bytes, sig: bytes) -> bool:
        try:
            self._public.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class PublicKey:
    """One published signing key: a verifier for each configured algorithm it fits."""

    kid: str
    kty: str
    verifiers: Mapping[str, Key]

    def verify(self, algorithm: str, signing_input: bytes, signature: bytes) -> bool:
        """True only if ``algorithm`` fits this key and the signature verifies."""
        verifier = self.verifiers.get(algorithm)
        return verifier is not None and bool(verifier.verify(signing_input, signature))


def _b64url(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("expected a base64url string")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _fits(jwk: Mapping[str, Any], algorithm: str) -> bool:
    """Does this JWK's type (and curve) fit ``algorithm``? The token's header cannot widen it."""
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if algorithm.startswith(("RS", "PS")):
        return kty == "RSA"
    if algorithm in _EC_CURVES:
        return kty == "EC" and crv == _EC_CURVES[algorithm]
    if algorithm == "EdDSA":
        return kty == "OKP" and crv in _OKP_CURVES
    return False


def _verifier(jwk: Mapping[str, Any], algorithm: str) -> Key:
    if algorithm == "EdDSA":
        return _EdDsaKey(jwk)
    if algorithm in _EC_CURVES:
        return CryptographyECKey(jwk, algorithm)
    rsa_key = CryptographyRSAKey(jwk, _RS_FOR_PS.get(algorithm, algorithm))
    if rsa_key.prepared_key.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {rsa_key.prepared_key.key_size} bits is too short")
    return _PssKey(rsa_key, algorithm) if algorithm in _PSS_HASHES else rsa_key


_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def parse_jwks(document: object, algorithms: list[str], issuer: str) -> dict[str, PublicKey]:
    """Build ``{kid: PublicKey}`` from a JWKS document, keeping only keys that fit.

    Raises ``ValueError`` when the document itself is not a JWKS (the caller keeps its
    previous keys); individual unusable keys are skipped and logged.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: expected an object with a 'keys' list")
    entries = document["keys"]
    if len(entries) > MAX_JWKS_KEYS:
        raise ValueError(f"JWKS lists {len(entries)} keys, more than {MAX_JWKS_KEYS}")
    keys: dict[str, PublicKey] = {}
    for jwk in entries:
        if not isinstance(jwk, dict):
            continue
        kid, kty = jwk.get("kid"), jwk.get("kty")
        why = _unusable(jwk, keys)
        if why is None:
            # Only public members: a JWKS that leaks private parts must not make us hold them.
            public = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
            fitting = [a for a in algorithms if _fits(public, a)]
            if "alg" in public:
                fitting = [a for a in fitting if a == public["alg"]]
            try:
                verifiers = {a: _verifier(public, a) for a in fitting}
            except (JWKError, ValueError, TypeError, KeyError) as exc:
                why = f"cannot be loaded: {exc}"
            else:
                if verifiers:
                    keys[str(kid)] = PublicKey(str(kid), str(kty), verifiers)
                    continue
                why = f"type {kty!r} fits none of the configured algorithms {algorithms}"
        log.warning("jwks_key_ignored", issuer=issuer, kid=kid, kty=kty, reason=why)
    return keys


def _unusable(jwk: Mapping[str, Any], seen: Mapping[str, PublicKey]) -> str | None:
    kid = jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        return "no 'kid'"
    if kid in seen:
        return "duplicate 'kid'; the first key with it is used"
    if jwk.get("use", "sig") != "sig":
        return f"'use' is {jwk.get('use')!r}, not 'sig'"
    return None


class JwksCache:
    """Signing keys of one issuer, fetched from its JWKS URL with the control-plane client.

    ``get(kid)`` answers from memory. An unknown ``kid`` triggers a refetch at most once per
    ``refetch_interval_s``; keys older than ``ttl_s`` are refreshed in the background while
    requests keep using the current ones.
    """

    def __init__(
        self,
        issuer: IssuerSettings,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        refetch_interval_s: float = 60.0,
        ttl_s: float = 600.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.issuer: str = issuer.issuer
        self._url: str = issuer.jwks_url
        self._algorithms: list[str] = list(issuer.algorithms)
        self._http = http
        self._clock = clock
        self._refetch_interval_s = refetch_interval_s
        self._ttl_s = ttl_s
        self._timeout = httpx.Timeout(timeout_s)
        self._keys: dict[str, PublicKey] = {}
        self._last_attempt: float | None = None
        self._last_success: float | None = None
        self._fetch_task: asyncio.Task[None] | None = None

    def has(self, kid: str) -> bool:
        """Is this key still published? (memory only; used to expire cached tokens)"""
        return kid in self._keys

    async def get(self, kid: str) -> PublicKey | None:
        """The key named ``kid``, refetching the JWKS if allowed; ``None`` if unknown."""
        key = self._keys.get(kid)
        if key is not None:
            self._refresh_if_stale()
            return key
        if self._fetch_task is None and not self._may_fetch(self._refetch_interval_s):
            return None
        await self._shared_fetch()
        return self._keys.get(kid)

    async def refresh(self) -> None:
        """Fetch now (at start-up); never raises, a failure keeps the current keys."""
        await self._shared_fetch()

    async def close(self) -> None:
        """Cancel a fetch still running (the background refresh)."""
        task, self._fetch_task = self._fetch_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _may_fetch(self, interval_s: float) -> bool:
        return self._last_attempt is None or self._clock() - self._last_attempt >= interval_s

    def _refresh_if_stale(self) -> None:
        if self._fetch_task is not None or self._last_success is None:
            return
        stale = self._clock() - self._last_success >= self._ttl_s
        if stale and self._may_fetch(self._refetch_interval_s):
            self._start_fetch()

    def _start_fetch(self) -> asyncio.Task[None]:
        if self._fetch_task is None:
            self._last_attempt = self._clock()  # counted from the start: joiners do not refetch
            self._fetch_task = asyncio.create_task(self._fetch())
            self._fetch_task.add_done_callback(self._fetch_done)
        return self._fetch_task

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._fetch_task is task:
            self._fetch_task = None

    async def _shared_fetch(self) -> None:
        # shield: a caller that gives up (client disconnect) must not cancel everyone's fetch
        await asyncio.shield(self._start_fetch())

    async def _fetch(self) -> None:
        try:
            body = await self._download()
            keys = parse_jwks(orjson.loads(body), self._algorithms, self.issuer)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning(
                "jwks_fetch_failed",
                issuer=self.issuer,
                url=self._url,
                error=type(exc).__name__,
                detail=str(exc)[:200],
                keeping=len(self._keys),
            )
            return
        self._keys = keys
        self._last_success = self._clock()
        log.info("jwks_fetched", issuer=self.issuer, kids=sorted(keys))

    async def _download(self) -> bytes:
        async with self._http.stream("GET", self._url, timeout=self._timeout) as response:
            response.raise_for_status()
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS larger than {MAX_JWKS_BYTES} bytes")
            return bytes(body)
