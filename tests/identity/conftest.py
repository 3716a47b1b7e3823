"""Fixtures for the identify stage: real JWKS servers on loopback, real keys, SQLite keys."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk, jws
from sqlalchemy import Engine

from audit.store import Base, make_engine
from gateway.apikeys import ApiKey, ApiKeyStore
from gateway.identity import Identifier
from gateway.jwks import JwksCache
from gateway.settings import IssuerSettings

ISSUER = "https://idp.example.test/realms/corp"
AUDIENCE = "wardgate"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class SigningKey:
    """A private key with its kid, able to sign tokens and publish its public JWK."""

    def __init__(self, kid: str, private: Any, alg: str) -> None:
        self.kid, self.private, self.alg = kid, private, alg
        self.pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        public = private.public_key()
        self.public_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_der = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self._signer = jwk.construct(private, alg)  # loading a PEM per token is slow

    def public_jwk(self, **extra: Any) -> dict[str, Any]:
        data = jwk.construct(self.public_pem, self.alg).to_dict()
        data.pop("alg", None)
        return {**data, "kid": self.kid, "use": "sig", **extra}

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.kid, **header}
        return jws.sign(claims, self._signer, headers=headers, algorithm=self.alg)


_RSA_CACHE: dict[str, Any] = {}


def rsa_key(kid: str, alg: str = "RS256", *, slot: str | None = None) -> SigningKey:
    """An RSA signing key; keys are generated once per process per slot (2048-bit is slow)."""
    slot = slot or kid
    if slot not in _RSA_CACHE:
        _RSA_CACHE[slot] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid, _RSA_CACHE[slot], alg)


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


def hs256(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token MAC'd with ``secret`` (for the algorithm-confusion forgeries)."""
    signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}.{signature}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "roles": ["sales"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


class JwksServer:
    """A real HTTP server on 127.0.0.1 publishing a JWKS that tests may change."""

    def __init__(self) -> None:
        self.document: Any = {"keys": []}
        self.status = 200
        self.delay_s = 0.0
        self.requests: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    def publish(self, *keys: SigningKey | dict[str, Any]) -> None:
        self.document = {"keys": [k.public_jwk() if isinstance(k, SigningKey) else k for k in keys]}

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        body = self.document if isinstance(self.document, bytes) else orjson.dumps(self.document)
        return web.Response(body=body, status=self.status, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeClock:
    """A monotonic clock the test advances by hand (for refetch intervals and TTLs)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Access:
    """A test ``AccessStatus``: subjects mapped to a refusal reason."""

    def __init__(self) -> None:
        self.refused: dict[str, str] = {}

    def refusal(self, subject: str, issued_at: float | None) -> str | None:
        return self.refused.get(subject)


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def attacker_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    Base.metadata.create_all(eng, tables=[ApiKey.__table__])  # type: ignore[list-item]
    return eng


@pytest.fixture
def store(engine: Engine) -> ApiKeyStore:
    return ApiKeyStore(engine)


@pytest.fixture
def access() -> Access:
    return Access()


@pytest.fixture
def jwks_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def key() -> SigningKey:
    return rsa_key("k1")


def issuer_settings(jwks_url: str, **overrides: Any) -> IssuerSettings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks_url": jwks_url,
        "audience": AUDIENCE,
        "algorithms": ["RS256"],
        "leeway_s": 30,
    }
    values.update(overrides)
    return IssuerSettings(**values)


MakeIdentifier = Callable[..., Identifier]


@pytest.fixture
async def make_identifier(
    http: httpx.AsyncClient, store: ApiKeyStore, access: Access, jwks_clock: FakeClock
) -> AsyncIterator[MakeIdentifier]:
    """Build an ``Identifier`` over given issuers; JWKS caches use the hand-driven clock."""
    built: list[Identifier] = []

    def make(*issuers: IssuerSettings, clock: Callable[[], float] = time.time) -> Identifier:
        identifier = Identifier(
            issuers,
            store,
            access,
            http,
            clock,
            jwks_factory=lambda settings, client: JwksCache(settings, client, clock=jwks_clock),
        )
        built.append(identifier)
        return identifier

    yield make
    for identifier in built:
        await identifier.close()


@pytest.fixture
async def identifier(
    jwks_server: JwksServer, key: SigningKey, make_identifier: MakeIdentifier
) -> Identifier:
    """One RS256 issuer whose JWKS publishes ``key``."""
    jwks_server.publish(key)
    return make_identifier(issuer_settings(jwks_server.url + "/jwks"))
