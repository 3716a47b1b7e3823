"""Measure the identify stage: a JWT verified cold, the same JWT warm (cached), an API key.

Run: ``.venv/bin/python bench/identity_bench.py [--tokens N] [--repeat N]``. Prints medians
of per-call wall time in microseconds. The JWKS is served by a real aiohttp server on
127.0.0.1 (fetched once before measuring; fetches are not part of the numbers).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwk, jws

from audit.store import Base, make_engine
from gateway.access import AllowAll
from gateway.apikeys import ApiKey, ApiKeyStore
from gateway.identity import Identifier
from gateway.settings import IssuerSettings

ISSUER = "https://idp.bench.test"


async def jwks_server(document: dict[str, object]) -> tuple[web.AppRunner, str]:
    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(document), content_type="application/json")

    app = web.Application()
    app.router.add_get("/jwks", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/jwks"


async def per_call_us(call: Callable[[str], Awaitable[object]], args: list[str]) -> float:
    """Median wall time of one call, in microseconds."""
    samples = []
    for arg in args:
        started = time.perf_counter_ns()
        await call(arg)
        samples.append((time.perf_counter_ns() - started) / 1000)
    return statistics.median(samples)


async def one_run(identifier: Identifier, minted: list[str], api_key: str) -> dict[str, float]:
    await identifier.start()  # keys fetched before measuring
    try:
        return {
            "jwt cold": await per_call_us(
                lambda token: identifier.identify(f"Bearer {token}", None), minted
            ),
            "jwt warm": await per_call_us(
                lambda header: identifier.identify(header, None), [f"Bearer {minted[0]}"] * 20_000
            ),
            "api key": await per_call_us(
                lambda key: identifier.identify(None, key), [api_key] * 20_000
            ),
        }
    finally:
        await identifier.close()


async def main(tokens: int, repeat: int) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = jwk.construct(private, "RS256")
    public = {**signer.public_key().to_dict(), "kid": "bench", "use": "sig"}
    runner, url = await jwks_server({"keys": [public]})
    now = int(time.time())
    minted = [
        jws.sign(
            {"iss": ISSUER, "aud": "wardgate", "sub": f"user{i}", "iat": now, "exp": now + 3600},
            signer,
            headers={"kid": "bench"},
            algorithm="RS256",
        )
        for i in range(tokens)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        Base.metadata.create_all(engine, tables=[ApiKey.__table__])  # type: ignore[list-item]
        store = ApiKeyStore(engine)
        api_key = store.create("bench", "svc-bench", ["bench"], created_by="bench")
        async with httpx.AsyncClient() as http:
            settings = IssuerSettings(issuer=ISSUER, jwks_url=url, audience="wardgate")
            results: dict[str, list[float]] = {}
            for _ in range(repeat):
                run = await one_run(
                    Identifier([settings], store, AllowAll(), http), minted, api_key
                )
                for name, value in run.items():
                    results.setdefault(name, []).append(value)
        engine.dispose()
    await runner.cleanup()
    print(f"identify, median of {repeat} runs of per-call medians (us):")
    for name, values in results.items():
        print(
            f"  {name:9s} {statistics.median(values):8.1f}   runs: {[round(v, 1) for v in values]}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=2000, help="distinct tokens for cold runs")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.tokens, args.repeat))
