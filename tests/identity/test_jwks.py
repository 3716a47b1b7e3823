"""The JWKS cache against a real server: refetch limits, rotation, outages, shared fetches."""

from __future__ import annotations

import asyncio
import time

import httpx

from gateway.identity import Identifier
from gateway.jwks import MAX_JWKS_BYTES, JwksCache

from .conftest import (
    FakeClock,
    JwksServer,
    SigningKey,
    claims,
    ec_key,
    issuer_settings,
    rsa_key,
)
from .test_jwt import refused


async def test_unknown_kid_flood_fetches_once_a_minute(
    identifier: Identifier, jwks_server: JwksServer, jwks_clock: FakeClock
) -> None:
    tokens = [rsa_key(f"unknown-{i}", slot="stranger").sign(claims()) for i in range(200)]
    for token in tokens:
        assert await refused(identifier, token) == "token_unknown_key"
    assert len(jwks_server.requests) == 1  # the first lookup loads the keys; no more
    jwks_clock.now += 59
    for token in tokens[:50]:
        await refused(identifier, token)
    assert len(jwks_server.requests) == 1
    jwks_clock.now += 1
    for token in tokens[:50]:
        await refused(identifier, token)
    assert len(jwks_server.requests) == 2  # one more fetch once the minute is over


async def test_concurrent_unknown_kids_share_one_fetch(
    identifier: Identifier, jwks_server: JwksServer
) -> None:
    jwks_server.delay_s = 0.05  # keep the first fetch in flight while the others arrive
    tokens = [rsa_key(f"new-{i}", slot="stranger").sign(claims()) for i in range(50)]
    results = await asyncio.gather(*(refused(identifier, t) for t in tokens))
    assert set(results) == {"token_unknown_key"}
    assert len(jwks_server.requests) == 1


async def test_rotation_new_kid_accepted_after_one_fetch(
    identifier: Identifier, jwks_server: JwksServer, key: SigningKey, jwks_clock: FakeClock
) -> None:
    await identifier.identify(f"Bearer {key.sign(claims())}", None)
    assert len(jwks_server.requests) == 1
    successor = rsa_key("k2")
    jwks_server.publish(key, successor)
    jwks_clock.now += 61  # the last fetch is older than the refetch interval
    principal = await identifier.identify(f"Bearer {successor.sign(claims(sub='dave'))}", None)
    assert principal.subject == "dave"
    assert len(jwks_server.requests) == 2
    # The old key keeps working during the rotation; no further fetches needed.
    await identifier.identify(f"Bearer {key.sign(claims(sub='erin'))}", None)
    assert len(jwks_server.requests) == 2


async def test_new_kid_right_after_a_fetch_waits_for_the_interval(
    identifier: Identifier, jwks_server: JwksServer, key: SigningKey, jwks_clock: FakeClock
) -> None:
    await identifier.identify(f"Bearer {key.sign(claims())}", None)
    successor = rsa_key("k2")
    jwks_server.publish(key, successor)
    token = successor.sign(claims())
    assert await refused(identifier, token) == "token_unknown_key"
    jwks_clock.now += 60
    assert (await identifier.identify(f"Bearer {token}", None)).subject == "alice"


async def test_fetch_failure_keeps_last_good_keys(
    identifier: Identifier, jwks_server: JwksServer, key: SigningKey, jwks_clock: FakeClock
) -> None:
    await identifier.identify(f"Bearer {key.sign(claims())}", None)
    for broken in ({"status": 500}, {"document": b"<html>oops</html>"}, {"document": {"k": 1}}):
        jwks_server.status = broken.get("status", 200)  # type: ignore[assignment]
        jwks_server.document = broken.get("document", jwks_server.document)
        jwks_clock.now += 61
        await refused(identifier, rsa_key("other", slot="stranger").sign(claims()))  # refetches
        principal = await identifier.identify(f"Bearer {key.sign(claims(sub='f'))}", None)
        assert principal.subject == "f"
    assert len(jwks_server.requests) == 4


async def test_unreachable_jwks_refuses_with_unknown_key(
    http: httpx.AsyncClient, jwks_server: JwksServer, key: SigningKey, make_identifier
) -> None:
    url = jwks_server.url
    await jwks_server.close()  # nothing listens there any more
    identifier = make_identifier(issuer_settings(url))
    started = time.perf_counter()
    assert await refused(identifier, key.sign(claims())) == "token_unknown_key"
    assert time.perf_counter() - started < 2


async def test_stale_keys_refresh_in_background_without_blocking(
    http: httpx.AsyncClient, jwks_server: JwksServer, key: SigningKey
) -> None:
    clock = FakeClock()
    jwks_server.publish(key)
    cache = JwksCache(issuer_settings(jwks_server.url), http, clock=clock, ttl_s=600)
    try:
        assert await cache.get("k1") is not None
        clock.now += 600
        jwks_server.delay_s = 0.3
        jwks_server.publish(key, rsa_key("k2"))
        started = time.perf_counter()
        assert await cache.get("k1") is not None  # answered from the current keys
        assert time.perf_counter() - started < 0.05
        assert await cache.get("k1") is not None  # no second refresh while one is running
        deadline = time.monotonic() + 3
        while not cache.has("k2") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert cache.has("k2")
        assert len(jwks_server.requests) == 2
    finally:
        await cache.close()


async def test_oversized_or_overfull_jwks_rejected(
    http: httpx.AsyncClient, jwks_server: JwksServer, key: SigningKey
) -> None:
    jwks_server.document = b'{"keys": [' + b" " * MAX_JWKS_BYTES + b"]}"
    cache = JwksCache(issuer_settings(jwks_server.url), http, clock=FakeClock())
    assert await cache.get("k1") is None
    jwks_server.document = {"keys": [key.public_jwk()] * 101}
    cache = JwksCache(issuer_settings(jwks_server.url), http, clock=FakeClock())
    assert await cache.get("k1") is None


async def test_private_members_in_jwks_are_dropped(
    http: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    """A misconfigured IdP publishing its private key must not make us sign-capable."""
    signer = ec_key("ec1")
    private_jwk = {**signer.public_jwk(), "d": "AAAA"}
    jwks_server.publish(private_jwk)
    cache = JwksCache(
        issuer_settings(jwks_server.url, algorithms=["ES256"]), http, clock=FakeClock()
    )
    public = await cache.get("ec1")
    assert public is not None
    assert public.verifiers["ES256"].is_public()
